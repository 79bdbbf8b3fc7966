/**
 * Issue 6's acceptance: two `ipsec-fleet worker` processes share one API rate per access key and
 * action (a token bucket in Redis), so with `apiQps` equal to the simulator's `--qps` a whole run
 * meets no `Throttling.User`; and the same run without the limiter does (the zero is not luck).
 */
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { ChangeView } from '../../src/orchestrator/change.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';
import { type SimulatorHandle, startSimulator } from '../../src/sim/index.js';
import { PROCESS_START_TIMEOUT_MS } from '../support/cli.js';
import { deleteKeys, FAST_POLICY, uniquePrefix } from '../support/orchestrator-harness.js';
import { killWorkerProcesses, startWorkerProcesses, waitUntil } from '../support/worker-process.js';

const QPS = 5;
const CHANGES = 30;
const UPDATE = 'UpdateIpsecServer';
const TERMINAL = new Set(['succeeded', 'rejected', 'failed', 'cancelled', 'expired']);
/** Hang guards: how long a run may take to end, and a test's timeout (two process starts at once, then the run). */
const SETTLE_TIMEOUT_MS = 45_000;
const RUN_TIMEOUT_MS = PROCESS_START_TIMEOUT_MS + SETTLE_TIMEOUT_MS + 15_000;

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await killWorkerProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Run {
  sim: SimulatorHandle;
  changes: ChangeView[];
  /** The worker processes' ids, and those that applied changes. */
  workerIds: string[];
  appliers: string[];
}

/** `count` changes on as many servers, run by two worker processes against a simulator at QPS. */
async function runFleet(policy: PipelinePolicyInput, count = CHANGES): Promise<Run> {
  const redisUrl = inject('redisUrl');
  const prefix = uniquePrefix();
  const sim = await startSimulator({
    servers: count,
    regions: ['cn-shanghai'],
    seed: 6,
    faults: { qps: QPS, configuringMs: 0, latencyMs: 5, jitterMs: 20 },
  });
  cleanups.push(() => sim.close());
  const fullPolicy = { ...FAST_POLICY, ...policy };
  const orchestrator = Orchestrator.connect({ redisUrl, prefix, policy: fullPolicy });
  cleanups.push(async () => {
    await orchestrator.close();
    await deleteKeys(redisUrl, prefix);
  });
  const workers = await startWorkerProcesses(2, {
    redisUrl,
    prefix,
    endpoint: sim.endpoint,
    accessKeyId: sim.accessKeyId,
    accessKeySecret: sim.accessKeySecret,
    policy: fullPolicy,
    concurrency: 10,
  });

  const changes = await Promise.all(
    sim.servers.map(async (server, index) => {
      const { change } = await orchestrator.changes.submit({
        ipsecServerId: server.ipsecServerId,
        regionId: server.regionId,
        params: { LocalSubnet: `172.25.${index}.0/24` },
        actor: 'e2e',
      });
      return change;
    }),
  );
  let last: ChangeView[] = [];
  const done = await waitUntil(
    async () => {
      last = await Promise.all(changes.map((change) => orchestrator.changes.get(change.id)));
      return last.every((change) => TERMINAL.has(change.state)) ? last : undefined;
    },
    {
      timeoutMs: SETTLE_TIMEOUT_MS,
      intervalMs: 100,
      describe: () =>
        `changes not terminal: ${last
          .filter((change) => !TERMINAL.has(change.state))
          .map((change) => `${change.id}=${change.state}/${change.lastCode ?? ''}`)
          .join(', ')}`,
    },
  );
  const actors = new Set<string>();
  for (const event of await orchestrator.audit.query()) {
    if (event.type === 'applied') actors.add(event.actor);
  }
  return {
    sim,
    changes: done,
    workerIds: workers.map((worker) => worker.workerId),
    appliers: [...actors],
  };
}

describe('the shared API rate limit', { timeout: RUN_TIMEOUT_MS }, () => {
  it(`keeps two worker processes at apiQps = the cloud's ${QPS}/s: no Throttling.User in a whole run`, async () => {
    const run = await runFleet({ apiQps: QPS });
    expect(run.changes.map((change) => change.state)).toEqual(run.changes.map(() => 'succeeded'));
    // Both processes did part of the work, so the rate they kept was kept together.
    expect(run.appliers.sort()).toEqual(run.workerIds.sort());

    // Every change went through with one dry run and one apply: not a call was throttled or sent
    // again. How fast the run went (at the limit while changes wait) is for `npm run bench:rollout`
    // to measure; a test cannot hold a loaded machine to a speed.
    const stats = run.sim.stats();
    expect(stats.byCode['Throttling.User']).toBeUndefined();
    expect(stats.applies).toBe(CHANGES);
    expect(stats.byAction[UPDATE]).toBe(2 * CHANGES);
  });

  it('without apiQps, the same run is throttled (and still succeeds, by retrying)', async () => {
    // Fewer changes: unlimited workers spend most of the run retrying throttled calls.
    const run = await runFleet({}, 12);
    expect(run.changes.map((change) => change.state)).toEqual(run.changes.map(() => 'succeeded'));
    expect(run.sim.stats().byCode['Throttling.User']).toBeGreaterThan(0);
  });
});
