import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { PSK_FINGERPRINT_PATTERN } from '../../src/ipsec/psk.js';
import { createLogger } from '../../src/log.js';
import { CHANGE_STATES } from '../../src/orchestrator/change.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { type Api, PROBLEM_JSON, startApi } from './api-harness.js';

function expectProblem(
  response: { statusCode: number; headers: Record<string, unknown>; json(): unknown },
  status: number,
  code: string,
) {
  expect(response.statusCode).toBe(status);
  expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
  const body = response.json() as Record<string, unknown>;
  expect(body).toMatchObject({ type: `https://ipsec-fleet.dev/problems/${code}`, status, code });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body as { detail: string; errors?: Array<{ field: string; rule: string }> };
}

/** Nothing was enqueued or recorded: no change, no lane entry, no job, no audit event. */
async function expectNothingEnqueued(api: Api) {
  const { orchestrator } = api.harness;
  expect((await orchestrator.changes.list()).changes).toEqual([]);
  for (let i = 0; i < 6; i++)
    expect(await orchestrator.changes.laneOf(api.target(i).ipsecServerId)).toEqual([]);
  const jobs = await orchestrator.queue.queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  expect(Object.values(jobs).reduce((sum, count) => sum + count, 0)).toBe(0);
  expect(await orchestrator.audit.query()).toEqual([]);
}

