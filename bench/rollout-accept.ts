/**
 * `npm run bench:rollout-accept`: how long `POST /v1/rollouts` takes to accept the largest rollout
 * it allows: MAX_TARGETS (10,000) targets, each with its own params at their longest (the same
 * shape ROLLOUT_BODY_LIMIT is computed from), through `app.inject()` of the whole app on a private
 * redis-server. Prints progress on stderr and, as its last stdout line, one JSON object.
 *
 * Each run times the request end to end (body already serialized) and splits it at the route's
 * hooks: the JSON parse of the body, the schema parse of the spec (the route's validation), and
 * the handler (the library's create: sealing, the Redis writes, reading the rollout back), of
 * which `redisMs` is the time Redis itself spent on the request's commands (INFO commandstats,
 * `redisCalls` of them). `peakHeapGrowthMB` is the largest heap in
 * use seen during a run (sampled at each hook and every few milliseconds the event loop is free)
 * over the heap after a full GC before it: what accepting one such rollout holds at once, the
 * body's text apart (the bench keeps it).
 *
 * Tunables (environment): BENCH_TARGETS (10000), BENCH_RUNS (3), BENCH_DISTINCT_PARAMS (1: every
 * target has the same params; N: N different ones, round robin).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import { buildApp } from '../src/api/app.js';
import { generateToken, hashToken, TokenStore } from '../src/api/auth/tokens.js';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';
import { startPrivateRedis } from '../src/redis/private-server.js';
import { MAX_TARGETS } from '../src/rollouts/rollout.js';
import { Rollouts } from '../src/rollouts/rollouts.js';
import { collectedHeap } from './support/heap.js';
import { largestParams, largestSpec } from './support/largest-rollout.js';
import { commandStats, resetStats, totalCalls, totalUsec } from './support/redis-stats.js';

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0)
    throw new Error(`${name} must be a whole number > 0 (got ${raw})`);
  return value;
}

const TARGETS = numberFromEnv('BENCH_TARGETS', MAX_TARGETS);
const RUNS = numberFromEnv('BENCH_RUNS', 3);
const DISTINCT_PARAMS = numberFromEnv('BENCH_DISTINCT_PARAMS', 1);
const HEAP_SAMPLE_MS = 5;

const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);
const round = (value: number, digits = 1) => Number(value.toFixed(digits));
const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};

// The npm script runs plain `node`: a full GC for the heap baseline is enabled here instead.
if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
  setFlagsFromString('--expose-gc');
  (globalThis as { gc?: unknown }).gc = runInNewContext('gc');
}

/** The largest spec; `run` makes the ids differ from run to run (a rollout is a new one each time). */
function largestBody(run: number): string {
  const params = Array.from({ length: DISTINCT_PARAMS }, (_, variant) => largestParams(variant));
  return JSON.stringify(
    largestSpec(TARGETS, {
      serverId: (index) => `iss-r${run}-${String(index).padStart(120, '0')}`,
      paramsOf: (index) => params[index % DISTINCT_PARAMS] as ReturnType<typeof largestParams>,
    }),
  );
}

interface RunResult {
  totalMs: number;
  jsonParseMs: number;
  schemaParseMs: number;
  handlerMs: number;
  redisMs: number;
  redisCalls: number;
  peakHeapGrowthMB: number;
}

async function main(): Promise<void> {
  const redis = await startPrivateRedis();
  const orchestrator = Orchestrator.connect({
    redisUrl: redis.url,
    prefix: 'bench',
    secretKey: randomBytes(32).toString('hex'),
  });
  const admin = new Redis(redis.url);
  const rollouts = Rollouts.for(orchestrator);
  const token = generateToken();
  const app = buildApp({
    orchestrator,
    tokens: new TokenStore([{ name: 'bench-submitter', roles: ['submitter'], sha256: hashToken(token) }]),
    rollouts,
  });

  // Hook times of the request being timed (one at a time).
  const marks = new Map<string, number>();
  let peakHeap = 0;
  const sampleHeap = () => {
    peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
  };
  for (const hook of ['preValidation', 'preHandler', 'onSend'] as const) {
    app.addHook(hook, async () => {
      marks.set(hook, performance.now());
      sampleHeap();
    });
  }

  try {
    await app.ready();
    const post = (payload: string) =>
      app.inject({
        method: 'POST',
        url: '/v1/rollouts',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        payload,
      });

    // One small rollout first, so that the timed runs do not include compiling and loading scripts.
    const warm = await post(
      JSON.stringify({
        targets: [{ ipsecServerId: 'iss-warm', regionId: 'cn-shanghai' }],
        params: largestParams(0),
      }),
    );
    if (warm.statusCode !== 201) throw new Error(`warm-up answered ${warm.statusCode}: ${warm.body}`);

    const results: RunResult[] = [];
    let bodyBytes = 0;
    for (let run = 0; run < RUNS; run++) {
      const body = largestBody(run);
      bodyBytes = Buffer.byteLength(body);
      await resetStats(admin);
      marks.clear();
      const before = collectedHeap();
      peakHeap = before;
      const sampler = setInterval(sampleHeap, HEAP_SAMPLE_MS);
      const started = performance.now();
      const response = await post(body);
      const ended = performance.now();
      clearInterval(sampler);
      sampleHeap();
      if (response.statusCode !== 201) {
        throw new Error(`run ${run} answered ${response.statusCode}: ${response.body.slice(0, 2_000)}`);
      }
      const stats = await commandStats(admin);
      const at = (hook: string) => marks.get(hook) ?? Number.NaN;
      const result: RunResult = {
        totalMs: round(ended - started),
        jsonParseMs: round(at('preValidation') - started),
        schemaParseMs: round(at('preHandler') - at('preValidation')),
        handlerMs: round(at('onSend') - at('preHandler')),
        redisMs: round(totalUsec(stats) / 1_000),
        redisCalls: totalCalls(stats),
        peakHeapGrowthMB: round((peakHeap - before) / 1e6),
      };
      results.push(result);
      progress(`run ${run + 1}/${RUNS}: ${JSON.stringify(result)}`);
    }

    const medianOf = (key: keyof RunResult) => round(median(results.map((result) => result[key])));
    process.stdout.write(
      `${JSON.stringify({
        bench: 'rollout-accept',
        targets: TARGETS,
        distinctParams: DISTINCT_PARAMS,
        bodyBytes,
        runs: RUNS,
        medianMs: medianOf('totalMs'),
        breakdownMedianMs: {
          jsonParse: medianOf('jsonParseMs'),
          schemaParse: medianOf('schemaParseMs'),
          handler: medianOf('handlerMs'),
          redis: medianOf('redisMs'),
        },
        peakHeapGrowthMB: Math.max(...results.map((result) => result.peakHeapGrowthMB)),
        runsMs: results.map((result) => result.totalMs),
        node: process.version,
      })}\n`,
    );
  } finally {
    await app.close();
    await rollouts.close();
    await orchestrator.close();
    admin.disconnect();
    await redis.stop();
  }
}

await main();
