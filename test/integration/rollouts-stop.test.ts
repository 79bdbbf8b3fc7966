import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeState, ChangeView } from '../../src/orchestrator/change.js';
import { TERMINAL_STATES } from '../../src/orchestrator/change.js';
import { type RolloutHarness, startRolloutHarness, submittedAfter } from '../support/rollout-harness.js';

// Enough targets that submitting the one batch takes a while: a pause or cancel lands mid-batch.
const SERVERS = 400;
/** Hang guards for each wait, and the tests' timeout covering their waits in a row. */
const WAIT_MS = 30_000;
const TEST_TIMEOUT_MS = 5 * WAIT_MS;

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(): Promise<RolloutHarness> {
  harness = await startRolloutHarness({
    sim: { servers: SERVERS, faults: { configuringMs: 0 } },
    planConcurrency: 32,
  });
  // A second change worker, so that the held-back targets finish well within the test's time.
  await harness.startWorker({ concurrency: 40 });
  return harness;
}

function targets(h: RolloutHarness) {
  return h.sim.servers.map((server) => ({ ipsecServerId: server.ipsecServerId, regionId: server.regionId }));
}

/** A rollout of every server in one batch, planned and approved; submitting starts at once. */
async function approvedOneBatch(h: RolloutHarness, name: string): Promise<string> {
  const created = await h.rollouts.create({
    actor: 'alice',
    targets: targets(h),
    params: { IpsecServerName: name },
    strategy: { batches: ['100%'] },
  });
  await h.waitForRollout(created.id, ['awaiting_approval'], WAIT_MS);
  // From now on every cloud call takes a while: the changes submitted early are still running
  // while the controller submits the rest.
  h.sim.setFaults({ latencyMs: 20 });
  await h.rollouts.approve(created.id, 'bob');
  return created.id;
}

/** Returns as soon as the first change exists (the only changes under this harness's prefix). */
async function firstChange(h: RolloutHarness): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while ((await h.orchestrator.redis.zcard(h.orchestrator.keys.changes)) === 0) {
    if (Date.now() > deadline) throw new Error('no change was submitted');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Every change in the orchestrator, whoever recorded it. */
async function allChanges(h: RolloutHarness): Promise<ChangeView[]> {
  const changes: ChangeView[] = [];
  let cursor: string | undefined;
  do {
    const page = await h.orchestrator.changes.list({ limit: 500, ...(cursor ? { cursor } : {}) });
    changes.push(...page.changes);
    cursor = page.nextCursor;
  } while (cursor);
  return changes;
}

/** Waits until every change in the orchestrator has finished, and returns them. */
async function settled(h: RolloutHarness, timeoutMs = WAIT_MS): Promise<ChangeView[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const changes = await allChanges(h);
    if (changes.every((change) => TERMINAL_STATES.has(change.state as ChangeState))) return changes;
    if (Date.now() > deadline) throw new Error('changes did not finish');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('stopping a rollout mid-batch', { timeout: TEST_TIMEOUT_MS }, () => {
  it('submits no change after a pause is acknowledged, and resumes each target once', async () => {
    const h = await start();
    const id = await approvedOneBatch(h, 'paused-mid-batch');
    await firstChange(h);
    await h.rollouts.pause(id, 'bob');
    const pausedAt = Date.now();

    const held = await settled(h);
    const late = held.filter((change) => change.createdAt > pausedAt);
    expect(late.map((change) => change.id)).toEqual([]);
    expect(await submittedAfter(h, 'rollout_paused')).toEqual([]);
    expect(held.length).toBeLessThan(SERVERS); // the pause did land mid-batch
    // What was submitted before the pause is followed to its end: nothing lost track of.
    await expect
      .poll(async () => (await h.rollouts.get(id)).progress, { timeout: WAIT_MS })
      .toMatchObject({ submitted: held.length, inFlight: 0, succeeded: held.length });
    expect((await h.rollouts.get(id)).state).toBe('paused');
    expect((await h.rollouts.changeIds(id)).size).toBe(held.length);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await allChanges(h)).toHaveLength(held.length);

    await h.rollouts.resume(id, 'bob');
    const done = await h.waitForRollout(id, ['completed', 'halted'], WAIT_MS);
    expect(done.state).toBe('completed');
    expect(done.progress).toMatchObject({
      total: SERVERS,
      submitted: SERVERS,
      succeeded: SERVERS,
      errors: 0,
    });
    const changes = await allChanges(h);
    expect(changes).toHaveLength(SERVERS);
    expect(new Set(changes.map((change) => change.ipsecServerId)).size).toBe(SERVERS);
    for (const server of h.sim.servers) expect(h.sim.server(server.ipsecServerId)!.history).toHaveLength(1);
  });

  it('submits and applies nothing more after a cancel is acknowledged', async () => {
    const h = await start();
    const id = await approvedOneBatch(h, 'cancelled-mid-batch');
    await firstChange(h);
    await h.rollouts.cancel(id, 'bob');
    const cancelledAt = Date.now();

    const changes = await settled(h);
    const late = changes.filter((change) => change.createdAt > cancelledAt);
    expect(late.map((change) => change.id)).toEqual([]);
    // Rollouts.cancel answers only after cancelling the queued changes one by one: the moment
    // the cancel took effect is its transition, in the audit stream.
    expect(await submittedAfter(h, 'rollout_cancelled')).toEqual([]);
    expect(changes.length).toBeLessThan(SERVERS); // the cancel did land mid-batch
    // Only changes submitted before the cancel, and not cancelled by it, reached the cloud...
    const succeeded = new Set(
      changes.filter((change) => change.state === 'succeeded').map((change) => change.ipsecServerId),
    );
    const applied = h.sim.servers.filter((server) => h.sim.server(server.ipsecServerId)!.history.length > 0);
    for (const server of applied) expect(succeeded.has(server.ipsecServerId)).toBe(true);
    const applies = h.sim.stats().applies;
    expect(applies).toBe(succeeded.size);
    // ... and a little later nothing more has been created or applied.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(h.sim.stats().applies).toBe(applies);
    expect(await allChanges(h)).toHaveLength(changes.length);
    const cancelled = await h.waitForRollout(id, ['cancelled'], WAIT_MS);
    await expect
      .poll(async () => (await h.rollouts.get(id)).progress, { timeout: WAIT_MS })
      .toMatchObject({ submitted: changes.length, inFlight: 0 });
    expect(cancelled.state).toBe('cancelled');
    expect((await h.rollouts.changeIds(id)).size).toBe(changes.length);
  });
});