describe('changes without workers', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ workers: 0, sim: { servers: 7 } });
  });
  afterAll(() => api?.close());

  const submit = (payload: unknown, headers: Record<string, string> = {}) =>
    api.call('submitter', { method: 'POST', url: '/v1/changes', payload: payload as object, headers });

  describe('rejected input', () => {
    it('names every bad field, across body and header, and enqueues nothing', async () => {
      const response = await submit(
        {
          ipsecServerId: 'iss bad',
          params: {
            LocalSubnet: '10.0.0.5/24',
            IkeConfig: { IkeLifetime: 86401 },
            Colour: 'blue',
          },
          priority: 1,
        },
        { 'idempotency-key': 'tab\there' },
      );
      const problem = expectProblem(response, 400, 'INVALID_INPUT');
      const fields = problem.errors?.map((issue) => issue.field);
      expect(fields).toEqual(
        expect.arrayContaining([
          'ipsecServerId',
          'regionId',
          'params.LocalSubnet',
          'params.IkeConfig.IkeLifetime',
          'params.Colour',
          'priority',
          'idempotency-key',
        ]),
      );
      expect(problem.errors?.find((issue) => issue.field === 'regionId')?.rule).toBe('is required');
      expect(problem.errors?.find((issue) => issue.field === 'actor')).toBeUndefined();
      const missingServer = expectProblem(
        await submit({ regionId: 'cn-shanghai', params: { IpsecServerName: 'x' } }),
        400,
        'INVALID_INPUT',
      );
      expect(missingServer.errors?.find((issue) => issue.field === 'ipsecServerId')?.rule).toBe(
        'is required',
      );
      expect(problem.errors?.find((issue) => issue.field === 'params.Colour')?.rule).toBe('unknown field');
      expect(problem.errors?.find((issue) => issue.field === 'params.LocalSubnet')?.rule).toMatch(
        /network address/,
      );
      await expectNothingEnqueued(api);
    });

    it('names the length rule of a note or Idempotency-Key that is too long', async () => {
      const note = await submit({
        ...api.target(0),
        params: { IpsecServerName: 'name-ok' },
        note: 'x'.repeat(1025),
      });
      expect(expectProblem(note, 400, 'INVALID_INPUT').errors).toEqual([
        { field: 'note', rule: 'must be at most 1024 characters' },
      ]);
      const key = await api.call('submitter', {
        method: 'POST',
        url: '/v1/changes',
        headers: { 'idempotency-key': 'k'.repeat(257) },
        payload: { ...api.target(0), params: { IpsecServerName: 'name-ok' } },
      });
      expect(expectProblem(key, 400, 'INVALID_INPUT').errors).toEqual([
        { field: 'idempotency-key', rule: 'must be at most 256 characters' },
      ]);
      await expectNothingEnqueued(api);
    });

    it('refuses a note holding a lone UTF-16 surrogate (no UTF-8 text holds one), naming it', async () => {
      const response = await submit({
        ...api.target(0),
        params: { IpsecServerName: 'name-ok' },
        note: 'ticket \ud800',
      });
      expect(expectProblem(response, 400, 'INVALID_INPUT').errors).toEqual([
        { field: 'note', rule: 'must be Unicode text: it holds a lone UTF-16 surrogate' },
      ]);
      await expectNothingEnqueued(api);
    });

    it('refuses an Idempotency-Key given twice (Node would join them) and writes nothing', async () => {
      const before = await api.keys();
      const twice = (payload: object) =>
        api.call('submitter', {
          method: 'POST',
          url: '/v1/changes',
          headers: { 'idempotency-key': ['deploy-1', 'deploy-2'] },
          payload,
        });
      const alone = await twice({ ...api.target(0), params: { IpsecServerName: 'given-twice' } });
      expect(expectProblem(alone, 400, 'INVALID_INPUT').errors).toEqual([
        { field: 'idempotency-key', rule: 'must be given once' },
      ]);
      // Named along with the body's mistakes, in one answer.
      const withBody = await twice({ ...api.target(0), params: {}, colour: 'blue' });
      expect(
        expectProblem(withBody, 400, 'INVALID_INPUT')
          .errors?.map((issue) => issue.field)
          .sort(),
      ).toEqual(['colour', 'idempotency-key', 'params']);
      expect(await api.keys()).toEqual(before);
      await expectNothingEnqueued(api);
    });

    it('names one rule per field: the first it broke', async () => {
      const problem = expectProblem(
        await submit({ ipsecServerId: '', regionId: '', params: { IpsecServerName: '1' }, note: '' }),
        400,
        'INVALID_INPUT',
      );
      expect(problem.errors).toEqual([
        { field: 'ipsecServerId', rule: 'must be an IPsec server id such as iss-bp1...' },
        { field: 'regionId', rule: 'must not be empty' },
        { field: 'params.IpsecServerName', rule: 'must be 2 to 128 characters long (got 1)' },
        { field: 'note', rule: 'must not be empty' },
      ]);
      await expectNothingEnqueued(api);
    });

    it('refuses params that change nothing', async () => {
      const problem = expectProblem(await submit({ ...api.target(0), params: {} }), 400, 'INVALID_INPUT');
      expect(problem.errors).toEqual([{ field: 'params', rule: expect.stringMatching(/at least one of/) }]);
      await expectNothingEnqueued(api);
    });

    it('never shows a bad Psk in the error', async () => {
      const psk = `bad\u00e9psk-value`;
      const response = await submit({ ...api.target(0), params: { Psk: psk } });
      const problem = expectProblem(response, 400, 'INVALID_INPUT');
      expect(problem.errors?.[0]?.field).toBe('params.Psk');
      expect(response.body).not.toContain('psk-value');
      await expectNothingEnqueued(api);
    });

    it.each([
      ['not JSON', '{"ipsecServerId":', 'application/json', 400, 'INVALID_INPUT', 'must be valid JSON'],
      ['a JSON array', '[]', 'application/json', 400, 'INVALID_INPUT', 'must be an object'],
      ['a JSON string', '"x"', 'application/json', 400, 'INVALID_INPUT', 'must be an object'],
      ['an empty body', '', 'application/json', 400, 'INVALID_INPUT', 'is required'],
      ['text/plain', 'hello', 'text/plain', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['form data', 'a=b', 'application/x-www-form-urlencoded', 415, 'UNSUPPORTED_MEDIA_TYPE'],
      [
        '65 KiB',
        JSON.stringify({ note: 'x'.repeat(65 * 1024) }),
        'application/json',
        413,
        'PAYLOAD_TOO_LARGE',
      ],
    ])(
      'answers %s with a problem, never a 5xx',
      async (_name, payload, contentType, status, code, rule?: string) => {
        const response = await api.call('submitter', {
          method: 'POST',
          url: '/v1/changes',
          headers: { 'content-type': contentType },
          payload,
        });
        const problem = expectProblem(response, status, code);
        if (status === 400) expect(problem.errors).toEqual([{ field: 'body', rule }]);
        await expectNothingEnqueued(api);
      },
    );

    it('refuses a Psk when no secret key is configured, naming params.Psk', async () => {
      const orchestrator = Orchestrator.connect({
        redisUrl: api.harness.redisUrl,
        prefix: api.harness.prefix,
      });
      const app = buildApp({ orchestrator, tokens: api.store });
      try {
        const response = await app.inject({
          method: 'POST',
          url: '/v1/changes',
          headers: { authorization: `Bearer ${api.tokens.submitter}` },
          payload: { ...api.target(0), params: { Psk: 'a-key' } },
        });
        const problem = expectProblem(response, 400, 'SECRET_KEY_MISSING');
        expect(problem.errors).toEqual([{ field: 'params.Psk', rule: expect.any(String) }]);
      } finally {
        await app.close();
        await orchestrator.close();
      }
      await expectNothingEnqueued(api);
    });
  });

  describe('submit, read, list, cancel', () => {
    it('creates a change: 201, Location, the token as actor, at the end of the lane', async () => {
      const target = api.target(1);
      const response = await submit({ ...target, params: { LocalSubnet: '10.1.0.0/24' }, note: 'widen' });
      expect(response.statusCode).toBe(201);
      const { change } = response.json();
      expect(response.headers.location).toBe(`/v1/changes/${change.id}`);
      expect(change).toMatchObject({
        state: 'queued',
        ...target,
        params: { LocalSubnet: '10.1.0.0/24' },
        actor: 'submitter-user',
        note: 'widen',
        runs: 0,
      });
      const lane = await api.call('viewer', {
        method: 'GET',
        url: `/v1/servers/${target.ipsecServerId}/lane`,
      });
      expect(lane.json()).toEqual({
        ipsecServerId: target.ipsecServerId,
        lane: [
          {
            position: 1,
            id: change.id,
            state: 'queued',
            actor: 'submitter-user',
            createdAt: change.createdAt,
          },
        ],
      });

      const read = await api.call('viewer', { method: 'GET', url: `/v1/changes/${change.id}` });
      expect(read.statusCode).toBe(200);
      expect(read.json()).toEqual({
        change,
        timeline: [
          expect.objectContaining({
            type: 'submitted',
            changeId: change.id,
            actor: 'submitter-user',
            attempt: 0,
          }),
        ],
        diff: [],
      });
    });

    it('is idempotent: same key and body → 200 and the same change; another body → 409', async () => {
      const target = api.target(2);
      const body = { ...target, params: { IpsecServerName: 'idem-1', EffectImmediately: true } };
      const headers = { 'idempotency-key': 'deploy 2025-01-31 #7' };
      const first = await submit(body, headers);
      expect(first.statusCode).toBe(201);
      const again = await submit(
        // The same submission, spelled differently (key order, a wire boolean).
        {
          params: { EffectImmediately: 'true', IpsecServerName: 'idem-1' },
          regionId: target.regionId,
          ipsecServerId: target.ipsecServerId,
        },
        headers,
      );
      expect(again.statusCode).toBe(200);
      expect(again.json().change.id).toBe(first.json().change.id);

      const other = await submit({ ...body, params: { IpsecServerName: 'idem-2' } }, headers);
      const problem = expectProblem(other, 409, 'IDEMPOTENCY_KEY_REUSED');
      expect(problem.detail).toContain(first.json().change.id);
      const lane = await api.harness.orchestrator.changes.laneOf(target.ipsecServerId);
      expect(lane.map((entry) => entry.id)).toEqual([first.json().change.id]);

      const withoutKey = await submit(body);
      expect(withoutKey.statusCode).toBe(201);
      expect(withoutKey.json().change.id).not.toBe(first.json().change.id);
    });

    it("keeps each submitter's Idempotency-Keys apart: the same key from another is another change", async () => {
      // A server of its own: the listing tests read every change of theirs.
      const target = api.target(6);
      const headers = { 'idempotency-key': 'nightly-rotation' };
      const body = { ...target, params: { IpsecServerName: 'idem-mine' } };
      const mine = await submit(body, headers);
      expect(mine.statusCode).toBe(201);
      const post = (payload: object) =>
        api.call('admin', { method: 'POST', url: '/v1/changes', payload, headers });
      // Another submitter, the same key: neither the first one's change (200) nor a 409 for a key
      // this one never used, whatever the body.
      const theirs = await post(body);
      expect(theirs.statusCode).toBe(201);
      expect(theirs.json().change).toMatchObject({ actor: 'admin-user' });
      expect(theirs.json().change.id).not.toBe(mine.json().change.id);
      expect((await post({ ...body, params: { IpsecServerName: 'idem-theirs' } })).statusCode).toBe(409);
      const again = await submit(body, headers);
      expect(again.statusCode).toBe(200);
      expect(again.json().change.id).toBe(mine.json().change.id);
    });

    it('answers 404 for an unknown change and 400 for a malformed id', async () => {
      expectProblem(
        await api.call('viewer', { method: 'GET', url: '/v1/changes/chg-unknown' }),
        404,
        'CHANGE_NOT_FOUND',
      );
      expectProblem(
        await api.call('submitter', { method: 'POST', url: '/v1/changes/chg-unknown/cancel' }),
        404,
        'CHANGE_NOT_FOUND',
      );
      const problem = expectProblem(
        await api.call('viewer', { method: 'GET', url: '/v1/changes/a:b' }),
        400,
        'INVALID_INPUT',
      );
      expect(problem.errors?.map((issue) => issue.field)).toEqual(['id']);
    });

    it('lists newest first, filters by server and state, and pages with nextCursor', async () => {
      const target = api.target(3);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const response = await submit({ ...target, params: { IpsecServerName: `page-${i}` } });
        ids.push(response.json().change.id);
        // Changes of the same millisecond have no order among themselves.
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const seen: string[] = [];
      let url = `/v1/changes?server=${target.ipsecServerId}&limit=2`;
      for (let pages = 0; pages < 10; pages++) {
        const response = await api.call('viewer', { method: 'GET', url });
        expect(response.statusCode).toBe(200);
        const page = response.json();
        seen.push(...page.changes.map((change: { id: string }) => change.id));
        if (!page.nextCursor) break;
        url = `/v1/changes?server=${target.ipsecServerId}&limit=2&cursor=${encodeURIComponent(page.nextCursor)}`;
      }
      expect(seen).toEqual([...ids].reverse());

      await api.call('submitter', { method: 'POST', url: `/v1/changes/${ids[0]}/cancel` });
      const cancelled = await api.call('viewer', {
        method: 'GET',
        url: `/v1/changes?server=${target.ipsecServerId}&state=cancelled`,
      });
      expect(cancelled.json()).toEqual({
        changes: [expect.objectContaining({ id: ids[0], state: 'cancelled' })],
      });
    });

    it('lists a filtered page once each while changes are submitted, and through a run of one millisecond', async () => {
      const target = api.target(5);
      const { changes, redis, keys } = api.harness.orchestrator;
      const submitOne = (name: string) =>
        changes.submit({ ...target, params: { IpsecServerName: name }, actor: 'alice' });
      const cancelled: string[] = [];
      for (let i = 0; i < 10; i++) {
        const { change } = await submitOne(`old-${i}`);
        cancelled.push((await changes.cancel(change.id, 'alice')).id);
      }
      const url = `/v1/changes?server=${target.ipsecServerId}&state=cancelled&limit=10`;
      const listed = async () =>
        (await api.call('viewer', { method: 'GET', url })).json().changes.map((c: { id: string }) => c.id);

      // Newer changes come in while each page is gathered, batch after batch: the entries already
      // read must not come round again.
      let submitted = 0;
      const flood = Promise.all(
        Array.from({ length: 4 }, async () => {
          while (submitted < 300) await submitOne(`new-${submitted++}`);
        }),
      );
      try {
        while (submitted < 300) expect(await listed()).toEqual([...cancelled].reverse());
      } finally {
        await flood;
      }

      // Changes of one millisecond, more than a batch of them: each read once, in id order.
      const index = keys.serverChanges(target.ipsecServerId);
      const all = await redis.zrange(index, '0', '-1');
      await redis.zadd(index, ...all.flatMap((id) => ['1700000000000', id]));
      expect(await listed()).toEqual([...cancelled].sort().reverse());
    });

    const LIMIT_RULE = 'must be from 1 to 500';
    const SERVER_RULE = 'must be an IPsec server id such as iss-bp1...';
    it.each([
      ['limit=0', [{ field: 'limit', rule: LIMIT_RULE }]],
      ['limit=501', [{ field: 'limit', rule: LIMIT_RULE }]],
      ['limit=99999999999', [{ field: 'limit', rule: LIMIT_RULE }]],
      [`limit=${'9'.repeat(400)}`, [{ field: 'limit', rule: LIMIT_RULE }]],
      ['limit=ten', [{ field: 'limit', rule: 'must be a whole number' }]],
      ['limit=2.5', [{ field: 'limit', rule: 'must be a whole number' }]],
      ['state=done', [{ field: 'state', rule: `must be one of ${CHANGE_STATES.join(', ')}` }]],
      ['cursor=abc', [{ field: 'cursor', rule: 'must be a cursor returned by a previous page' }]],
      ['limit=1&limit=2', [{ field: 'limit', rule: 'must be given once' }]],
      ['state=queued&state=failed', [{ field: 'state', rule: 'must be given once' }]],
      ['server=iss-1&server=iss-2', [{ field: 'server', rule: 'must be given once' }]],
      [
        'sever=iss-1&state=queued&limit=-1',
        [
          { field: 'limit', rule: LIMIT_RULE },
          { field: 'sever', rule: 'unknown field' },
        ],
      ],
      [`server=${'x'.repeat(5_000)}`, [{ field: 'server', rule: SERVER_RULE }]],
      ['server=iss%20bad', [{ field: 'server', rule: SERVER_RULE }]],
    ])('refuses the query %s, naming each field once with its rule', async (query, errors) => {
      const problem = expectProblem(
        await api.call('viewer', { method: 'GET', url: `/v1/changes?${query}` }),
        400,
        'INVALID_INPUT',
      );
      expect(problem.errors?.sort((a, b) => a.field.localeCompare(b.field))).toEqual(errors);
    });

    it('cancels a queued change once; cancelling it again is a 409', async () => {
      const response = await submit({ ...api.target(4), params: { IpsecServerName: 'to-cancel' } });
      const { id } = response.json().change;
      const cancelled = await api.call('submitter', { method: 'POST', url: `/v1/changes/${id}/cancel` });
      expect(cancelled.statusCode).toBe(200);
      expect(cancelled.json().change).toMatchObject({ id, state: 'cancelled' });
      expect(await api.harness.orchestrator.changes.laneOf(api.target(4).ipsecServerId)).toEqual([]);

      const again = await api.call('submitter', { method: 'POST', url: `/v1/changes/${id}/cancel` });
      expect(expectProblem(again, 409, 'CHANGE_STATE_CONFLICT').detail).toMatch(/cancelled/);

      const timeline = (await api.call('viewer', { method: 'GET', url: `/v1/changes/${id}` })).json()
        .timeline;
      expect(timeline.map((event: { type: string }) => event.type)).toEqual(['submitted', 'cancelled']);
      expect(timeline[1].actor).toBe('submitter-user');
    });

    it('takes a cancel with an empty JSON body, and refuses one with fields', async () => {
      const first = (await submit({ ...api.target(4), params: { IpsecServerName: 'empty-body' } })).json()
        .change.id;
      const empty = await api.call('submitter', {
        method: 'POST',
        url: `/v1/changes/${first}/cancel`,
        headers: { 'content-type': 'application/json' },
        payload: '',
      });
      expect(empty.statusCode).toBe(200);
      const second = (await submit({ ...api.target(4), params: { IpsecServerName: 'with-body' } })).json()
        .change.id;
      const withBody = await api.call('submitter', {
        method: 'POST',
        url: `/v1/changes/${second}/cancel`,
        payload: { reason: 'x' },
      });
      expect(expectProblem(withBody, 400, 'INVALID_INPUT').errors).toEqual([
        { field: 'body', rule: 'must be empty' },
      ]);
      expect((await api.harness.orchestrator.changes.get(second)).state).toBe('queued');
    });

    it('answers an unknown route with a 404 problem', async () => {
      const response = await api.call('admin', { method: 'GET', url: '/v1/nothing?x=1' });
      expect(expectProblem(response, 404, 'NOT_FOUND').detail).toBe('no route GET /v1/nothing');
      expectProblem(await api.call('admin', { method: 'DELETE', url: '/v1/changes' }), 404, 'NOT_FOUND');
    });

    it('answers an unexpected failure with a 500 problem that shows no internals', async () => {
      const { orchestrator } = api.harness;
      const id = (await submit({ ...api.target(5), params: { IpsecServerName: 'corrupt' } })).json().change
        .id;
      await orchestrator.redis.hset(orchestrator.keys.change(id), 'params', '{not json');
      const response = await api.call('viewer', { method: 'GET', url: `/v1/changes/${id}` });
      const problem = expectProblem(response, 500, 'INTERNAL_ERROR');
      expect(problem.detail).not.toMatch(/JSON|position|Unexpected/);
      expect(problem.detail).toMatch(/request req-\w+/);
    });

    it('would rather fail than show a Psk in clear', async () => {
      const { orchestrator } = api.harness;
      const id = (await submit({ ...api.target(5), params: { IpsecServerName: 'leak' } })).json().change.id;
      await orchestrator.redis.hset(
        orchestrator.keys.change(id),
        'params',
        JSON.stringify({ Psk: 'clear-text-key' }),
      );
      const response = await api.call('viewer', { method: 'GET', url: `/v1/changes/${id}` });
      expectProblem(response, 500, 'INTERNAL_ERROR');
      expect(response.body).not.toContain('clear-text-key');
      const list = await api.call('viewer', {
        method: 'GET',
        url: `/v1/changes?server=${api.target(5).ipsecServerId}`,
      });
      expect(list.statusCode).toBe(500);
      expect(list.body).not.toContain('clear-text-key');
      await orchestrator.redis.del(orchestrator.keys.change(id));
    });
  });
});

