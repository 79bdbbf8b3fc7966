/**
 * `npm run bench:rollout`: how close a whole rollout (create → plan → approve → apply to the
 * end) comes to the account's API quota. Prints progress on stderr and, as its last stdout line,
 * one JSON object (issue 6's acceptance).
 *
 * One target per server against a simulator that enforces `--qps` per access key and action (no
 * other fault, configuring-ms 0), with the workers' shared limiter at the same QPS. The quota is
 * the bottleneck by construction, so the time the busiest action's calls need at the quota
 * (`boundSeconds`, from the simulator's own per-action counts) is the least any rollout could
 * take; `quotaSaturation` is that bound over the measured wall time (create to completed), and
 * `throttled` counts the calls the simulator refused (none expected: the limiter keeps below it).
 *
 * Everything runs on a private redis-server this bench starts; the simulator is a child process
 * (the built CLI); the change worker and the rollout worker run here. Bounded by
 * BENCH_MAX_SECONDS; exits 0 when a target is missed (the JSON says which).
 *
 * Tunables (environment): BENCH_TARGETS (2000), BENCH_QPS (100), BENCH_BURST (unset: the
 * limiter's default), BENCH_CONCURRENCY (200, change worker), BENCH_PLAN_CONCURRENCY (64),
 * BENCH_POLL_MS (100), BENCH_CONNECTIONS (32), BENCH_MAX_SECONDS (170).
 */
