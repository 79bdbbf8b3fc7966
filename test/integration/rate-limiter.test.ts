/**
 * The shared API rate limiter alone, on a real Redis: the rate it keeps, one bucket for every
 * connection (as for every worker process), penalties that slow everyone, aborts, and a throttled
 * answer from the real simulator slowing the bucket.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { AliyunTransportError } from '../../src/aliyun/errors.js';
import { OrchestratorKeys } from '../../src/orchestrator/keys.js';
import { type RateLimit, RateLimitedCaller, RateLimiter } from '../../src/orchestrator/rate-limiter.js';
import { Scripts } from '../../src/orchestrator/scripts.js';
import { deleteKeys, uniquePrefix } from '../support/orchestrator-harness.js';
import { useSimulators } from '../support/sim-harness.js';

const KEY = 'LTAI-rate-test';
const ACTION = 'UpdateIpsecServer';

interface Bench {
  keys: OrchestratorKeys;
  redis: Redis;
  /** A limiter on a connection of its own, as in another worker process; counts its script calls. */
  limiter(limit: RateLimit): { limiter: RateLimiter; scriptCalls: () => number };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function bench(): Bench {
  const redisUrl = inject('redisUrl');
  const prefix = uniquePrefix();
  const keys = new OrchestratorKeys(prefix);
  const connections: Redis[] = [];
  const redis = new Redis(redisUrl);
  connections.push(redis);
  cleanups.push(async () => {
    await deleteKeys(redisUrl, prefix);
    for (const connection of connections) connection.disconnect();
  });
  return {
    keys,
    redis,
    limiter(limit) {
      const connection = new Redis(redisUrl, { enableAutoPipelining: true });
      connections.push(connection);
      const scripts = new Scripts(connection);
      let calls = 0;
      const counted = Object.create(scripts) as Scripts;
      counted.run = (...args) => {
        calls++;
        return scripts.run(...args);
      };
      return { limiter: new RateLimiter(counted, keys, limit), scriptCalls: () => calls };
    },
  };
}

/**
 * The grant schedule of `count` acquires made at once, spread over the limiters: the wait each
 * reservation was given by Redis (all scripts run within the same moment). The schedule, not the
 * wall clock at wake-up, is what the limiter controls: on a loaded machine timers fire late and
 * bunch up, which says nothing about the bucket.
 */
async function grantTimes(limiters: RateLimiter[], count: number, action = ACTION): Promise<number[]> {
  const waits = await Promise.all(
    Array.from({ length: count }, (_, index) =>
      (limiters[index % limiters.length] as RateLimiter).acquire(KEY, action),
    ),
  );
  return waits.sort((a, b) => a - b);
}

/**
 * Each wait is counted from the moment its own script ran, and those moments spread when the
 * machine is busy: 50 ms of slack (one token at 20/s) absorbs that, while a second bucket, which
 * doubles the rate, would still show.
 */
const SLACK_MS = 50;

/** No window holds more grants than the bucket allows (burst + qps * window), give or take `slackMs`. */
function expectWithinRate(times: number[], qps: number, burst: number, slackMs: number) {
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) {
      const windowMs = (times[j] as number) - (times[i] as number);
      const allowed = Math.floor(burst + (qps * (windowMs + slackMs)) / 1_000);
      expect(j - i + 1, `grants ${i}..${j} within ${windowMs.toFixed(1)} ms`).toBeLessThanOrEqual(allowed);
    }
  }
}