describe('logs', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ workers: 0 });
  });
  afterAll(() => api?.close());

  it('never carry a token, an Authorization header, a Psk or a body', async () => {
    let logs = '';
    const destination = new Writable({
      write(chunk, _encoding, done) {
        logs += chunk.toString();
        done();
      },
    });
    const logger = createLogger({ level: 'trace' }, destination);
    const app = buildApp({ orchestrator: api.harness.orchestrator, tokens: api.store, logger });
    const psk = 'logged-psk-never-9';
    const authorization = `Bearer ${api.tokens.submitter}`;
    try {
      const submitted = await app.inject({
        method: 'POST',
        url: '/v1/changes',
        headers: { authorization },
        payload: {
          ...api.target(0),
          params: { Psk: psk, IpsecServerName: 'logged-name' },
          note: 'logged-note',
        },
      });
      expect(submitted.statusCode).toBe(201);
      const bad = await app.inject({
        method: 'POST',
        url: '/v1/changes',
        headers: { authorization },
        payload: { ...api.target(0), params: { Psk: `${psk}\u0001` } },
      });
      expect(bad.statusCode).toBe(400);
      await app.inject({ method: 'GET', url: '/v1/changes', headers: { authorization: 'Bearer ipf_wrong' } });
      // A clear Psk that reached a change record makes the answer fail, and the log must not show it.
      const { id } = submitted.json().change;
      const { orchestrator } = api.harness;
      await orchestrator.redis.hset(orchestrator.keys.change(id), 'params', JSON.stringify({ Psk: psk }));
      const leaked = await app.inject({
        method: 'GET',
        url: `/v1/changes/${id}`,
        headers: { authorization },
      });
      expect(leaked.statusCode).toBe(500);
    } finally {
      await app.close();
    }
    expect(logs).toContain('request failed');
    expect(logs).toContain('incoming request');
    for (const secret of [psk, api.tokens.submitter, 'ipf_wrong', 'logged-note', 'logged-name']) {
      expect(logs).not.toContain(secret);
    }
    expect(logs.toLowerCase()).not.toContain('bearer');
  });
});