import { performance } from 'node:perf_hooks';
import { createLogger } from '../src/log.js';
import { Orchestrator, startChangeWorker } from '../src/orchestrator/orchestrator.js';
import type { PipelinePolicyInput } from '../src/orchestrator/policy.js';
import { startPrivateRedis } from '../src/redis/private-server.js';
import type { RolloutView } from '../src/rollouts/rollout.js';
import { Rollouts } from '../src/rollouts/rollouts.js';
import { startRolloutWorker } from '../src/rollouts/worker.js';
import type { SimStats } from '../src/sim/index.js';
import { startSimProcess } from './support/sim-process.js';

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a number > 0 (got ${raw})`);
  return value;
}

const TARGETS = Math.floor(numberFromEnv('BENCH_TARGETS', 2_000));
const QPS = numberFromEnv('BENCH_QPS', 100);
const BURST = process.env.BENCH_BURST ? numberFromEnv('BENCH_BURST', 1) : undefined;
const CONCURRENCY = Math.floor(numberFromEnv('BENCH_CONCURRENCY', 200));
const PLAN_CONCURRENCY = Math.floor(numberFromEnv('BENCH_PLAN_CONCURRENCY', 64));
const POLL_MS = numberFromEnv('BENCH_POLL_MS', 100);
const CONNECTIONS = Math.floor(numberFromEnv('BENCH_CONNECTIONS', 32));
const MAX_SECONDS = numberFromEnv('BENCH_MAX_SECONDS', 170);

const GOALS = { quotaSaturation: 0.9, throttled: 0 };

/** Default backoffs (none expected), a fast verify, the quota as the shared limiter's rate. */
const POLICY: PipelinePolicyInput = {
  verifyIntervalMs: 10,
  callTimeoutMs: 10_000,
  apiQps: QPS,
  ...(BURST === undefined ? {} : { apiBurst: BURST }),
};

const log = createLogger({ level: 'silent' });
const progress = (message: string) => process.stderr.write(`bench: ${message}\n`);
const round = (value: number, digits = 3) => Number(value.toFixed(digits));

function diffStats(
  after: SimStats,
  before: SimStats,
): { byAction: Record<string, number>; byCode: Record<string, number> } {
  const minus = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(a)
        .map(([key, value]) => [key, value - (b[key] ?? 0)] as const)
        .filter(([, value]) => value > 0),
    );
  return { byAction: minus(after.byAction, before.byAction), byCode: minus(after.byCode, before.byCode) };
}

async function main(): Promise<void> {
  const started = performance.now();
  const deadline = started + MAX_SECONDS * 1_000;
  const redis = await startPrivateRedis();
  const cleanups: Array<() => Promise<unknown>> = [() => redis.stop()];
  try {
    const sim = await startSimProcess([
      '--servers',
      String(TARGETS),
      '--configuring-ms',
      '0',
      '--qps',
      String(QPS),
    ]);
    cleanups.unshift(() => sim.stop());
    const { banner } = sim;
    const settings = { redisUrl: redis.url, prefix: 'bench', policy: POLICY };
    const cloud = {
      endpoint: banner.endpoint,
      profiles: { default: { accessKeyId: banner.accessKeyId, accessKeySecret: banner.accessKeySecret } },
      timeoutMs: 10_000,
      maxConnections: CONNECTIONS,
    };
    const changeWorker = await startChangeWorker({
      ...settings,
      concurrency: CONCURRENCY,
      cloud,
      log,
      repairIntervalMs: 0,
    });
    cleanups.unshift(() => changeWorker.close());
    const rolloutWorker = await startRolloutWorker({
      ...settings,
      cloud,
      log,
      planConcurrency: PLAN_CONCURRENCY,
      pollMs: POLL_MS,
    });
    cleanups.unshift(() => rolloutWorker.close());
    const producer = Orchestrator.connect(settings);
    const rollouts = Rollouts.for(producer);
    cleanups.unshift(async () => {
      await rollouts.close();
      await producer.close();
    });

    const servers = banner.servers.slice(0, TARGETS);
    if (servers.length < TARGETS)
      throw new Error(`the simulator has ${servers.length} servers, not ${TARGETS}`);
    const before = await sim.stats();

    /** Polls the rollout until one of the states (every 20 ms: transitions are timed to that). */
    const waitFor = async (id: string, states: string[]): Promise<RolloutView> => {
      for (;;) {
        const rollout = await rollouts.get(id);
        if (states.includes(rollout.state)) return rollout;
        if (performance.now() > deadline)
          throw new Error(`rollout ${id} still ${rollout.state} at the time limit`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };

    progress(`${TARGETS} targets, quota ${QPS}/s per action, change concurrency ${CONCURRENCY}`);
    const t0 = performance.now();
    const created = await rollouts.create({
      actor: 'alice',
      targets: servers.map((server) => ({ ipsecServerId: server.ipsecServerId, regionId: server.regionId })),
      // Not the generated servers' 192.168.0.0/24 (a no-op), nor inside any generated ClientIpPool.
      params: { LocalSubnet: '192.168.5.0/24' },
      strategy: { batches: ['100%'] },
    });
    const planned = await waitFor(created.id, ['awaiting_approval', 'cancelled', 'expired']);
    const t1 = performance.now();
    const planStats = diffStats(await sim.stats(), before);
    progress(`planned in ${round((t1 - t0) / 1_000, 1)} s: ${JSON.stringify(planned.plan)}`);
    await rollouts.approve(created.id, 'bob');
    const finished = await waitFor(created.id, ['completed', 'halted', 'cancelled']);
    const t2 = performance.now();
    const stats = diffStats(await sim.stats(), before);
    const applyByAction = Object.fromEntries(
      Object.entries(stats.byAction).map(([action, calls]) => [
        action,
        calls - (planStats.byAction[action] ?? 0),
      ]),
    );

    const wallSeconds = (t2 - t0) / 1_000;
    const boundSeconds = Math.max(0, ...Object.values(stats.byAction)) / QPS;
    const quotaSaturation = boundSeconds / wallSeconds;
    const throttled = stats.byCode['Throttling.User'] ?? 0;
    progress(`${finished.state} in ${round(wallSeconds, 1)} s; bound ${round(boundSeconds, 1)} s`);

    process.stdout.write(
      `${JSON.stringify({
        bench: 'rollout',
        targets: TARGETS,
        met: {
          quotaSaturation: quotaSaturation >= GOALS.quotaSaturation,
          throttled: throttled === GOALS.throttled,
        },
        quotaQps: QPS,
        apiBurst: BURST ?? Math.max(1, QPS / 2),
        state: finished.state,
        progress: { succeeded: finished.progress.succeeded, errors: finished.progress.errors },
        plan: planned.plan,
        wallSeconds: round(wallSeconds),
        planSeconds: round((t1 - t0) / 1_000),
        applySeconds: round((t2 - t1) / 1_000),
        boundSeconds: round(boundSeconds),
        quotaSaturation: round(quotaSaturation),
        throttled,
        byAction: stats.byAction,
        planByAction: planStats.byAction,
        applyByAction,
        byCode: stats.byCode,
        changeConcurrency: CONCURRENCY,
        planConcurrency: PLAN_CONCURRENCY,
        pollMs: POLL_MS,
      })}\n`,
    );
  } finally {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
  }
}

const watchdog = setTimeout(
  () => {
    process.stderr.write(`bench:rollout: over ${MAX_SECONDS + 10} s, giving up\n`);
    process.exit(1);
  },
  (MAX_SECONDS + 10) * 1_000,
);
watchdog.unref();

main().catch((error: unknown) => {
  process.stderr.write(`bench:rollout failed: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
