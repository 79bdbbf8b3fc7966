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
import { waitUntil } from '../support/worker-process.js';

const KEY = 'LTAI-rate-test';
const ACTION = 'UpdateIpsecServer';

/** One rate script as Redis ran it: on which bucket, at what Redis time (ms), and its answer. */
interface ScriptRun {
  name: 'rate-take' | 'rate-penalize';
  key: string;
  /** Redis's clock when the script ran: the bucket's `at`, read in the same transaction. */
  at: number;
  result: unknown;
  /** The bucket's fields and time to live (ms) right after the script, in the same transaction. */
  fields: string[];
  pttl: number;
}

interface Bench {
  keys: OrchestratorKeys;
  redis: Redis;
  /**
   * A limiter on a connection of its own, as in another worker process; counts its script calls
   * and records when Redis ran each (shared by every limiter of the bench, in Redis's order).
   */
  limiter(limit: RateLimit): { limiter: RateLimiter; scriptCalls: () => number };
  /** The scripts run so far by every limiter of the bench, in the order Redis ran them. */
  runs: ScriptRun[];
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The name ioredis knows a script by (Scripts defines them on the connection). */
const commandOf = (name: string) => `ipf_${name.replace(/-/g, '_')}`;

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
  const runs: ScriptRun[] = [];
  return {
    keys,
    redis,
    runs,
    limiter(limit) {
      const connection = new Redis(redisUrl, { enableAutoPipelining: true });
      connections.push(connection);
      const scripts = new Scripts(connection);
      let calls = 0;
      const counted = Object.create(scripts) as Scripts;
      // Each rate script runs in a transaction with a read of its bucket's `at`, which the script
      // has just set to Redis's clock: the moment Redis ran it, whatever the machine's load.
      counted.run = async (name, scriptKeys, args) => {
        calls++;
        if (name !== 'rate-take' && name !== 'rate-penalize') return scripts.run(name, scriptKeys, args);
        const key = scriptKeys[0] as string;
        const transaction = connection.multi() as unknown as Record<
          string,
          (...values: unknown[]) => unknown
        >;
        transaction[commandOf(name)]?.call(transaction, scriptKeys.length, ...scriptKeys, ...args);
        const replies =
          (await (transaction as unknown as ReturnType<Redis['multi']>)
            .hget(key, 'at')
            .hkeys(key)
            .pttl(key)
            .exec()) ?? [];
        const [[scriptError, result] = [], [atError, at] = [], [, fields] = [], [, pttl] = []] = replies;
        if (scriptError) throw scriptError;
        if (atError) throw atError;
        runs.push({ name, key, at: Number(at), result, fields: fields as string[], pttl: Number(pttl) });
        return result;
      };
      return { limiter: new RateLimiter(counted, keys, limit), scriptCalls: () => calls };
    },
  };
}

/**
 * The grant schedule of `count` acquires made at once, spread over the limiters: when each token
 * was granted on Redis's clock (the moment its script ran plus the wait Redis gave it), relative
 * to the first grant, in order. This, not the wall clock at wake-up, is what the limiter controls:
 * on a loaded machine scripts run spread out and timers fire late, which says nothing about the
 * bucket, while the grant times keep the rate exactly.
 */
async function grantTimes(
  b: Bench,
  limiters: RateLimiter[],
  count: number,
  action = ACTION,
): Promise<{ times: number[]; waits: number[] }> {
  const from = b.runs.length;
  await Promise.all(
    Array.from({ length: count }, (_, index) =>
      (limiters[index % limiters.length] as RateLimiter).acquire(KEY, action),
    ),
  );
  const runs = b.runs.slice(from);
  const grants = runs.map((run) => run.at + Number(run.result));
  expect(grants).toHaveLength(count);
  // Reservations are served in the order Redis ran them: grants never go back.
  for (let i = 1; i < grants.length; i++)
    expect(grants[i]).toBeGreaterThanOrEqual((grants[i - 1] as number) - 1);
  const first = grants[0] as number;
  return { times: grants.map((grant) => grant - first), waits: runs.map((run) => Number(run.result)) };
}

/** A wait is rounded up to whole milliseconds, and the bucket's floats are stored to 14 digits. */
const ROUNDING_MS = 1.5;

/** No window holds more grants than the bucket allows (burst + qps * window), up to rounding. */
function expectWithinRate(times: number[], qps: number, burst: number) {
  for (let i = 0; i < times.length; i++) {
    for (let j = i; j < times.length; j++) {
      const windowMs = (times[j] as number) - (times[i] as number);
      const allowed = Math.floor(burst + (qps * (windowMs + ROUNDING_MS)) / 1_000);
      expect(j - i + 1, `grants ${i}..${j} within ${windowMs.toFixed(1)} ms`).toBeLessThanOrEqual(allowed);
    }
  }
}

/**
 * No token is held back: a grant that had to wait comes one interval after the one before it
 * (less, if the bucket refilled between their scripts), never later.
 */
function expectNoIdleGap({ times, waits }: { times: number[]; waits: number[] }, qps: number) {
  for (let i = 1; i < times.length; i++) {
    if ((waits[i] as number) === 0) continue;
    const gap = (times[i] as number) - (times[i - 1] as number);
    expect(gap, `grant ${i} after grant ${i - 1}`).toBeLessThanOrEqual(1_000 / qps + ROUNDING_MS);
  }
}

