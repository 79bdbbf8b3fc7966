import { Redis } from 'ioredis';
import { IpsecFleetError } from '../errors.js';
import { type PrivateRedis, RedisServerStartError, startPrivateRedis } from '../redis/private-server.js';
import { withTimeout } from '../with-timeout.js';

/** The demo cannot run: no Redis answers and none could be started. Exit code 2. */
export class DemoSetupError extends IpsecFleetError {
  constructor(message: string, options?: ErrorOptions) {
    super('DEMO_SETUP_FAILED', message, options);
  }
}

/** A process or service of the demo failed while it ran (exit 1, unlike a setup problem's 2). */
export class DemoRunError extends IpsecFleetError {
  constructor(message: string, options?: ErrorOptions) {
    super('DEMO_RUN_FAILED', message, options);
  }
}

export interface DemoRedis {
  url: string;
  /** Set when the demo started its own redis-server (stopped, and thrown away, at the end). */
  private: PrivateRedis | undefined;
}

/**
 * A Redis URL as it may be printed: scheme, host, port and db only. A password hides in more
 * places than userinfo (ioredis reads `?password=` too), so what is printed is built from the
 * parts known to be safe rather than by masking the ones known to be secret.
 */
export function displayRedisUrl(url: string): string {
  if (!URL.canParse(url)) return '(REDIS_URL, not shown: not a URL)';
  const parsed = new URL(url);
  const port = parsed.port ? `:${parsed.port}` : '';
  const db = /^\/\d+$/.test(parsed.pathname) ? parsed.pathname : '';
  return `${parsed.protocol}//${parsed.hostname}${port}${db}`;
}

/** One PING with no retries: does anything answer at `url` within `timeoutMs`? */
export async function redisAnswers(url: string, timeoutMs = 1_000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined);
  try {
    await withTimeout(
      client.connect().then(() => client.ping()),
      timeoutMs,
    );
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/**
 * The Redis at `url` when it answers; otherwise a private redis-server from PATH on a free port;
 * otherwise a DemoSetupError that says how to get one.
 */
export async function resolveDemoRedis(url: string): Promise<DemoRedis> {
  if (await redisAnswers(url)) return { url, private: undefined };
  try {
    const server = await startPrivateRedis({ detached: true });
    return { url: server.url, private: server };
  } catch (error) {
    const reason = error instanceof RedisServerStartError ? error.message : String(error);
    throw new DemoSetupError(
      [
        `no Redis answers at ${displayRedisUrl(url)}, and a private redis-server could not be started (${reason}).`,
        'Get Redis in one of these ways, then run the demo again:',
        '  - install redis-server (apt-get install redis-server, brew install redis): the demo starts its own;',
        '  - start one: docker compose up -d redis (port 6379), or redis-server --port 6379;',
        '  - point REDIS_URL at one you may use: REDIS_URL=redis://host:6379 npm run demo',
        '    (the demo writes only under its own key prefix and deletes those keys when it ends).',
      ].join('\n'),
      { cause: error },
    );
  }
}

/** Deletes every key of `prefix` (ours and BullMQ's share the `{prefix}` hash tag). Returns how many. */
export async function deletePrefixKeys(url: string, prefix: string): Promise<number> {
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2_000, lazyConnect: true });
  client.on('error', () => undefined);
  let deleted = 0;
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1_000);
      cursor = next;
      if (keys.length > 0) deleted += await client.unlink(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    client.disconnect();
  }
}
