import { expect } from 'vitest';
import type { Credentials } from '../../src/aliyun/types.js';
import { createLogger } from '../../src/log.js';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';
import type { RolloutView } from '../../src/rollouts/rollout.js';
import { Rollouts } from '../../src/rollouts/rollouts.js';
import { type RolloutWorker, startRolloutWorker } from '../../src/rollouts/worker.js';
import type { SimulatorOptionsInput } from '../../src/sim/options.js';
import { FAST_POLICY, type Harness, startHarness, TEST_SECRET_KEY } from './orchestrator-harness.js';

export interface RolloutHarness extends Harness {
  rollouts: Rollouts;
  rolloutWorker: RolloutWorker;
  /** Another rollout worker with the same settings (closed with the harness). */
  startRolloutWorker(): Promise<RolloutWorker>;
  /** Waits until the rollout reaches one of the states (polling its hash, test-only). */
  waitForRollout(id: string, states: string[], timeoutMs?: number): Promise<RolloutView>;
}

/** The change harness (real Redis, simulator, change worker) plus a rollout worker beside it. */
export async function startRolloutHarness(
  options: {
    sim?: SimulatorOptionsInput;
    policy?: PipelinePolicyInput;
    pollMs?: number;
    /** Targets one plan looks at at once (4 unless told). */
    planConcurrency?: number;
    /** Credential profiles besides `default` (the simulator's primary key), for both workers. */
    profiles?: Record<string, Credentials>;
    /** The window of maxChangesPerMinute (a minute unless told). */
    rateWindowMs?: number;
    /** How often the rollout worker looks for rollouts left without their job (5 min unless told). */
    resumeIntervalMs?: number;
    /** Controllers one rollout worker runs at once (50 unless told). */
    concurrency?: number;
    /** The longest a parked controller stays off its slot unless woken (a minute unless told). */
    parkMs?: number;
  } = {},
): Promise<RolloutHarness> {
  const harness = await startHarness({
    sim: { servers: 6, faults: { configuringMs: 0 }, ...options.sim },
    policy: options.policy,
    profiles: options.profiles,
  });
  const settings = {
    redisUrl: harness.redisUrl,
    prefix: harness.prefix,
    secretKey: TEST_SECRET_KEY,
    policy: { ...FAST_POLICY, ...options.policy },
    cloud: {
      endpoint: harness.sim.endpoint,
      profiles: {
        default: { accessKeyId: harness.sim.accessKeyId, accessKeySecret: harness.sim.accessKeySecret },
        ...options.profiles,
      },
      timeoutMs: 2_000,
      maxConnections: 8,
    },
    log: createLogger({ level: 'silent' }),
    pollMs: options.pollMs ?? 20,
    planConcurrency: options.planConcurrency ?? 4,
    ...(options.rateWindowMs ? { rateWindowMs: options.rateWindowMs } : {}),
    ...(options.resumeIntervalMs ? { resumeIntervalMs: options.resumeIntervalMs } : {}),
    ...(options.concurrency ? { concurrency: options.concurrency } : {}),
    ...(options.parkMs ? { parkMs: options.parkMs } : {}),
  };
  const rolloutWorkers: RolloutWorker[] = [];
  const start = async () => {
    const worker = await startRolloutWorker(settings);
    const close = worker.close.bind(worker);
    let closed: Promise<void> | undefined;
    worker.close = () => {
      closed ??= close();
      return closed;
    };
    rolloutWorkers.push(worker);
    return worker;
  };
  const rolloutWorker = await start();
  const rollouts = Rollouts.for(harness.orchestrator);
  const close = harness.close.bind(harness);
  return Object.assign(harness, {
    rollouts,
    rolloutWorker,
    startRolloutWorker: start,
    async waitForRollout(id: string, states: string[], timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const rollout = await rollouts.get(id);
        if (states.includes(rollout.state)) return rollout;
        if (Date.now() > deadline) {
          throw new Error(
            `rollout ${id} is ${rollout.state} (${rollout.reason ?? ''}), not ${states.join('|')}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async close() {
      await Promise.all(rolloutWorkers.map((worker) => worker.close()));
      await rollouts.close();
      await close();
    },
  });
}

/**
 * The changes whose `submitted` event follows the rollout's first `type` event in the audit
 * stream: every script appends there, so stream order is the order Redis ran the pause or cancel
 * and each submission in.
 */
export async function submittedAfter(h: Harness, type: string): Promise<string[]> {
  const events = await h.orchestrator.audit.query();
  const mark = events.findIndex((event) => event.type === type);
  expect(mark, `no ${type} event`).toBeGreaterThanOrEqual(0);
  return events
    .slice(mark + 1)
    .filter((event) => event.type === 'submitted')
    .map((event) => event.changeId);
}