describe('RateLimiter', () => {
  it('keeps the rate with one script call per token and no polling', async () => {
    const b = bench();
    const { limiter, scriptCalls } = b.limiter({ qps: 20, burst: 5 });
    expect(limiter.burst).toBe(5);
    const grants = await grantTimes(b, [limiter], 45);
    const { times } = grants;
    // 5 at once (when their scripts ran), then 40 more at 20/s: the last 2 s or more after the first.
    expectWithinRate(times, 20, 5);
    expectNoIdleGap(grants, 20);
    expect(times.at(-1)).toBeGreaterThanOrEqual(2_000 - ROUNDING_MS);
    expect(scriptCalls()).toBe(45);

    // The bucket is one small hash that goes once it would be full again: after the last script,
    // its last grant plus the 1.25 s the 5 tokens take to refill, plus a second.
    const key = b.keys.rate(KEY, ACTION);
    expect(key).toBe(`{${b.keys.prefix}}:rate:${KEY}:${ACTION}`);
    const last = b.runs.at(-1) as ScriptRun;
    expect(last.key).toBe(key);
    expect(last.fields.sort()).toEqual(['at', 'tokens']);
    expect(last.pttl).toBeGreaterThan(1_000);
    expect(last.pttl - Number(last.result)).toBeLessThanOrEqual(1_250 + 1_000 + ROUNDING_MS);
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
    const grants = await grantTimes(b, [one.limiter, two.limiter], 40);
    const { times } = grants;
    // 2 at once, then 38 at 20/s between both: 1.9 s or more, not the 0.95 s of two buckets.
    expectWithinRate(times, 20, 2);
    expect(times.at(-1)).toBeGreaterThanOrEqual(1_900 - ROUNDING_MS);
    expect(one.scriptCalls()).toBe(20);
    expect(two.scriptCalls()).toBe(20);
  });

  it('keeps one bucket per access key and action', async () => {
    const b = bench();
    const { limiter } = b.limiter({ qps: 2, burst: 1 });
    expect(await limiter.acquire(KEY, ACTION)).toBe(0);
    expect(await limiter.acquire(KEY, 'ListIpsecServers')).toBe(0);
    expect(await limiter.acquire('LTAI-other', ACTION)).toBe(0);
    expect(await limiter.acquire(KEY, ACTION)).toBeGreaterThan(0);
    // The second token of the first bucket is granted one interval (500 ms at 2/s) after the first.
    const [firstRun, , , secondRun] = b.runs;
    const grant = (run: ScriptRun | undefined) => (run as ScriptRun).at + Number((run as ScriptRun).result);
    expect(grant(secondRun) - grant(firstRun)).toBeGreaterThanOrEqual(500 - ROUNDING_MS);
    expect(grant(secondRun) - grant(firstRun)).toBeLessThanOrEqual(500 + ROUNDING_MS);
  });

  it('slows every limiter after a penalty', async () => {
    const b = bench();
    const one = b.limiter({ qps: 10, burst: 1 }).limiter;
    const two = b.limiter({ qps: 10, burst: 1 }).limiter;
    expect(await one.acquire(KEY, ACTION)).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 150));
    // Refilled: the next token is there now, but a penalty takes it and 500 ms more.
    await one.penalize(KEY, ACTION, 500);
    const penalized = b.runs.at(-1) as ScriptRun;
    const started = performance.now();
    const waited = await two.acquire(KEY, ACTION);
    const elapsed = performance.now() - started;
    const taken = b.runs.at(-1) as ScriptRun;
    // Granted 600 ms after the penalty on Redis's clock (500 ms of debt, then its own token at 10/s),
    // however long after the penalty its script ran; and it did wait for it.
    expect(taken.at + waited - penalized.at).toBeGreaterThanOrEqual(600 - ROUNDING_MS);
    expect(taken.at + waited - penalized.at).toBeLessThanOrEqual(600 + ROUNDING_MS);
    expect(elapsed).toBeGreaterThanOrEqual(waited - 5);
    // The default penalty is one token's worth: 100 ms of debt, then the token.
    await two.penalize(KEY, ACTION);
    const again = b.runs.at(-1) as ScriptRun;
    const next = await one.acquire(KEY, ACTION);
    const nextRun = b.runs.at(-1) as ScriptRun;
    expect(nextRun.at + next - again.at).toBeGreaterThanOrEqual(200 - ROUNDING_MS);
    expect(nextRun.at + next - again.at).toBeLessThanOrEqual(200 + ROUNDING_MS);
  });

  it('gives up waiting when its signal aborts, and not at all when it was aborted already', async () => {
    const b = bench();
    // A token every 100 s: a wait that ignored the signal would outlast the test's timeout.
    const { limiter, scriptCalls } = b.limiter({ qps: 0.01, burst: 1 });
    await limiter.acquire(KEY, ACTION);
    const controller = new AbortController();
    const reason = new Error('lease lost');
    const waiting = limiter.acquire(KEY, ACTION, controller.signal);
    // Aborted once its reservation is made (a hundred-second wait): the wait ends with the reason.
    await waitUntil(() => (b.runs.length === 2 ? true : undefined));
    expect(Number(b.runs[1]?.result)).toBeGreaterThan(90_000);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
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
