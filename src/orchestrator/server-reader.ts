import type { RpcCaller } from '../aliyun/types.js';
import { listIpsecServers } from '../ipsec/api.js';
import { IpsecServerNotFoundError } from '../ipsec/errors.js';
import { MAX_PAGE_SIZE } from '../ipsec/list-request.js';
import type { IpsecServer } from '../ipsec/server.js';

interface Waiter {
  resolve(server: IpsecServer): void;
  reject(error: unknown): void;
}

interface Batch {
  waiters: Map<string, Waiter[]>;
  scheduled: boolean;
}

/**
 * Reads servers for many concurrent changes with few calls: reads asked for in the same turn of
 * the event loop, in one region, go out as one ListIpsecServers with up to a page of ids. Before
 * and after snapshots then cost a fraction of a call each, which is API quota left for applies.
 */
export class ServerReader {
  private readonly batches = new Map<string, Batch>();

  constructor(
    private readonly caller: RpcCaller,
    private readonly timeoutMs: number,
  ) {}

  read(regionId: string, ipsecServerId: string): Promise<IpsecServer> {
    return new Promise((resolve, reject) => {
      let batch = this.batches.get(regionId);
      if (!batch) {
        batch = { waiters: new Map(), scheduled: false };
        this.batches.set(regionId, batch);
      }
      const waiters = batch.waiters.get(ipsecServerId);
      if (waiters) waiters.push({ resolve, reject });
      else batch.waiters.set(ipsecServerId, [{ resolve, reject }]);
      if (batch.waiters.size >= MAX_PAGE_SIZE) {
        this.flush(regionId);
      } else if (!batch.scheduled) {
        batch.scheduled = true;
        setImmediate(() => this.flush(regionId));
      }
    });
  }

  private flush(regionId: string): void {
    const batch = this.batches.get(regionId);
    if (!batch || batch.waiters.size === 0) return;
    this.batches.delete(regionId);
    void this.fetch(regionId, batch.waiters);
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
