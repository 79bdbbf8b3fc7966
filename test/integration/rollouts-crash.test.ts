import { afterEach, describe, expect, it } from 'vitest';
import { FAST_POLICY, TEST_SECRET_KEY } from '../support/orchestrator-harness.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { killWorkerProcesses, startWorkerProcess } from '../support/worker-process.js';

/** Hang guard of each wait; the test's timeout covers them in a row. */
const WAIT_MS = 30_000;
// Enough targets that the kill lands while the first chunk of the one batch is being submitted.
const SERVERS = 300;

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await killWorkerProcesses();
  await harness?.close();
  harness = undefined;
});

describe('a controller killed mid-batch (kill -9 of its worker process)', () => {
  it('is taken up by another worker, which gets every change it submitted running: each target changed once', {
    timeout: 4 * WAIT_MS,
  }, async () => {
    harness = await startRolloutHarness({
      sim: { servers: SERVERS, faults: { configuringMs: 0 } },
      planConcurrency: 32,
    });
    const h = harness;
    const created = await h.rollouts.create({
      actor: 'alice',
      targets: h.sim.servers.map((s) => ({ ipsecServerId: s.ipsecServerId, regionId: s.regionId })),
      params: { IpsecServerName: 'survives-kill' },
    });
    await h.waitForRollout(created.id, ['awaiting_approval'], WAIT_MS);
    // The controller runs in a worker process of its own; the harness's change worker (started
    // before, so its lane repair at start is behind it) runs the changes.
    await h.rolloutWorker.close();
    const worker = await startWorkerProcess({
      redisUrl: h.redisUrl,
      prefix: h.prefix,
      endpoint: h.sim.endpoint,
      accessKeyId: h.sim.accessKeyId,
      accessKeySecret: h.sim.accessKeySecret,
      policy: FAST_POLICY,
      secretKey: TEST_SECRET_KEY,
    });
    await h.rollouts.approve(created.id, 'bob');
    // Stopped whenever more of its changes are recorded, and killed once some of them have no job
    // yet: it dies between a change's submit script and the adding of its job.
    const { redis, keys, queue } = h.orchestrator;
    let seen = 0;
    let orphans = 0;
    while (orphans === 0) {
      const ids = Object.values(await redis.hgetall(keys.rolloutChanges(created.id)));
      if (ids.length === seen) {
        expect(seen).toBeLessThan(SERVERS);
        await new Promise((r) => setImmediate(r));
        continue;
      }
      worker.child.kill('SIGSTOP');
      const jobs = await Promise.all(ids.map((id) => queue.queue.getJob(id)));
      orphans = jobs.filter((job) => job === undefined).length;
      seen = ids.length;
      if (orphans === 0) worker.child.kill('SIGCONT');
    }
    await worker.signal('SIGKILL');

    await h.startRolloutWorker();
    const done = await h.waitForRollout(created.id, ['completed', 'halted'], WAIT_MS);
    expect(done.progress).toMatchObject({ total: SERVERS, submitted: SERVERS, succeeded: SERVERS });
    for (const s of h.sim.servers) expect(h.sim.server(s.ipsecServerId)!.history).toHaveLength(1);
  });
});
