import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { ApprovalRefusedError, RolloutStateError } from '../../src/rollouts/errors.js';
import { ROLLOUT_TASK_QUEUE } from '../../src/rollouts/rollout-queue.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { waitUntil } from '../support/worker-process.js';

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

function targets(h: RolloutHarness, count: number) {
  return h.sim.servers.slice(0, count).map((server) => ({
    ipsecServerId: server.ipsecServerId,
    regionId: server.regionId,
  }));
}

/** The approval script alone, as if its caller died (or lost the answer) before adding the run job. */
function approvalWithoutItsJob(h: RolloutHarness, rolloutId: string, approver: string) {
  const { keys, scripts } = h.orchestrator;
  const event = JSON.stringify({ ts: Date.now(), type: 'x', changeId: rolloutId });
  return scripts.run(
    'rollout-approve',
    [keys.rollout(rolloutId), keys.rolloutApprovals(rolloutId), keys.audit],
    [approver, Date.now(), event, event, event],
  );
}

describe('rollout approvals', () => {
  it('needs N distinct approvers other than the submitter, then runs', async () => {
    harness = await startRolloutHarness({ sim: { servers: 2 } });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h, 2),
      params: { IpsecServerName: 'approved-name' },
      approvals: { required: 2 },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);

    await expect(h.rollouts.approve(created.id, 'alice')).rejects.toMatchObject({ reason: 'self' });
    expect((await h.rollouts.approve(created.id, 'bob')).state).toBe('awaiting_approval');
    const again = await h.rollouts.approve(created.id, 'bob').catch((error: unknown) => error);
    expect(again).toBeInstanceOf(ApprovalRefusedError);
    expect(again).toMatchObject({ reason: 'duplicate' });
    // Nothing ran on one approval out of two.
    expect(h.sim.stats().applies).toBe(0);
    const approved = await h.rollouts.approve(created.id, 'carol');
    expect(['approved', 'running', 'completed']).toContain(approved.state);
    expect(approved.approvals).toBe(2);

    const done = await h.waitForRollout(created.id, ['completed', 'halted']);
    expect(done.state).toBe('completed');
    expect(done.progress).toMatchObject({ total: 2, succeeded: 2, errors: 0, percent: 100 });
    for (const target of targets(h, 2)) {
      expect(h.sim.server(target.ipsecServerId)!.config.IpsecServerName).toBe('approved-name');
    }
    const events = await h.rollouts.events(created.id);
    expect(events.map((event) => [event.type, event.actor])).toEqual([
      ['rollout_created', 'alice'],
      ['rollout_planned', 'system'],
      ['rollout_awaiting_approval', 'system'],
      ['rollout_approval', 'bob'],
      ['rollout_approval', 'carol'],
      ['rollout_approved', 'carol'],
      ['rollout_started', 'system'],
      ['rollout_completed', 'system'],
    ]);
    // The rollout's events are in the global audit stream too.
    const audit = await h.orchestrator.audit.query({});
    expect(audit.filter((event) => event.changeId === created.id)).toHaveLength(events.length);
  });

  it('expires when the approval window closes', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 } });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h, 1),
      params: { IpsecServerName: 'never-applied' },
      approvals: { required: 1, expiresMs: 300 },
      actor: 'alice',
    });
    const expired = await h.waitForRollout(created.id, ['expired'], 5_000);
    expect(expired.reason).toBe('approval window closed');
    await expect(h.rollouts.approve(created.id, 'bob')).rejects.toBeInstanceOf(RolloutStateError);
    expect(h.sim.stats().applies).toBe(0);
    expect((await h.rollouts.events(created.id)).map((event) => event.type)).toContain('rollout_expired');
  });

  it('expires at the end of its window when its expiry job wakes early (clocks that disagree)', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 } });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h, 1),
      params: { IpsecServerName: 'never-applied' },
      // Long enough that the job is still more than 5 s early when promoted on a loaded machine:
      // the old code ended such a job without expiring, and slept through a shorter wait.
      approvals: { required: 1, expiresMs: 10_000 },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    const tasks = new Queue(ROLLOUT_TASK_QUEUE, { connection: { url: h.redisUrl }, prefix: `{${h.prefix}}` });
    try {
      // The planner adds the job after the rollout is awaiting approval: promoting nothing would
      // leave the window to close on time, and the test to pass whatever the job does.
      const job = await waitUntil(() => tasks.getJob(`${created.id}-expire`), {
        describe: () => 'the expiry job to be added',
      });
      // The job runs now, seconds before the window closes, as on a worker whose clock is ahead.
      await job.promote();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await h.rollouts.get(created.id)).state).toBe('awaiting_approval');
      const expired = await h.waitForRollout(created.id, ['expired'], 20_000);
      expect(expired.reason).toBe('approval window closed');
    } finally {
      await tasks.close();
    }
  });

  it('is rejected by someone other than its submitter, with the reason audited', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 } });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h, 1),
      params: { IpsecServerName: 'never-applied' },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    await expect(h.rollouts.reject(created.id, 'alice', 'mine')).rejects.toBeInstanceOf(ApprovalRefusedError);
    const rejected = await h.rollouts.reject(created.id, 'bob', 'wrong window');
    expect(rejected).toMatchObject({ state: 'rejected', reason: 'wrong window' });
    await expect(h.rollouts.approve(created.id, 'carol')).rejects.toBeInstanceOf(RolloutStateError);
    await expect(h.rollouts.rollback(created.id, 'carol')).rejects.toBeInstanceOf(RolloutStateError);
    const last = (await h.rollouts.events(created.id)).at(-1)!;
    expect(last).toMatchObject({
      type: 'rollout_rejected',
      actor: 'bob',
      details: { reason: 'wrong window' },
    });
  });

  it('takes an approval whose answer was lost, sent again, as the same approval, and runs', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 } });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h, 1),
      params: { IpsecServerName: 'approved-once' },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    // The approval script ran, and its answer never came back: nobody added the run job.
    expect(await approvalWithoutItsJob(h, created.id, 'bob')).toEqual(['approved', 1]);

    // ioredis sends it again (or bob retries): the same approval, and the rollout goes on.
    const again = await h.rollouts.approve(created.id, 'bob');
    expect(['approved', 'running', 'completed']).toContain(again.state);
    expect((await h.waitForRollout(created.id, ['completed', 'halted'])).state).toBe('completed');
    // Someone else approving now is still a conflict.
    await expect(h.rollouts.approve(created.id, 'carol')).rejects.toBeInstanceOf(RolloutStateError);
  });

  it('needs at least the approvers the approval policy asks of the changes it carries', async () => {
    harness = await startRolloutHarness({
      sim: { servers: 1 },
      policy: { approval: { when: ['Psk'], required: 2 } },
    });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h, 1),
      params: { Psk: 'rollout-rotated-psk', PskEnabled: true },
      approvals: { required: 1 },
      actor: 'alice',
    });
    expect(created.approvalsRequired).toBe(2);
    await h.waitForRollout(created.id, ['awaiting_approval']);
    expect((await h.rollouts.approve(created.id, 'bob')).state).toBe('awaiting_approval');
    expect(h.sim.stats().applies).toBe(0);
    const approved = await h.rollouts.approve(created.id, 'carol');
    expect(['approved', 'running', 'completed']).toContain(approved.state);
    expect((await h.waitForRollout(created.id, ['completed', 'halted'])).state).toBe('completed');

    // A rollout the policy does not catch keeps its own number.
    const plain = await h.rollouts.create({
      targets: targets(h, 1),
      params: { IpsecServerName: 'not-caught' },
      approvals: { required: 1 },
      actor: 'alice',
    });
    expect(plain.approvalsRequired).toBe(1);
  });

  it('is taken up by a running worker when the process that approved it died before adding its job', async () => {
    harness = await startRolloutHarness({ sim: { servers: 1 }, resumeIntervalMs: 200 });
    const h = harness;
    const created = await h.rollouts.create({
      targets: targets(h, 1),
      params: { IpsecServerName: 'resumed' },
      actor: 'alice',
    });
    await h.waitForRollout(created.id, ['awaiting_approval']);
    await approvalWithoutItsJob(h, created.id, 'bob');
    // Nobody calls approve again: the worker, already running, finds it on its own.
    expect((await h.waitForRollout(created.id, ['completed', 'halted'])).state).toBe('completed');
  });
});
