/**
 * A worker whose start fails (Redis refuses its credentials or rights) says so with a stable code
 * and leaves no connection behind: one left reconnecting keeps the process alive, neither working
 * nor exiting. (An ACL user's NOPERM, met inside BullMQ's start, is tested on the `worker` command
 * in test/e2e/cli-env-validation.test.ts: BullMQ spins on it, and only a process with a deadline
 * turns that into a failure rather than a hung run.)
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { startChangeWorker } from '../../src/orchestrator/orchestrator.js';
import { RedisRefusedError } from '../../src/orchestrator/redis.js';
import { type PrivateRedis, startPrivateRedis } from '../../src/redis/private-server.js';
import { startRolloutWorker } from '../../src/rollouts/worker.js';

const PASSWORD = 'start-test-pw-41';

let redis: PrivateRedis;
let admin: Redis;

beforeAll(async () => {
  redis = await startPrivateRedis();
  admin = new Redis(redis.url);
  // The admin's connection stays signed in; every later one must give the password.
  await admin.config('SET', 'requirepass', PASSWORD);
});
afterAll(async () => {
  admin.disconnect();
  await redis.stop();
});

function settingsFor(redisUrl: string) {
  return {
    redisUrl,
    prefix: 'start-test',
    concurrency: 1,
    log: createLogger({ level: 'silent' }),
    cloud: {
      endpoint: 'http://127.0.0.1:9',
      profiles: { default: { accessKeyId: 'id', accessKeySecret: 'secret' } },
      timeoutMs: 1_000,
      maxConnections: 1,
    },
  };
}

/** Connections to the private Redis other than the admin's, once closing has had its moment. */
async function othersConnected(): Promise<number> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const clients = ((await admin.client('LIST')) as string).trim().split('\n').length - 1;
    if (clients === 0 || Date.now() > deadline) return clients;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const refusals = [
  {
    name: 'no password (NOAUTH)',
    url: () => redis.url,
    rule: /refused the connection, NOAUTH: give the password/,
  },
  {
    name: 'a wrong password (WRONGPASS)',
    url: () => `redis://:not-${PASSWORD}@127.0.0.1:${redis.port}`,
    rule: /refused the connection, WRONGPASS: give the password/,
  },
  {
    name: 'a database it does not have',
    url: () => `redis://:${PASSWORD}@127.0.0.1:${redis.port}/99`,
    rule: /Redis has no database 99 \(ERR DB index is out of range\)/,
  },
];

describe.each([
  ['startChangeWorker', startChangeWorker],
  ['startRolloutWorker', startRolloutWorker],
] as const)('%s', (_name, start) => {
  for (const refusal of refusals) {
    it(`fails on ${refusal.name} with REDIS_REFUSED and leaves no connection open`, async () => {
      const error = await start(settingsFor(refusal.url())).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error).toBeInstanceOf(RedisRefusedError);
      expect((error as RedisRefusedError).code).toBe('REDIS_REFUSED');
      expect((error as Error).message).toMatch(refusal.rule);
      expect((error as Error).message).not.toContain(PASSWORD);
      expect(await othersConnected()).toBe(0);
    });
  }
});
