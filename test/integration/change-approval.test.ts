import { afterEach, describe, expect, it } from 'vitest';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';
import { type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const PSK = 'Appr0val-Psk-Value';
const approvalPolicy = (approval: PipelinePolicyInput['approval']): PipelinePolicyInput => ({ approval });

const submit = (h: Harness, server: number, params: Record<string, unknown>, actor = 'alice') =>
  submitTo(h, server, params, { actor });

async function eventTypes(h: Harness, changeId: string) {
  return (await h.orchestrator.audit.forChange(changeId)).map((event) => event.type);
}

async function expiryJobs(h: Harness) {
  const jobs = await h.orchestrator.queue.queue.getJobs(['delayed', 'waiting', 'active']);
  return jobs.filter((job) => job.name === 'expire').map((job) => job.data.changeId);
}

describe('change approvals', () => {
  it('holds a Psk change out of its lane until two distinct approvers (not the submitter) approve', async () => {
    harness = await startHarness({
      sim: { faults: { configuringMs: 0 } },
      policy: approvalPolicy({ when: ['Psk'], required: 2 }),
    });
    const changes = harness.orchestrator.changes;
    const held = await submit(harness, 0, { Psk: PSK, PskEnabled: true });
    expect(held.state).toBe('awaiting_approval');
    expect(held.approval).toMatchObject({ required: 2, approvers: [] });
    expect(held.approval!.expiresAt).toBeGreaterThan(Date.now() + 23 * 3_600_000);
    expect(await expiryJobs(harness)).toEqual([held.id]);

    // Not in the lane: a change submitted after it on the same server runs first.
    expect(await changes.laneOf(held.ipsecServerId)).toEqual([]);
    const ordinary = await submit(harness, 0, { IpsecServerName: 'not-held' });
    expect(ordinary.state).toBe('queued');
    expect(ordinary.approval).toBeUndefined();
    expect(await harness.waitFor(ordinary.id, ['succeeded'])).toBe('succeeded');
    expect((await changes.get(held.id)).state).toBe('awaiting_approval');

    await expect(changes.approve(held.id, 'alice')).rejects.toMatchObject({ code: 'APPROVER_IS_SUBMITTER' });
    const once = await changes.approve(held.id, 'bob');
    expect(once.state).toBe('awaiting_approval');
    expect(once.approval?.approvers).toEqual(['bob']);
    // The same approver again counts once.
    const twice = await changes.approve(held.id, 'bob');
    expect(twice.state).toBe('awaiting_approval');
    expect(twice.approval?.approvers).toEqual(['bob']);
    expect(await changes.laneOf(held.ipsecServerId)).toEqual([]);

    const approved = await changes.approve(held.id, 'carol');
    expect(['queued', 'running', 'succeeded']).toContain(approved.state);
    expect(approved.approval?.approvers).toEqual(['bob', 'carol']);
    expect(await harness.waitFor(held.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');
    expect(harness.sim.server(held.ipsecServerId)!.history).toHaveLength(2);
    expect(await expiryJobs(harness)).toEqual([]);

    const events = await harness.orchestrator.audit.forChange(held.id);
    expect(events.map((event) => event.type)).toEqual([
      'submitted',
      'approval',
      'approved',
      'running',
      'dry_run_passed',
      'applied',
      'succeeded',
    ]);
    expect(events[1]).toMatchObject({ actor: 'bob', details: { required: 2 } });
    expect(events[2]).toMatchObject({
      actor: 'carol',
      details: { required: 2, approvers: ['bob', 'carol'] },
    });
    expect(JSON.stringify(events)).not.toContain(PSK);

    // Approving or rejecting an ended change is a conflict.
    await expect(changes.approve(held.id, 'dave')).rejects.toMatchObject({ code: 'CHANGE_STATE_CONFLICT' });
    await expect(changes.reject(held.id, 'dave', 'late')).rejects.toMatchObject({
      code: 'CHANGE_STATE_CONFLICT',
    });
  });

  it('rejects with a reason: the change ends rejected and is never applied', async () => {
    harness = await startHarness({
      sim: { faults: { configuringMs: 0 } },
      policy: approvalPolicy({ when: ['EffectImmediately'] }),
    });
    const changes = harness.orchestrator.changes;
    const plain = await submit(harness, 1, { IpsecServerName: 'plain', EffectImmediately: false });
    expect(plain.state).toBe('queued');
    const held = await submit(harness, 1, { IpsecServerName: 'now', EffectImmediately: true });
    expect(held.state).toBe('awaiting_approval');

    await expect(changes.reject(held.id, 'alice', 'mine')).rejects.toMatchObject({
      code: 'APPROVER_IS_SUBMITTER',
    });
    await expect(changes.reject(held.id, 'bob', '')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const rejected = await changes.reject(held.id, 'bob', 'not during business hours');
    expect(rejected.state).toBe('rejected');
    expect(rejected.approval?.reason).toBe('not during business hours');
    await expect(changes.approve(held.id, 'carol')).rejects.toMatchObject({ code: 'CHANGE_STATE_CONFLICT' });

    expect(await harness.waitFor(plain.id, ['succeeded'])).toBe('succeeded');
    const history = harness.sim.server(held.ipsecServerId)!.history;
    expect(history.map((entry) => entry.clientToken)).toEqual([plain.clientToken]);
    const events = await harness.orchestrator.audit.forChange(held.id);
    expect(events.map((event) => event.type)).toEqual(['submitted', 'rejected']);
    expect(events[1]).toMatchObject({ actor: 'bob', details: { reason: 'not during business hours' } });
    expect(await expiryJobs(harness)).toEqual([]);
  });

  it('expires a change nobody approved at its deadline, by its delayed job', async () => {
    harness = await startHarness({
      sim: { faults: { configuringMs: 0 } },
      policy: approvalPolicy({ when: ['always'], expiresMs: 300 }),
    });
    const held = await submit(harness, 2, { IpsecServerName: 'too-late' });
    expect(held.state).toBe('awaiting_approval');
    expect(await harness.waitFor(held.id, ['expired'], 5_000)).toBe('expired');
    expect(await eventTypes(harness, held.id)).toEqual(['submitted', 'expired']);
    const ended = await harness.orchestrator.changes.get(held.id);
    expect(ended.finishedAt).toBeGreaterThanOrEqual(held.approval!.expiresAt);
    await expect(harness.orchestrator.changes.approve(held.id, 'bob')).rejects.toMatchObject({
      code: 'CHANGE_STATE_CONFLICT',
    });
    expect(harness.sim.server(held.ipsecServerId)!.history).toEqual([]);
  });

  it('expires a change approved after its deadline, even before its job ran', async () => {
    harness = await startHarness({ workers: 0, policy: approvalPolicy({ when: ['always'], expiresMs: 50 }) });
    const held = await submit(harness, 3, { IpsecServerName: 'late-approval' });
    await new Promise((resolve) => setTimeout(resolve, 80));
    await expect(harness.orchestrator.changes.approve(held.id, 'bob')).rejects.toMatchObject({
      code: 'CHANGE_STATE_CONFLICT',
    });
    expect((await harness.orchestrator.changes.get(held.id)).state).toBe('expired');
    expect(await eventTypes(harness, held.id)).toEqual(['submitted', 'expired']);
  });

  it('cancels a change awaiting approval, and lets a pre-approved submission skip the policy', async () => {
    harness = await startHarness({ workers: 0, policy: approvalPolicy({ when: ['always'] }) });
    const changes = harness.orchestrator.changes;
    const held = await submit(harness, 4, { IpsecServerName: 'cancel-me' });
    const cancelled = await changes.cancel(held.id, 'alice');
    expect(cancelled.state).toBe('cancelled');
    expect(await eventTypes(harness, held.id)).toEqual(['submitted', 'cancelled']);
    expect(await expiryJobs(harness)).toEqual([]);

    const target = harness.sim.servers[4]!;
    const { change } = await changes.submit(
      {
        ipsecServerId: target.ipsecServerId,
        regionId: target.regionId,
        params: { IpsecServerName: 'rollout' },
        actor: 'alice',
      },
      { preApproved: true },
    );
    expect(change.state).toBe('queued');
    expect((await changes.laneOf(target.ipsecServerId)).map((entry) => entry.id)).toEqual([change.id]);
  });
});
