import { AliyunClient } from '../aliyun/client.js';
import { resolveEndpoint } from '../aliyun/endpoint.js';
import type { Credentials, RpcCaller } from '../aliyun/types.js';
import { UnknownProfileError } from './errors.js';
import { RateLimitedCaller, type RateLimiter } from './rate-limiter.js';
import { ServerReader } from './server-reader.js';

export interface CloudSettings {
  /** Explicit endpoint for every region (a simulator, a private link); else the official rule. */
  endpoint?: string | undefined;
  /** Credentials per profile; `default` is the one changes use unless they name another. */
  profiles: Record<string, Credentials>;
  timeoutMs: number;
  maxConnections: number;
}

/**
 * One keep-alive client (and batching reader) per profile and endpoint, made on first use. With a
 * rate limiter, every call of both (reads, dry runs, applies) first takes a token of its access
 * key's bucket for its action; without one, nothing is added.
 */
export class CloudClients {
  private readonly clients = new Map<
    string,
    { client: AliyunClient; caller: RpcCaller; reader: ServerReader }
  >();

  constructor(
    private readonly settings: CloudSettings,
    private readonly limiter?: RateLimiter | undefined,
  ) {}

  get(profile: string, regionId: string): { caller: RpcCaller; reader: ServerReader } {
    const endpoint = resolveEndpoint({ regionId, override: this.settings.endpoint });
    const cacheKey = `${profile} ${endpoint}`;
    let entry = this.clients.get(cacheKey);
    if (!entry) {
      const credentials = this.settings.profiles[profile];
      if (!credentials) throw new UnknownProfileError(profile);
      const client = new AliyunClient({
        credentials,
        endpoint,
        timeoutMs: this.settings.timeoutMs,
        maxConnections: this.settings.maxConnections,
      });
      const caller = this.limiter
        ? new RateLimitedCaller(client, this.limiter, credentials.accessKeyId)
        : client;
      entry = { client, caller, reader: new ServerReader(caller, this.settings.timeoutMs) };
      this.clients.set(cacheKey, entry);
    }
    return entry;
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((entry) => entry.client.close()));
    this.clients.clear();
  }
}
