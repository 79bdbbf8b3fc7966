import type { RpcCaller } from '../aliyun/types.js';
import { listIpsecServers } from '../ipsec/api.js';
import { IpsecServerNotFoundError } from '../ipsec/errors.js';
import { MAX_PAGE_SIZE } from '../ipsec/list-request.js';
import type { IpsecServer } from '../ipsec/server.js';

interface Waiter {
  resolve(server: IpsecServer): void;
  reject(error: unknown): void;
}

/** The reads of one region: ids waiting for the next call, and how many calls are out. */
interface RegionReads {
  waiting: Map<string, Waiter[]>;
  inFlight: number;
  scheduled: boolean;
}

/**
 * Reads servers for many concurrent changes with few ListIpsecServers calls (up to a page of ids
 * each). A region has one call out at a time unless a full page is waiting: ids asked for while a
 * call is out go in the next one, so under load each call carries many ids instead of the few that
 * happened to arrive in the same turn of the event loop, and waiting for a rate-limit token fills
 * the batch rather than spending a token per id. Before and after snapshots then cost a fraction
 * of a call each, which is API quota left for applies.
 */
export class ServerReader {
  private readonly regions = new Map<string, RegionReads>();

  constructor(
    private readonly caller: RpcCaller,
    private readonly timeoutMs: number,
  ) {}

  read(regionId: string, ipsecServerId: string): Promise<IpsecServer> {
    return new Promise((resolve, reject) => {
      let region = this.regions.get(regionId);
      if (!region) {
        region = { waiting: new Map(), inFlight: 0, scheduled: false };
        this.regions.set(regionId, region);
      }
      const waiters = region.waiting.get(ipsecServerId);
      if (waiters) waiters.push({ resolve, reject });
      else region.waiting.set(ipsecServerId, [{ resolve, reject }]);
      if (region.waiting.size >= MAX_PAGE_SIZE) {
        this.send(regionId, region);
      } else if (region.inFlight === 0 && !region.scheduled) {
        // Nothing out: wait one turn for the reads the same wake-up brings, then go.
        region.scheduled = true;
        setImmediate(() => {
          region.scheduled = false;
          if (region.inFlight === 0) this.send(regionId, region);
        });
      }
    });
  }

  private send(regionId: string, region: RegionReads): void {
    if (region.waiting.size === 0) {
      if (region.inFlight === 0 && !region.scheduled && this.regions.get(regionId) === region)
        this.regions.delete(regionId);
      return;
    }
    const batch = new Map<string, Waiter[]>();
    for (const [id, waiters] of region.waiting) {
      if (batch.size === MAX_PAGE_SIZE) break;
      batch.set(id, waiters);
    }
    for (const id of batch.keys()) region.waiting.delete(id);
    region.inFlight++;
    void this.fetch(regionId, batch).finally(() => {
      region.inFlight--;
      if (region.inFlight === 0) this.send(regionId, region);
    });
  }

  private async fetch(regionId: string, waiters: Map<string, Waiter[]>): Promise<void> {
    try {
      const found = new Map<string, IpsecServer>();
      const servers = listIpsecServers(
        this.caller,
        { RegionId: regionId, IpsecServerId: [...waiters.keys()], MaxResults: MAX_PAGE_SIZE },
        { timeoutMs: this.timeoutMs },
      );
      for await (const server of servers) found.set(server.IpsecServerId, server);
      for (const [id, list] of waiters) {
        const server = found.get(id);
        for (const waiter of list) {
          if (server) waiter.resolve(server);
          else waiter.reject(new IpsecServerNotFoundError(regionId, id));
        }
      }
    } catch (error) {
      for (const list of waiters.values()) for (const waiter of list) waiter.reject(error);
    }
  }
}
