import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import type { RolloutInput } from '../../src/rollouts/rollout.js';
import { ROLLOUT_QUEUE } from '../../src/rollouts/rollout-queue.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { waitUntil } from '../support/worker-process.js';

/**
 * A controller holds its worker slot only while it has something to do: one whose rollout is
 * paused (nothing in flight), or baking longer than its park time, hands its job back to the
 * queue until a resume or cancel wakes it, so the slots go to rollouts that run. Plans and
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
});
