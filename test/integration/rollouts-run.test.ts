import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeState } from '../../src/orchestrator/change.js';
import { TERMINAL_STATES } from '../../src/orchestrator/change.js';
import { RollbackInProgressError } from '../../src/rollouts/errors.js';
import type { RolloutInput } from '../../src/rollouts/rollout.js';
import { type RolloutHarness, startRolloutHarness, submittedAfter } from '../support/rollout-harness.js';
import { waitUntil } from '../support/worker-process.js';

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function targets(h: RolloutHarness, count = h.sim.servers.length) {
  return h.sim.servers.slice(0, count).map((server) => ({
    ipsecServerId: server.ipsecServerId,
    regionId: server.regionId,
  }));
}

/** Creates, waits for the plan, and approves (bob) a rollout submitted by alice. */
async function approved(h: RolloutHarness, input: Omit<RolloutInput, 'actor'>) {
  const created = await h.rollouts.create({ actor: 'alice', ...input });
  await h.waitForRollout(created.id, ['awaiting_approval']);
  await h.rollouts.approve(created.id, 'bob');
  return created.id;
}

/** Samples how many of the rollout's changes are not finished, until the rollout ends. */
async function sampleInFlight(h: RolloutHarness, id: string, until: string[]): Promise<number[]> {
  const samples: number[] = [];
  for (;;) {
    const ids = [...(await h.rollouts.changeIds(id)).values()];
    const states = await Promise.all(
      ids.map(async (changeId) => (await h.orchestrator.changes.get(changeId)).state),
    );
    samples.push(states.filter((state) => !TERMINAL_STATES.has(state as ChangeState)).length);
    if (until.includes((await h.rollouts.get(id)).state)) return samples;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('running a rollout', () => {
  it('runs batches in order and never has more than a batch in flight', async () => {
    harness = await startRolloutHarness({ sim: { servers: 6, faults: { configuringMs: 0, latencyMs: 15 } } });
    const h = harness;
    const id = await approved(h, {
      targets: targets(h),
      params: { LocalSubnet: '172.16.5.0/24' },
      strategy: { batches: [1, '50%'] },
    });
    const samples = await sampleInFlight(h, id, ['completed', 'halted']);
    expect(Math.max(...samples)).toBeLessThanOrEqual(3);
    expect(Math.max(...samples)).toBeGreaterThan(1);
    const done = await h.rollouts.get(id);
    expect(done.state).toBe('completed');
    // Batches of 1, then 3 (50% of 6), then the last size again for the 2 left.
    expect(done.progress).toMatchObject({
      total: 6,
      succeeded: 6,
      percent: 100,
      currentBatch: 3,
      batchCount: 3,
    });
    expect(done.progress.byState).toEqual({ succeeded: 6 });
    for (const target of targets(h)) {
      expect(h.sim.server(target.ipsecServerId)!.config.LocalSubnet).toBe('172.16.5.0/24');
    }
    // Changes went through the ordinary pipeline, in target order across batches.
    const changes = await Promise.all(
      [...(await h.rollouts.changeIds(id)).entries()]
        .sort(([a], [b]) => a - b)
        .map(([, changeId]) => h.orchestrator.changes.get(changeId)),
    );
    expect(changes.map((change) => change.actor)).toEqual(Array(6).fill('alice'));
    expect(changes[0]!.finishedAt!).toBeLessThanOrEqual(
      Math.min(...changes.slice(1).map((c) => c.createdAt)),
    );
  });

  it('ramps concurrency 1, 2, 4 up to its limit', async () => {
    harness = await startRolloutHarness({ sim: { servers: 8, faults: { configuringMs: 0, latencyMs: 15 } } });
    const h = harness;
    const id = await approved(h, {
      targets: targets(h),
      params: { LocalSubnet: '172.16.6.0/24' },
      strategy: { concurrency: '50%' },
    });
    const samples = await sampleInFlight(h, id, ['completed', 'halted']);
    expect(Math.max(...samples)).toBeLessThanOrEqual(4);
    expect(Math.max(...samples)).toBeGreaterThan(2);
    expect((await h.rollouts.get(id)).progress).toMatchObject({ succeeded: 8, percent: 100 });
    // The ramp starts at one: the second change was submitted after the first one finished.
    const changes = await Promise.all(
      [...(await h.rollouts.changeIds(id)).values()].map((changeId) => h.orchestrator.changes.get(changeId)),
    );
    changes.sort((a, b) => a.createdAt - b.createdAt);
    expect(changes[1]!.createdAt).toBeGreaterThanOrEqual(changes[0]!.finishedAt!);
  });

  it('halts once errors exceed maxErrors: no new change starts', async () => {
    harness = await startRolloutHarness({ sim: { servers: 5 } });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h),
      params: { LocalSubnet: '172.16.7.0/24' },
      strategy: { batches: [1] },
      maxErrors: 1,
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    // Every call fails from now on: each change fails after its transient attempts.
    h.sim.setFaults({ failRate: 1 });
    await h.rollouts.approve(created.id, 'bob');
    const halted = await h.waitForRollout(created.id, ['halted', 'completed'], 20_000);
    expect(halted.state).toBe('halted');
    expect(halted.progress).toMatchObject({ total: 5, submitted: 2, errors: 2, succeeded: 0, inFlight: 0 });
    expect(halted.reason).toMatch(/2 errors exceeded maxErrors 1/);
    expect((await h.rollouts.changeIds(created.id)).size).toBe(2);
  });

  it('does not count a change an operator cancelled as an error: the rest of the rollout runs', async () => {
    harness = await startRolloutHarness({ sim: { servers: 3, faults: { configuringMs: 0 } } });
    const h = harness;
    const [first, ...rest] = targets(h);
    const id = await approved(h, {
      targets: [first!, ...rest],
      params: { IpsecServerName: 'skip-one' },
      strategy: { batches: [1] },
      maxErrors: 0,
    });
    // Someone else's change holds the first target's lane, so the rollout's change there waits.
    h.sim.setFaults({ applyLatencyMs: 800 });
    await h.orchestrator.changes.submit({ ...first!, params: { IpsecServerName: 'other' }, actor: 'zed' });
    let skipped: string | undefined;
    while (!skipped) {
      skipped = (await h.rollouts.changeIds(id)).get(0);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect((await h.orchestrator.changes.cancel(skipped, 'alice')).state).toBe('cancelled');
    h.sim.setFaults({ applyLatencyMs: 0 });
    const done = await h.waitForRollout(id, ['completed', 'halted']);
    expect(done.state).toBe('completed');
    expect(done.progress).toMatchObject({ total: 3, succeeded: 2, errors: 0 });
  });

  it('runs the targets its plan could not judge: the pipeline dry-runs them', async () => {
    harness = await startRolloutHarness({
      sim: { servers: 2, faults: { configuringMs: 0 } },
      policy: { busy: { baseMs: 20, maxMs: 40, giveUpAfterMs: 200 } },
    });
    const h = harness;
    h.sim.setFaults({ busyRate: 1 });
    const created = await h.rollouts.create({
      targets: targets(h),
      params: { IpsecServerName: 'judged-late' },
      actor: 'alice',
    });
    const planned = await h.waitForRollout(created.id, ['awaiting_approval']);
    expect(planned.plan).toMatchObject({ unknown: 2 });
    // What its approvers are shown is what it will run: both targets, in one batch.
    expect(planned.progress).toMatchObject({ total: 2, batchCount: 1 });
    h.sim.setFaults({ busyRate: 0 });
    await h.rollouts.approve(created.id, 'bob');
    const done = await h.waitForRollout(created.id, ['completed', 'halted']);
    expect(done).toMatchObject({ state: 'completed', progress: { total: 2, succeeded: 2 } });
    for (const t of targets(h))
      expect(h.sim.server(t.ipsecServerId)!.config.IpsecServerName).toBe('judged-late');
  });

  it("is not taken over by a client's change sent with the rollout's own idempotency key", async () => {
    harness = await startRolloutHarness({ sim: { servers: 2, faults: { configuringMs: 0 } } });
    const h = harness;
    const [first, second] = targets(h);
    const created = await h.rollouts.create({
      targets: [first!, second!],
      params: { IpsecServerName: 'the-rollout' },
      maxErrors: 0,
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    // The key the controller gives its change for each target, sent first by a client: one with
    // another body, one with the very body the rollout's change will have.
    const byClient = async (target: typeof first, index: number, params: { IpsecServerName: string }) =>
      (
        await h.orchestrator.changes.submit({
          ...target!,
          params,
          actor: 'alice',
          note: `rollout ${created.id}`,
          idempotencyKey: `rollout/${created.id}/${index}`,
        })
      ).change.id;
    const clientChanges = [
      await byClient(first, 0, { IpsecServerName: 'someone-else' }),
      await byClient(second, 1, { IpsecServerName: 'the-rollout' }),
    ];
    await h.rollouts.approve(created.id, 'bob');
    const done = await h.waitForRollout(created.id, ['completed', 'halted']);
    expect(done).toMatchObject({ state: 'completed', progress: { total: 2, succeeded: 2, errors: 0 } });
    const rolloutChanges = [...(await h.rollouts.changeIds(created.id)).values()];
    expect(rolloutChanges).toHaveLength(2);
    for (const id of rolloutChanges) expect(clientChanges).not.toContain(id);
  });

  it('pauses after the first batch until resumed', async () => {
    harness = await startRolloutHarness({ sim: { servers: 3 } });
    const h = harness;
    const id = await approved(h, {
      targets: targets(h),
      params: { IpsecServerName: 'paused-rollout' },
      strategy: { batches: [1] },
      pause: 'first',
    });
    const paused = await h.waitForRollout(id, ['paused']);
    expect(paused).toMatchObject({ reason: 'paused after batch 1' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await h.rollouts.get(id)).progress).toMatchObject({ submitted: 1, succeeded: 1 });
    await h.rollouts.resume(id, 'bob');
    const done = await h.waitForRollout(id, ['completed']);
    expect(done.progress.succeeded).toBe(3);
    const types = (await h.rollouts.events(id)).map((event) => event.type);
    expect(types).toEqual(expect.arrayContaining(['rollout_paused', 'rollout_resumed', 'rollout_completed']));
    expect(types.filter((type) => type === 'rollout_paused')).toHaveLength(1);
  });

  it('pause by a user holds new changes; cancel ends the rollout and starts nothing more', {
    timeout: 120_000,
  }, async () => {
    harness = await startRolloutHarness({ sim: { servers: 4 } });
    const h = harness;
    // Long enough that the pause below lands before batch 2 could start, even on a loaded machine.
    const bakeMs = 1_000;
    const id = await approved(h, {
      targets: targets(h),
      params: { IpsecServerName: 'cancelled-rollout' },
      strategy: { batches: [1] },
      bakeMs,
    });
    await h.waitForRollout(id, ['running']);
    await h.rollouts.pause(id, 'bob');
    // What was submitted before the pause (batch 1's change, if it was) is followed to its end...
    const held = await waitUntil(
      async () => {
        const ids = [...(await h.rollouts.changeIds(id)).values()];
        const changes = await Promise.all(ids.map((changeId) => h.orchestrator.changes.get(changeId)));
        const { progress } = await h.rollouts.get(id);
        const done = changes.every((change) => TERMINAL_STATES.has(change.state as ChangeState));
        return done && progress.inFlight === 0 && progress.submitted === ids.length ? changes : undefined;
      },
      { timeoutMs: 30_000, describe: () => 'the changes submitted before the pause to end' },
    );
    expect(held.length).toBeLessThanOrEqual(1);
    // ... and past the end of its bake, when a running rollout would start batch 2, a paused one
    // has submitted nothing after its pause.
    const endedAt = held.length > 0 ? Math.max(...held.map((change) => change.updatedAt)) : Date.now();
    const bakeOver = endedAt + bakeMs + 1_000;
    while (Date.now() < bakeOver) await new Promise((resolve) => setTimeout(resolve, bakeOver - Date.now()));
    expect(await submittedAfter(h, 'rollout_paused')).toEqual([]);
    expect((await h.rollouts.changeIds(id)).size).toBe(held.length);
    expect((await h.rollouts.get(id)).progress.submitted).toBe(held.length);

    await h.rollouts.resume(id, 'bob');
    await h.rollouts.cancel(id, 'bob');
    const cancelled = await h.waitForRollout(id, ['cancelled'], 30_000);
    expect(cancelled.state).toBe('cancelled');
    await waitUntil(
      async () => {
        const { progress } = await h.rollouts.get(id);
        const ids = [...(await h.rollouts.changeIds(id)).values()];
        return progress.inFlight === 0 && progress.submitted === ids.length ? true : undefined;
      },
      { timeoutMs: 30_000, describe: () => 'the cancelled rollout to follow its changes to their end' },
    );
    expect(await submittedAfter(h, 'rollout_cancelled')).toEqual([]);
    const after = await h.rollouts.get(id);
    expect(after.progress.submitted).toBeLessThanOrEqual(held.length + 1);
    expect(after.progress.submitted).toBeLessThan(4);
    await expect(h.rollouts.resume(id, 'bob')).rejects.toMatchObject({ code: 'ROLLOUT_STATE_CONFLICT' });
  });
});

describe('a user pause where the rollout asked for one', () => {
  // Covers its waits in a row (hang guards): plan and run 15 s each, batch 1 up to 60 s twice.
  it('stands for it: the resume goes on to the next batch instead of pausing again', {
    timeout: 180_000,
  }, async () => {
    harness = await startRolloutHarness({ sim: { servers: 3 } });
    const h = harness;
    const created = await h.rollouts.create({
      actor: 'alice',
      targets: targets(h),
      params: { IpsecServerName: 'user-paused' },
      strategy: { batches: [1] },
      pause: 'first',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    // Batch 1's one change is held (its gateway answers busy) until the user has paused: the
    // pause surely lands while it runs, after it was submitted and before it ends.
    h.sim.setFaults({ busyRate: 1 });
    await h.rollouts.approve(created.id, 'bob');
    await waitUntil(async () => ((await h.rollouts.changeIds(created.id)).size === 1 ? true : undefined), {
      timeoutMs: 30_000,
      describe: () => 'batch 1 to be submitted',
    });
    await h.rollouts.pause(created.id, 'bob');
    h.sim.setFaults({ busyRate: 0 });
    // Paused at the point the rollout asked for: batch 1 done, batch 2 not started.
    await waitUntil(
      async () => ((await h.rollouts.get(created.id)).progress.succeeded >= 1 ? true : undefined),
      { timeoutMs: 60_000, intervalMs: 20, describe: () => 'batch 1 to finish' },
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await h.rollouts.get(created.id)).progress).toMatchObject({ submitted: 1, succeeded: 1 });

    await h.rollouts.resume(created.id, 'bob');
    expect((await h.waitForRollout(created.id, ['completed', 'paused', 'halted'])).state).toBe('completed');
    const pauses = (await h.rollouts.events(created.id)).filter((event) => event.type === 'rollout_paused');
    expect(pauses.map((event) => event.actor)).toEqual(['bob']);
  });
});

describe('a controller handed over', () => {
  it('resumes in another worker from Redis, submitting nothing twice', async () => {
    harness = await startRolloutHarness({ sim: { servers: 4 } });
    const h = harness;
    const id = await approved(h, {
      targets: targets(h),
      params: { IpsecServerName: 'handed-over' },
      strategy: { batches: [1, 2] },
      pause: 'first',
    });
    await h.waitForRollout(id, ['paused']);
    // The worker running the controller shuts down mid-rollout; another one takes the job up.
    await h.rolloutWorker.close();
    await h.startRolloutWorker();
    await h.rollouts.resume(id, 'bob');
    const done = await h.waitForRollout(id, ['completed']);
    expect(done.progress).toMatchObject({ total: 4, submitted: 4, succeeded: 4, currentBatch: 3 });
    expect((await h.rollouts.changeIds(id)).size).toBe(4);
    for (const t of targets(h)) expect(h.sim.server(t.ipsecServerId)!.history).toHaveLength(1);
    expect((await h.rollouts.events(id)).filter((event) => event.type === 'rollout_paused')).toHaveLength(1);
  });
});

describe('rolling back', () => {
  it('restores each applied target from its change before snapshot, newest first', async () => {
    harness = await startRolloutHarness({ sim: { servers: 3 } });
    const h = harness;
    const original = new Map(
      targets(h).map((t) => [t.ipsecServerId, structuredClone(h.sim.server(t.ipsecServerId)!.config)]),
    );
    const id = await approved(h, {
      targets: targets(h),
      params: { LocalSubnet: '172.16.8.0/24', IkeConfig: { IkeLifetime: 3600 } },
      strategy: { batches: [1] },
    });
    await h.waitForRollout(id, ['completed']);
    for (const t of targets(h)) {
      expect(h.sim.server(t.ipsecServerId)!.config).toMatchObject({
        LocalSubnet: '172.16.8.0/24',
        IkeConfig: { IkeLifetime: 3600 },
      });
    }

    const { rollout: rollback, created } = await h.rollouts.rollback(id, 'carol');
    expect(created).toBe(true);
    expect(rollback.rollbackOf).toBe(id);
    // Asked again, by anyone, while it runs or once it has: the same rollback, not a second one.
    expect(await h.rollouts.rollback(id, 'dave')).toEqual({
      rollout: expect.objectContaining({ id: rollback.id }),
      created: false,
    });
    await h.waitForRollout(rollback.id, ['awaiting_approval']);
    const plan = await h.rollouts.plan(rollback.id);
    // Newest applied first: the reverse of the original batch order.
    expect(plan.map((entry) => entry.ipsecServerId)).toEqual(
      targets(h)
        .map((t) => t.ipsecServerId)
        .reverse(),
    );
    expect(plan.every((entry) => entry.kind === 'would-change')).toBe(true);
    await h.rollouts.approve(rollback.id, 'bob');
    await h.waitForRollout(rollback.id, ['completed']);
    expect((await h.rollouts.rollback(id, 'carol')).rollout.id).toBe(rollback.id);
    expect((await h.rollouts.list()).rollouts.filter((r) => r.rollbackOf === id)).toHaveLength(1);
    for (const t of targets(h)) {
      const before = original.get(t.ipsecServerId)!;
      const now = h.sim.server(t.ipsecServerId)!.config;
      expect(now.LocalSubnet).toBe(before.LocalSubnet);
      expect(now.IkeConfig).toEqual(before.IkeConfig);
    }
  });

  it('rolls back a concurrency rollout stored with a pause and a bake from before they were refused', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1, faults: { configuringMs: 0 } } });
    const h = harness;
    const id = await approved(h, {
      targets: targets(h),
      params: { IpsecServerName: 'stored-earlier' },
      strategy: { concurrency: 1 },
    });
    await h.waitForRollout(id, ['completed']);
    // What an earlier version stored: it took both with concurrency, and ignored them.
    const key = h.orchestrator.keys.rollout(id);
    const settings = JSON.parse((await h.orchestrator.redis.hget(key, 'settings')) as string);
    await h.orchestrator.redis.hset(
      key,
      'settings',
      JSON.stringify({ ...settings, pause: 'every', bakeMs: 60_000 }),
    );

    const { rollout: rollback, created } = await h.rollouts.rollback(id, 'carol');
    expect(created).toBe(true);
    expect(rollback.settings).toMatchObject({ strategy: { concurrency: 1 }, pause: 'none', bakeMs: 0 });
  });

  it('is refused while changes of a cancelled rollout still run, then covers what they applied', async () => {
    // Every apply takes 1 s, from the start: set once the first batch is done, the fault could come
    // after the second change's apply on a loaded machine, and the test would wait for a step gone by.
    harness = await startRolloutHarness({
      sim: { servers: 2, faults: { configuringMs: 0, applyLatencyMs: 1_000 } },
    });
    const h = harness;
    const [a, b] = targets(h);
    const id = await approved(h, {
      targets: [a!, b!],
      params: { IpsecServerName: 'to-be-undone' },
      strategy: { batches: [1] },
    });
    // The second target's change is applying (slowly) when the rollout is cancelled.
    let second: string | undefined;
    while (!second || (await h.orchestrator.changes.get(second)).step !== 'dry_run_passed') {
      second = (await h.rollouts.changeIds(id)).get(1);
      await new Promise((r) => setTimeout(r, 10));
    }
    await h.rollouts.cancel(id, 'alice');
    await expect(h.rollouts.rollback(id, 'carol')).rejects.toMatchObject({ code: 'ROLLBACK_TOO_EARLY' });
    expect(await h.waitFor(second, ['succeeded'])).toBe('succeeded');

    const { rollout: rollback } = await h.rollouts.rollback(id, 'carol');
    const covered = (await h.rollouts.targets(rollback.id)).map((t) => t.ipsecServerId);
    expect(covered.sort()).toEqual([a!.ipsecServerId, b!.ipsecServerId].sort());
  });

  it('covers a target whose change ended failed after its apply went out', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1, faults: { configuringMs: 0 } } });
    const h = harness;
    const [a] = targets(h);
    const before = h.sim.server(a!.ipsecServerId)!.config.IpsecServerName;
    const created = await h.rollouts.create({
      targets: [a!],
      params: { IpsecServerName: 'applied-unverified' },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    // Reads lag the apply for longer than the verify tries: the change ends failed, applied.
    h.sim.setFaults({ staleReadMs: 5_000 });
    await h.rollouts.approve(created.id, 'bob');
    expect((await h.waitForRollout(created.id, ['halted', 'completed'])).state).toBe('halted');
    expect(h.sim.server(a!.ipsecServerId)!.config.IpsecServerName).toBe('applied-unverified');

    const { rollout: rollback } = await h.rollouts.rollback(created.id, 'carol');
    expect(await h.rollouts.targets(rollback.id)).toMatchObject([
      { ipsecServerId: a!.ipsecServerId, params: { IpsecServerName: before } },
    ]);
  });

  it('makes one rollback for concurrent asks, and a new one after the first was rejected', async () => {
    harness = await startRolloutHarness({ sim: { servers: 2 } });
    const h = harness;
    const id = await approved(h, { targets: targets(h), params: { LocalSubnet: '172.16.9.0/24' } });
    await h.waitForRollout(id, ['completed']);

    const answers = await Promise.allSettled(
      ['carol', 'dave', 'erin'].map((who) => h.rollouts.rollback(id, who)),
    );
    for (const answer of answers) {
      if (answer.status === 'rejected') expect(answer.reason).toBeInstanceOf(RollbackInProgressError);
    }
    const made = answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : []));
    expect(made.filter((answer) => answer.created)).toHaveLength(1);
    expect(new Set(made.map((answer) => answer.rollout.id)).size).toBe(1);
    const rollbacks = (await h.rollouts.list()).rollouts.filter((rollout) => rollout.rollbackOf === id);
    expect(rollbacks).toHaveLength(1);

    const first = rollbacks[0]!;
    await h.waitForRollout(first.id, ['awaiting_approval']);
    // What a call leaves between its claim and storing its rollout: a claimed id not stored yet.
    const key = h.orchestrator.keys.rollout(id);
    await h.orchestrator.redis.hset(
      key,
      'rollbackId',
      'rol-being-made',
      'rollbackClaimedAt',
      String(Date.now()),
    );
    await expect(h.rollouts.rollback(id, 'frank')).rejects.toBeInstanceOf(RollbackInProgressError);
    // Put back as it was: the claim of the rollback made above.
    await h.orchestrator.redis.hset(key, 'rollbackId', first.id);
    await h.rollouts.reject(first.id, 'bob', 'not tonight');
    const again = await h.rollouts.rollback(id, 'carol');
    expect(again.created).toBe(true);
    expect(again.rollout.id).not.toBe(first.id);
    expect(again.rollout.rollbackOf).toBe(id);
  });
});
