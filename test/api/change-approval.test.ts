import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeApprovalClient } from '../../src/cli/change-approval-client.js';
import { type Api, PROBLEM_JSON, startApi, type Who } from './api-harness.js';

function expectProblem(
  response: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  status: number,
  code: string,
) {
  expect(response.statusCode).toBe(status);
  expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
  const body = response.json() as Record<string, unknown>;
  expect(body).toMatchObject({ type: `https://ipsec-fleet.dev/problems/${code}`, status, code });
  return body as { detail: string; errors?: Array<{ field: string; rule: string }> };
}

describe('approving and rejecting changes', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({
      workers: 0,
      policy: { approval: { when: ['EffectImmediately', 'Psk'], required: 2 } },
    });
  });
  afterAll(() => api?.close());

  async function held(who: Who, name: string) {
    const response = await api.call(who, {
      method: 'POST',
      url: '/v1/changes',
      payload: { ...api.target(0), params: { IpsecServerName: name, EffectImmediately: true } },
    });
    expect(response.statusCode).toBe(201);
    const { change } = response.json();
    expect(change.state).toBe('awaiting_approval');
    return change as { id: string; approval: { required: number; approvers: string[]; expiresAt: number } };
  }
  const approve = (who: Who, id: string, payload?: object) =>
    api.call(who, { method: 'POST', url: `/v1/changes/${id}/approve`, ...(payload ? { payload } : {}) });
  const reject = (who: Who, id: string, payload: unknown) =>
    api.call(who, { method: 'POST', url: `/v1/changes/${id}/reject`, payload: payload as object });

  it('needs the approver role, someone other than the submitter, and N distinct approvers', async () => {
    const change = await held('submitter', 'approve-me');
    expect(change.approval).toMatchObject({ required: 2, approvers: [] });
    expect(await api.harness.orchestrator.changes.laneOf(api.target(0).ipsecServerId)).toEqual([]);

    expectProblem(await approve('anonymous', change.id), 401, 'UNAUTHORIZED');
    expectProblem(await approve('viewer', change.id), 403, 'FORBIDDEN');
    expectProblem(await approve('submitter', change.id), 403, 'FORBIDDEN');

    const first = await approve('approver', change.id);
    expect(first.statusCode).toBe(200);
    expect(first.json().change).toMatchObject({
      state: 'awaiting_approval',
      approval: { required: 2, approvers: ['approver-user'] },
    });
    const again = await approve('approver', change.id);
    expect(again.statusCode).toBe(200);
    expect(again.json().change.approval.approvers).toEqual(['approver-user']);

    const second = await approve('admin', change.id);
    expect(second.statusCode).toBe(200);
    expect(second.json().change).toMatchObject({
      state: 'queued',
      approval: { approvers: ['approver-user', 'admin-user'] },
    });
    const lane = await api.harness.orchestrator.changes.laneOf(api.target(0).ipsecServerId);
    expect(lane.map((entry) => entry.id)).toEqual([change.id]);

    // One of its approvers again (a retry whose answer was lost): the same approval, not a conflict.
    expect((await approve('approver', change.id)).json().change.state).toBe('queued');
    expectProblem(await reject('approver', change.id, { reason: 'late' }), 409, 'CHANGE_STATE_CONFLICT');

    const shown = await api.call('viewer', { method: 'GET', url: `/v1/changes/${change.id}` });
    expect(shown.json().timeline.map((event: { type: string }) => event.type)).toEqual([
      'submitted',
      'approval',
      'approved',
    ]);
    await api.harness.orchestrator.changes.cancel(change.id, 'cleanup');
    expectProblem(await approve('approver', change.id), 409, 'CHANGE_STATE_CONFLICT');
  });

  it('refuses an approval or rejection by the submitter', async () => {
    const change = await held('admin', 'own-change');
    const problem = expectProblem(await approve('admin', change.id), 403, 'APPROVER_IS_SUBMITTER');
    expect(problem.detail).toContain(change.id);
    expectProblem(await reject('admin', change.id, { reason: 'mine' }), 403, 'APPROVER_IS_SUBMITTER');
    expectProblem(await approve('approver', change.id, { note: 'x' }), 400, 'INVALID_INPUT');
    expectProblem(await approve('approver', 'chg-unknown'), 404, 'CHANGE_NOT_FOUND');
    expectProblem(await approve('approver', 'bad id!'), 400, 'INVALID_INPUT');
  });

  it('rejects with a reason of 1 to 1024 characters, audited', async () => {
    const change = await held('submitter', 'reject-me');
    for (const payload of [
      {},
      { reason: '' },
      { reason: 'x'.repeat(1025) },
      { reason: 'ok', extra: 1 },
      { reason: 'lone \udc00' },
    ]) {
      const problem = expectProblem(await reject('approver', change.id, payload), 400, 'INVALID_INPUT');
      expect(problem.errors?.length).toBeGreaterThan(0);
    }
    expectProblem(await reject('viewer', change.id, { reason: 'no' }), 403, 'FORBIDDEN');
    expectProblem(await reject('submitter', change.id, { reason: 'no' }), 403, 'FORBIDDEN');

    const response = await reject('approver', change.id, { reason: 'x'.repeat(1024) });
    expect(response.statusCode).toBe(200);
    expect(response.json().change).toMatchObject({
      state: 'rejected',
      approval: { reason: 'x'.repeat(1024) },
    });
    expectProblem(await reject('approver', change.id, { reason: 'again' }), 409, 'CHANGE_STATE_CONFLICT');
    expectProblem(await approve('admin', change.id), 409, 'CHANGE_STATE_CONFLICT');

    const events = await api.harness.orchestrator.audit.forChange(change.id);
    expect(events.map((event) => event.type)).toEqual(['submitted', 'rejected']);
    expect(events[1]).toMatchObject({ actor: 'approver-user', details: { reason: 'x'.repeat(1024) } });
  });

  it('lists changes awaiting approval by state, and submits others straight to their lane', async () => {
    const change = await held('submitter', 'listed');
    const listed = await api.call('viewer', { method: 'GET', url: '/v1/changes?state=awaiting_approval' });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().changes.map((entry: { id: string }) => entry.id)).toContain(change.id);

    const plain = await api.call('submitter', {
      method: 'POST',
      url: '/v1/changes',
      payload: { ...api.target(1), params: { IpsecServerName: 'plain' } },
    });
    expect(plain.json().change.state).toBe('queued');
    expect(plain.json().change.approval).toBeUndefined();
  });

  it('is reachable over HTTP through the CLI client', async () => {
    const address = await api.app.listen({ host: '127.0.0.1', port: 0 });
    const client = (who: 'approver' | 'admin') =>
      new ChangeApprovalClient({ baseUrl: address, token: api.tokens[who] });
    const first = await held('submitter', 'cli-approve');
    const approver = client('approver');
    const admin = client('admin');
    try {
      expect((await approver.approveChange(first.id)).state).toBe('awaiting_approval');
      expect((await admin.approveChange(first.id)).state).toBe('queued');
      const second = await held('submitter', 'cli-reject');
      const rejected = await approver.rejectChange(second.id, 'wrong window');
      expect(rejected).toMatchObject({ state: 'rejected', approval: { reason: 'wrong window' } });
      await expect(approver.rejectChange(second.id, 'again')).rejects.toMatchObject({
        status: 409,
        code: 'CHANGE_STATE_CONFLICT',
      });
      const own = await held('admin', 'cli-own');
      await expect(admin.approveChange(own.id)).rejects.toMatchObject({
        status: 403,
        code: 'APPROVER_IS_SUBMITTER',
      });
    } finally {
      await approver.destroy();
      await admin.destroy();
    }
  });
});
