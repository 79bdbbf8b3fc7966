import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { RolloutInput } from '../../src/rollouts/rollout.js';
import { ROLLOUT_QUEUE } from '../../src/rollouts/rollout-queue.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { keyA, keyB } from '../support/sim-harness.js';
import { waitUntil } from '../support/worker-process.js';

/**
 * A controller holds its worker slot only while it has something to do: one whose rollout is
 * paused (nothing in flight), or baking longer than its park time, or whose changes in flight all
 * back off for longer than that (a financially locked account), hands its job back to the queue
 * until a resume or cancel wakes it, or its park time runs out, so the slots go to rollouts that
 * run. Plans and
 * approval windows have slots of their own, or a worker whose slots are all held (changes in
 * flight, short bakes) would never plan a new rollout.
 */

/** Hang guard of each wait (a loaded machine); no test asserts how long anything took. */
const WAIT_MS = 30_000;

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function server(h: RolloutHarness, n: number) {
  return { ipsecServerId: h.sim.servers[n]!.ipsecServerId, regionId: h.sim.servers[n]!.regionId };
}

/** Creates (alice), waits for the plan, and approves (bob). */
async function approved(h: RolloutHarness, input: Omit<RolloutInput, 'actor'>): Promise<string> {
  const created = await h.rollouts.create({ actor: 'alice', ...input });
  await h.waitForRollout(created.id, ['awaiting_approval'], WAIT_MS);
  await h.rollouts.approve(created.id, 'bob');
  return created.id;
}

/**
 * Two rollouts held after their first batch (paused, or baking), each with one target left; waits
 * until each is held.
 */
async function twoHeld(h: RolloutHarness, hold: { pause: 'first' } | { bakeMs: number }): Promise<string[]> {
  const ids = [];
  for (const pair of [
    [0, 1],
    [2, 3],
  ]) {
    const id = await approved(h, {
      targets: pair.map((n) => server(h, n)),
      params: { IpsecServerName: 'held' },
      strategy: { batches: [1] },
      ...hold,
    });
    if ('pause' in hold) await h.waitForRollout(id, ['paused'], WAIT_MS);
    else
      await waitUntil(async () => ((await h.rollouts.get(id)).progress.succeeded === 1 ? true : undefined), {
        timeoutMs: WAIT_MS,
        describe: () => `rollout ${id} to bake after its first batch`,
      });
    ids.push(id);
  }
  return ids;
}