describe('changes with a worker', () => {
  let api: Api;
  beforeAll(async () => {
    api = await startApi({ sim: { faults: { latencyMs: 200, configuringMs: 0 } } });
  });
  afterAll(() => api?.close());

  it('refuses to cancel a running change (409), which then goes on to succeed', async () => {
    const response = await api.call('submitter', {
      method: 'POST',
      url: '/v1/changes',
      payload: { ...api.target(0), params: { IpsecServerName: 'running-one' } },
    });
    const { id } = response.json().change;
    await api.harness.waitFor(id, ['running']);
    const cancel = await api.call('submitter', { method: 'POST', url: `/v1/changes/${id}/cancel` });
    expect(cancel.statusCode).toBe(409);
    expect(cancel.json()).toMatchObject({ code: 'CHANGE_STATE_CONFLICT' });
    expect(cancel.json().detail).toMatch(/running/);
    expect(await api.harness.waitFor(id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');
  });

  it('still shows a change whose Psk label an earlier version stored, unkeyed', async () => {
    const target = api.target(2);
    const response = await api.call('submitter', {
      method: 'POST',
      url: '/v1/changes',
      payload: { ...target, params: { Psk: 'legacy-psk-value', PskEnabled: true } },
    });
    expect(response.statusCode).toBe(201);
    const { id } = response.json().change;
    await api.harness.waitFor(id, ['succeeded', 'failed', 'rejected']);
    const redis = api.harness.orchestrator.redis;
    const key = api.harness.orchestrator.keys.change(id);
    const legacy = 'sha256:0123456789ab';
    await redis.hset(key, 'params', JSON.stringify({ Psk: legacy, PskEnabled: true }));
    const read = await api.call('viewer', { method: 'GET', url: `/v1/changes/${id}` });
    expect(read.statusCode).toBe(200);
    expect(read.json().change.params.Psk).toBe(legacy);
    // Anything else in a Psk's place is still refused on the way out.
    await redis.hset(key, 'params', JSON.stringify({ Psk: 'legacy-psk-value', PskEnabled: true }));
    const leaking = await api.call('viewer', { method: 'GET', url: `/v1/changes/${id}` });
    expect(leaking.statusCode).toBe(500);
    expect(leaking.body).not.toContain('legacy-psk-value');
    await redis.hset(key, 'params', JSON.stringify({ Psk: legacy, PskEnabled: true }));
  });

  it('shows the diff of the server before vs the params, the Psk as fingerprints, never in clear', async () => {
    const psk = 'clear-psk-value-42';
    const target = api.target(1);
    const before = structuredClone(api.harness.sim.server(target.ipsecServerId)!.config);
    const response = await api.call('submitter', {
      method: 'POST',
      url: '/v1/changes',
      payload: {
        ...target,
        params: { LocalSubnet: '10.42.0.0/24,10.43.0.0/24', Psk: psk, PskEnabled: true },
      },
    });
    expect(response.statusCode).toBe(201);
    const { id } = response.json().change;
    expect(await api.harness.waitFor(id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');

    const read = await api.call('viewer', { method: 'GET', url: `/v1/changes/${id}` });
    expect(read.statusCode).toBe(200);
    const { change, timeline, diff } = read.json();
    const fingerprint = api.harness.orchestrator.secrets.fingerprint;
    expect(change.params.Psk).toBe(fingerprint(psk));
    // The key the server had, read in clear from the cloud, is kept only as its label too.
    expect(change.before.Psk).toMatch(PSK_FINGERPRINT_PATTERN);
    expect(change.before.Psk).not.toBe(fingerprint(psk));
    expect(diff).toEqual(
      expect.arrayContaining([
        { field: 'LocalSubnet', from: before.LocalSubnet, to: '10.42.0.0/24,10.43.0.0/24' },
        { field: 'Psk', from: change.before.Psk, to: fingerprint(psk) },
      ]),
    );
    expect(timeline.map((event: { type: string }) => event.type)).toEqual([
      'submitted',
      'running',
      'dry_run_passed',
      'applied',
      'succeeded',
    ]);

    const everywhere = await Promise.all(
      [
        `/v1/changes/${id}`,
        '/v1/changes',
        `/v1/audit?change=${id}`,
        '/v1/audit?format=jsonl',
        `/v1/changes/${id}/events`,
        `/v1/servers/${target.ipsecServerId}/lane`,
      ].map((url) => api.call('viewer', { method: 'GET', url })),
    );
    for (const answer of everywhere) {
      expect(answer.statusCode).toBe(200);
      expect(answer.body).not.toContain(psk);
    }
  });
});
