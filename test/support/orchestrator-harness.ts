import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import type { Credentials } from '../../src/aliyun/types.js';
import { createLogger } from '../../src/log.js';
import type { ChangeView } from '../../src/orchestrator/change.js';
import { Changes } from '../../src/orchestrator/changes.js';
import { type ChangeWorker, Orchestrator, startChangeWorker } from '../../src/orchestrator/orchestrator.js';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';
import { type SimulatorHandle, type SimulatorRuntime, startSimulator } from '../../src/sim/index.js';
import type { SimulatorOptionsInput } from '../../src/sim/options.js';

export const TEST_SECRET_KEY = randomBytes(32).toString('hex');

/** Short delays so backoff paths run in milliseconds, not minutes. */
export const FAST_POLICY: PipelinePolicyInput = {
  busy: { baseMs: 50, maxMs: 200, giveUpAfterMs: 20_000 },
  accountLocked: { baseMs: 200, maxMs: 400, giveUpAfterMs: 20_000 },
  transient: { baseMs: 20, maxMs: 100, maxAttempts: 8 },
  throttled: { baseMs: 20, maxMs: 100 },
  leaseMs: 2_000,
  verifyAttempts: 5,
  verifyIntervalMs: 50,
  callTimeoutMs: 2_000,
};

export interface Harness {
  prefix: string;
  redisUrl: string;
  sim: SimulatorHandle;
  orchestrator: Orchestrator;
  workers: ChangeWorker[];
  /**
   * A worker of its own; `secretKey` replaces the harness's (null: a worker without one), and
   * `redisUrl` the way it reaches the harness's Redis (a proxy), and `endpoint` the way it reaches
   * the simulator (an HTTP hop in front of it).
   */
  startWorker(options?: {
    concurrency?: number;
    secretKey?: string | null;
    redisUrl?: string;
    endpoint?: string;
  }): Promise<ChangeWorker>;
  /** Waits until the change reaches one of the states (polling the change hash, test-only). */
  waitFor(changeId: string, states: string[], timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export function uniquePrefix(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

export async function startHarness(
  options: {
    sim?: SimulatorOptionsInput;
    /** The simulator's clock, for a test that moves its time on (a gateway's configuring window). */
    simRuntime?: SimulatorRuntime;
    policy?: PipelinePolicyInput;
    workers?: number;
    /** Credential profiles besides `default` (the simulator's primary key). */
    profiles?: Record<string, Credentials>;
  } = {},
): Promise<Harness> {
  const redisUrl = inject('redisUrl');
  const prefix = uniquePrefix();
  const sim = await startSimulator(
    { servers: 6, regions: ['cn-shanghai'], ...options.sim },
    options.simRuntime,
  );
  const policy = { ...FAST_POLICY, ...options.policy };
  const settings = { redisUrl, prefix, secretKey: TEST_SECRET_KEY, policy };
  const orchestrator = Orchestrator.connect(settings);
  const workers: ChangeWorker[] = [];
  const log = createLogger({ level: 'silent' });

  const harness: Harness = {
    prefix,
    redisUrl,
    sim,
    orchestrator,
    workers,
    async startWorker(workerOptions = {}) {
      const secretKey =
        workerOptions.secretKey === undefined ? settings.secretKey : (workerOptions.secretKey ?? undefined);
      const worker = await startChangeWorker({
        ...settings,
        redisUrl: workerOptions.redisUrl ?? redisUrl,
        secretKey,
        concurrency: workerOptions.concurrency ?? 10,
        cloud: {
          endpoint: workerOptions.endpoint ?? sim.endpoint,
          profiles: {
            default: { accessKeyId: sim.accessKeyId, accessKeySecret: sim.accessKeySecret },
            ...options.profiles,
          },
          timeoutMs: 2_000,
          maxConnections: 8,
        },
        log,
        repairIntervalMs: 0,
      });
      workers.push(worker);
      return worker;
    },
    async waitFor(changeId, states, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const change = await orchestrator.changes.get(changeId);
        if (states.includes(change.state)) return change.state;
        if (Date.now() > deadline) {
          throw new Error(
            `change ${changeId} is ${change.state} at ${change.step ?? '-'} (last code ${change.lastCode ?? 'none'}), not ${states.join('|')}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.close()));
      await orchestrator.close();
      await sim.close();
      await deleteKeys(redisUrl, prefix);
    },
  };
  for (let i = 0; i < (options.workers ?? 1); i++) await harness.startWorker();
  return harness;
}

/**
 * Submits a change to the harness's simulated server number `server`, by `alice` unless `extra`
 * says otherwise (actor, note, idempotencyKey, profile).
 */
export async function submitTo(
  h: Harness,
  server: number,
  params: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Promise<ChangeView> {
  const target = h.sim.servers[server]!;
  const { change } = await h.orchestrator.changes.submit({
    ipsecServerId: target.ipsecServerId,
    regionId: target.regionId,
    params,
    actor: 'alice',
    ...extra,
  });
  return change;
}

/** Removes a test's keys (its own prefix only: never a flush of a Redis others may use). */
export async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
  redis.disconnect();
}

/** The harness's changes library as a submitter whose clock runs `skewMs` off Redis's would use it. */
export function changesWithClock(h: Harness, skewMs: number): Changes {
  const { redis, keys, scripts, queue, secrets } = h.orchestrator;
  return new Changes({
    redis,
    keys,
    scripts,
    queue,
    secrets,
    idempotencyRetentionMs: 60_000,
    now: () => Date.now() + skewMs,
  });
}