describe('rollout worker slots', () => {
  it('plans a new rollout while baking rollouts hold every controller slot', {
    timeout: 5 * WAIT_MS,
  }, async () => {
    // Bakes shorter than the park time are spent on the slot.
    harness = await startRolloutHarness({ sim: { servers: 5 }, concurrency: 2, parkMs: 600_000 });
    const h = harness;
    await twoHeld(h, { bakeMs: 300_000 });

    const third = await h.rollouts.create({
      targets: [server(h, 4)],
      params: { IpsecServerName: 'planned-anyway' },
      actor: 'alice',
    });
    const planned = await h.waitForRollout(third.id, ['awaiting_approval'], WAIT_MS);
    expect(planned.plan).toMatchObject({ 'would-change': 1 });
  });

  // Covers its waits in a row (hang guards): two plans and pauses, a run, two resumed runs.
  it('runs a new rollout to its end while as many rollouts as slots are paused', {
    timeout: 8 * WAIT_MS,
  }, async () => {
    // Parked for longer than the test may take: only the resume can have woken the two.
    harness = await startRolloutHarness({ sim: { servers: 5 }, concurrency: 2, parkMs: 600_000 });
    const h = harness;
    const paused = await twoHeld(h, { pause: 'first' });

    const third = await approved(h, { targets: [server(h, 4)], params: { IpsecServerName: 'ran' } });
    expect((await h.waitForRollout(third, ['completed', 'halted'], WAIT_MS)).state).toBe('completed');
    for (const id of paused) expect((await h.rollouts.get(id)).state).toBe('paused');

    for (const id of paused) await h.rollouts.resume(id, 'bob');
    for (const id of paused) {
      const done = await h.waitForRollout(id, ['completed', 'halted'], WAIT_MS);
      expect(done).toMatchObject({ state: 'completed', progress: { total: 2, succeeded: 2 } });
    }
  });

  it('runs a new rollout while the only slot’s rollout bakes, and a cancel ends the baking one', {
    timeout: 5 * WAIT_MS,
  }, async () => {
    harness = await startRolloutHarness({ sim: { servers: 3 }, concurrency: 1 });
    const h = harness;
    const baking = await approved(h, {
      targets: [server(h, 0), server(h, 1)],
      params: { IpsecServerName: 'baking' },
      strategy: { batches: [1] },
      bakeMs: 3_600_000,
    });
    await waitUntil(
      async () => ((await h.rollouts.get(baking)).progress.succeeded === 1 ? true : undefined),
      { timeoutMs: WAIT_MS, describe: () => 'batch 1 to finish and the bake to start' },
    );

    const other = await approved(h, { targets: [server(h, 2)], params: { IpsecServerName: 'ran' } });
    expect((await h.waitForRollout(other, ['completed', 'halted'], WAIT_MS)).state).toBe('completed');
    expect((await h.rollouts.get(baking)).state).toBe('running');

    // Cancelled mid-bake, its controller is woken at once (not an hour later) and ends its job.
    await h.rollouts.cancel(baking, 'bob');
    const queue = new Queue(ROLLOUT_QUEUE, { connection: h.orchestrator.redis, prefix: `{${h.prefix}}` });
    try {
      await waitUntil(
        async () => ((await queue.getJobState(`${baking}-run`)) === 'unknown' ? true : undefined),
        { timeoutMs: WAIT_MS, describe: () => 'the cancelled rollout’s controller to end' },
      );
    } finally {
      await queue.close();
    }
    expect((await h.rollouts.get(baking)).progress).toMatchObject({ submitted: 1, succeeded: 1 });
  });

  // Covers its waits in a row (hang guards): two plans, a change meeting the lock, a rollout's
  // change queued behind it, a run, and the first rollout's run once the lane is free.
  it('runs a rollout on another account while the only slot’s rollout waits in a lane behind someone else’s locked change', {
    timeout: 8 * WAIT_MS,
  }, async () => {
    // The lock backs the other change off for 20 s at a time (far more than the 2 s park time).
    harness = await startRolloutHarness({
      sim: { servers: 4, accessKeys: [keyA, keyB] },
      profiles: { bravo: keyB },
      policy: { accountLocked: { baseMs: 20_000, maxMs: 20_000, giveUpAfterMs: 3_600_000 } },
      concurrency: 1,
      parkMs: 2_000,
    });
    const h = harness;
    const a0 = h.sim.servers.find((s) => s.ownerAccessKeyId === keyA.accessKeyId)!;
    const b0 = h.sim.servers.find((s) => s.ownerAccessKeyId === keyB.accessKeyId)!;
    const target = { ipsecServerId: a0.ipsecServerId, regionId: a0.regionId };
    const queued = await h.rollouts.create({
      actor: 'alice',
      targets: [target],
      params: { IpsecServerName: 'queued-behind' },
    });
    const other = await h.rollouts.create({
      actor: 'alice',
      targets: [{ ipsecServerId: b0.ipsecServerId, regionId: b0.regionId, profile: 'bravo' }],
      params: { IpsecServerName: 'other-account' },
    });
    for (const id of [queued.id, other.id]) await h.waitForRollout(id, ['awaiting_approval'], WAIT_MS);

    // Someone else's change holds the server's lane, backing off on the server's financial lock.
    h.sim.setFaults({ financialLocked: [a0.ipsecServerId] });
    const { change: holder } = await h.orchestrator.changes.submit({
      ...target,
      params: { IpsecServerName: 'someone-else' },
      actor: 'zed',
    });
    await waitUntil(
      async () => ((await h.orchestrator.changes.get(holder.id)).state === 'backing_off' ? true : undefined),
      { timeoutMs: WAIT_MS, describe: () => 'the other change to back off on the lock' },
    );
    await h.rollouts.approve(queued.id, 'bob');
    const waiting = await waitUntil(
      async () => {
        const [changeId] = (await h.rollouts.changeIds(queued.id)).values();
        return changeId && (await h.orchestrator.changes.get(changeId)).state === 'queued'
          ? changeId
          : undefined;
      },
      { timeoutMs: WAIT_MS, describe: () => 'the rollout’s change to queue behind it' },
    );

    await h.rollouts.approve(other.id, 'bob');
    expect((await h.waitForRollout(other.id, ['completed', 'halted'], WAIT_MS)).state).toBe('completed');
    expect((await h.orchestrator.changes.get(waiting)).state).toBe('queued');
    expect((await h.rollouts.get(queued.id)).state).toBe('running');

    // The lane freed (its holder cancelled: nothing wakes the parked controller), the rollout's
    // change runs, and the controller learns it at its next wake.
    h.sim.setFaults({ financialLocked: [] });
    await h.orchestrator.changes.cancel(holder.id, 'zed');
    const done = await h.waitForRollout(queued.id, ['completed', 'halted'], WAIT_MS);
    expect(done).toMatchObject({ state: 'completed', progress: { total: 1, succeeded: 1 } });
  });

  // Covers its waits in a row (hang guards): four plans, three locked rollouts each taking the
  // slot in turn, a run, and three runs once the lock is lifted.
  it('runs a rollout on another account while the only slot’s rollouts wait behind a financial lock', {
    timeout: 12 * WAIT_MS,
  }, async () => {
    // The lock backs a change off for up to 20 s (far more than the 2 s park time); the give-up
    // deadline is out of reach.
    harness = await startRolloutHarness({
      sim: { servers: 14, accessKeys: [keyA, keyB] },
      profiles: { bravo: keyB },
      policy: { accountLocked: { baseMs: 20_000, maxMs: 20_000, giveUpAfterMs: 3_600_000 } },
      concurrency: 1,
      parkMs: 2_000,
    });
    const h = harness;
    const on = (key: typeof keyA) => h.sim.servers.filter((s) => s.ownerAccessKeyId === key.accessKeyId);
    const [a0, a1, a2, a3, a4, a5] = on(keyA).map((s) => ({
      ipsecServerId: s.ipsecServerId,
      regionId: s.regionId,
    }));
    const b0 = on(keyB)[0]!;
    const create = async (input: Omit<RolloutInput, 'actor'>) => {
      const { id } = await h.rollouts.create({ actor: 'alice', ...input });
      return id;
    };
    // Each waits for the lock in another branch of the controller: its concurrency full, its
    // first batch in flight, paused by a person with its first batch in flight.
    const full = await create({
      targets: [a0!, a1!],
      params: { IpsecServerName: 'locked-full' },
      strategy: { concurrency: 1 },
    });
    const batch = await create({
      targets: [a2!, a3!],
      params: { IpsecServerName: 'locked-batch' },
      strategy: { batches: [1] },
    });
    const paused = await create({
      targets: [a4!, a5!],
      params: { IpsecServerName: 'locked-paused' },
      strategy: { batches: [1] },
    });
    const other = await create({
      targets: [{ ipsecServerId: b0.ipsecServerId, regionId: b0.regionId, profile: 'bravo' }],
      params: { IpsecServerName: 'other-account' },
    });
    // Planned before the lock, which a plan counts as blocking.
    for (const id of [full, batch, paused, other]) await h.waitForRollout(id, ['awaiting_approval'], WAIT_MS);
    h.sim.setFaults({ financialLocked: [`account:${keyA.accessKeyId}`] });

    /** Approves, and waits until the rollout's first change backs off with `code`. */
    const approveUntilBackingOff = async (id: string, code: string) => {
      await h.rollouts.approve(id, 'bob');
      return waitUntil(
        async () => {
          const [changeId] = (await h.rollouts.changeIds(id)).values();
          if (!changeId) return undefined;
          const change = await h.orchestrator.changes.get(changeId);
          return change.state === 'backing_off' && change.lastCode === code ? changeId : undefined;
        },
        {
          timeoutMs: WAIT_MS,
          describe: async () =>
            `rollout ${id} (${(await h.rollouts.get(id)).state}) to back off with ${code}`,
        },
      );
    };
    // The first meets the lock: its change is the account circuit's probe. Each next one has the
    // slot only once the one before has parked; their changes wait on the circuit.
    const stuck = [await approveUntilBackingOff(full, 'VpnGateway.FinancialLocked')];
    stuck.push(await approveUntilBackingOff(batch, 'CircuitOpen'));
    stuck.push(await approveUntilBackingOff(paused, 'CircuitOpen'));
    await h.rollouts.pause(paused, 'bob');

    await h.rollouts.approve(other, 'bob');
    expect((await h.waitForRollout(other, ['completed', 'halted'], WAIT_MS)).state).toBe('completed');
    // Still held by the lock (the probe may be caught in one of its runs, which meets it again).
    for (const changeId of stuck)
      expect(['backing_off', 'running']).toContain((await h.orchestrator.changes.get(changeId)).state);
    expect((await h.rollouts.get(full)).state).toBe('running');
    expect((await h.rollouts.get(batch)).state).toBe('running');

    // Lifted: the probe's next run (within 20 s) succeeds and the circuit's waiters go at once.
    // Nothing wakes the parked controllers: each learns it at its next wake, within 2 s.
    h.sim.setFaults({ financialLocked: [] });
    await h.rollouts.resume(paused, 'bob');
    for (const id of [full, batch, paused]) {
      const done = await h.waitForRollout(id, ['completed', 'halted'], 2 * WAIT_MS);
      expect(done).toMatchObject({ state: 'completed', progress: { total: 2, succeeded: 2 } });
    }
  });
});