describe('RateLimiter', () => {
  it('keeps the rate over ~2 s with one script call per token and no polling', async () => {
    const b = bench();
    const { limiter, scriptCalls } = b.limiter({ qps: 20, burst: 5 });
    expect(limiter.burst).toBe(5);
    const times = await grantTimes([limiter], 45);
    // 5 at once, then 40 more at 20/s: the last is granted 2 s after the first.
    expect(times.slice(0, 5).every((time) => time < 100)).toBe(true);
    const last = times.at(-1) as number;
    expect(last).toBeGreaterThan(1_950);
    expect(last).toBeLessThan(2_300);
    expectWithinRate(times, 20, 5, SLACK_MS);
    const achieved = ((times.length - 5) / (last - (times[4] as number))) * 1_000;
    expect(achieved).toBeGreaterThan(18);
    expect(achieved).toBeLessThanOrEqual(20.5);
    expect(scriptCalls()).toBe(45);

    // The bucket is one small hash that goes once it would be full again.
    const key = b.keys.rate(KEY, ACTION);
    expect(key).toBe(`{${b.keys.prefix}}:rate:${KEY}:${ACTION}`);
    expect(Object.keys(await b.redis.hgetall(key)).sort()).toEqual(['at', 'tokens']);
    const ttl = await b.redis.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_250 + 1_000);
  });

  it('defaults its burst to half the rate, at least 1', () => {
    const b = bench();
    expect(b.limiter({ qps: 10 }).limiter.burst).toBe(5);
    expect(b.limiter({ qps: 1 }).limiter.burst).toBe(1);
    expect(b.limiter({ qps: 0.5 }).limiter.burst).toBe(1);
    expect(() => b.limiter({ qps: 0 })).toThrow(RangeError);
  });

  it('is one bucket for every connection: two limiters together keep one rate', async () => {
    const b = bench();
    const one = b.limiter({ qps: 20, burst: 2 });
    const two = b.limiter({ qps: 20, burst: 2 });
    const times = await grantTimes([one.limiter, two.limiter], 40);
    // 2 at once, then 38 at 20/s between both: 1.9 s, not the 0.95 s of two buckets.
    const last = times.at(-1) as number;
    expect(last).toBeGreaterThan(1_850);
    expect(last).toBeLessThan(2_200);
    expectWithinRate(times, 20, 2, SLACK_MS);
    expect(one.scriptCalls()).toBe(20);
    expect(two.scriptCalls()).toBe(20);
  });

  it('keeps one bucket per access key and action', async () => {
    const b = bench();
    const { limiter } = b.limiter({ qps: 2, burst: 1 });
    expect(await limiter.acquire(KEY, ACTION)).toBe(0);
    expect(await limiter.acquire(KEY, 'ListIpsecServers')).toBe(0);
    expect(await limiter.acquire('LTAI-other', ACTION)).toBe(0);
    expect(await limiter.acquire(KEY, ACTION)).toBeGreaterThan(400);
  });

  it('slows every limiter after a penalty', async () => {
    const b = bench();
    const one = b.limiter({ qps: 10, burst: 1 }).limiter;
    const two = b.limiter({ qps: 10, burst: 1 }).limiter;
    expect(await one.acquire(KEY, ACTION)).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Refilled: the next token is there now, but a penalty takes it and 500 ms more.
    await one.penalize(KEY, ACTION, 500);
    const started = performance.now();
    const waited = await two.acquire(KEY, ACTION);
    const elapsed = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(500);
    expect(waited).toBeLessThanOrEqual(600);
    expect(elapsed).toBeGreaterThanOrEqual(495);
    // The default penalty is one token's worth.
    await two.penalize(KEY, ACTION);
    const next = await one.acquire(KEY, ACTION);
    expect(next).toBeGreaterThanOrEqual(180);
    expect(next).toBeLessThanOrEqual(200);
  });

  it('gives up waiting when its signal aborts, and not at all when it was aborted already', async () => {
    const b = bench();
    const { limiter, scriptCalls } = b.limiter({ qps: 0.1, burst: 1 });
    await limiter.acquire(KEY, ACTION);
    const controller = new AbortController();
    const reason = new Error('lease lost');
    setTimeout(() => controller.abort(reason), 100);
    const started = performance.now();
    await expect(limiter.acquire(KEY, ACTION, controller.signal)).rejects.toBe(reason);
    // Long before the ten-second token it would otherwise have waited for: the margin is wide
    // enough that a loaded machine cannot blur aborted into waited.
    expect(performance.now() - started).toBeLessThan(5_000);
    await expect(limiter.acquire(KEY, ACTION, controller.signal)).rejects.toBe(reason);
    expect(scriptCalls()).toBe(2);
  });
});

describe('RateLimitedCaller', () => {
  const sims = useSimulators();

  it('takes a token per call, and slows the shared bucket when the cloud throttles', async () => {
    const b = bench();
    const sim = await sims.start({ servers: 1, regions: ['cn-shanghai'], faults: { qps: 2 } });
    const client = sims.client(sim);
    const { limiter, scriptCalls } = b.limiter({ qps: 50, burst: 1 });
    const caller = new RateLimitedCaller(client, limiter, sim.accessKeyId);
    // Someone else spends the quota with the same key: our next call is throttled.
    await client.call('DescribeRegions', {});
    await client.call('DescribeRegions', {});
    await expect(caller.call('DescribeRegions', {})).rejects.toMatchObject({ code: 'Throttling.User' });
    expect(scriptCalls()).toBe(2);
    expect(
      Number(await b.redis.hget(b.keys.rate(sim.accessKeyId, 'DescribeRegions'), 'tokens')),
    ).toBeLessThan(0);
    expect(sim.stats().byCode['Throttling.User']).toBe(1);

    // An abort while waiting for a token is the client's own abort error.
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    const aborted = caller.call('DescribeRegions', {}, { signal: controller.signal });
    await expect(aborted).rejects.toBeInstanceOf(AliyunTransportError);
    await expect(aborted).rejects.toMatchObject({ code: 'TRANSPORT_ABORTED' });
  });
});
