import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/event.js';
import { type Api, PROBLEM_JSON, startApi } from './api-harness.js';

let api: Api;
let ids: string[];
let all: AuditEvent[];

beforeAll(async () => {
  api = await startApi({ workers: 0 });
  const { changes } = api.harness.orchestrator;
  ids = [];
  for (let i = 0; i < 6; i++) {
    const { change } = await changes.submit({
      ...api.target(i % 2),
      params: { IpsecServerName: `audit-${i}` },
      actor: 'setup',
    });
    ids.push(change.id);
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
  await changes.cancel(ids[0]!, 'canceller');
  all = await api.harness.orchestrator.audit.query();
});
afterAll(() => api?.close());

const get = (url: string) => api.call('viewer', { method: 'GET', url });

describe('GET /v1/audit', () => {
  it('returns every event as JSON, oldest first', async () => {
    const response = await get('/v1/audit');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    const { events } = response.json();
    expect(events).toHaveLength(7);
    expect(events).toEqual(all);
    expect(events.map((event: AuditEvent) => event.type)).toEqual([
      ...Array(6).fill('submitted'),
      'cancelled',
    ]);
  });

  it('filters by change, by server and by time, and limits', async () => {
    const byChange = (await get(`/v1/audit?change=${ids[0]}`)).json().events;
    expect(byChange.map((event: AuditEvent) => [event.type, event.actor])).toEqual([
      ['submitted', 'setup'],
      ['cancelled', 'canceller'],
    ]);

    const server = api.target(1).ipsecServerId;
    const byServer = (await get(`/v1/audit?server=${server}`)).json().events;
    expect(byServer.map((event: AuditEvent) => event.changeId)).toEqual([ids[1], ids[3], ids[5]]);
    expect((await get(`/v1/audit?server=${server}&change=${ids[0]}`)).json().events).toEqual([]);

    // Over the whole stream, time bounds apply to the stream ids (the time Redis recorded).
    const third = all[2]!;
    const thirdMs = Number(third.id.split('-')[0]);
    const fromMs = (await get(`/v1/audit?from=${thirdMs}`)).json().events;
    expect(fromMs[0]).toEqual(third);
    const iso = new Date(thirdMs).toISOString();
    expect((await get(`/v1/audit?from=${encodeURIComponent(iso)}`)).json().events).toEqual(fromMs);
    const until = (await get(`/v1/audit?to=${thirdMs}`)).json().events;
    expect(until.at(-1)).toEqual(third);

    expect((await get('/v1/audit?limit=2')).json().events).toEqual(all.slice(0, 2));
  });

  it('streams JSON lines (application/x-ndjson), one event per line', async () => {
    const response = await get('/v1/audit?format=jsonl');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(response.body.endsWith('\n')).toBe(true);
    const lines = response.body.trimEnd().split('\n');
    expect(lines.map((line) => JSON.parse(line))).toEqual(all);

    const limited = await get(`/v1/audit?format=jsonl&limit=3&server=${api.target(0).ipsecServerId}`);
    // The server's events in stream order: the cancel of ids[0] came last.
    expect(
      limited.body
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line).changeId),
    ).toEqual([ids[0], ids[2], ids[4]]);
    const none = await get('/v1/audit?format=jsonl&change=chg-none');
    expect(none.statusCode).toBe(200);
    expect(none.body).toBe('');
  });

  it('streams more than the JSON default of 1000 events', async () => {
    const { changes } = api.harness.orchestrator;
    const server = api.target(5);
    await Promise.all(
      Array.from({ length: 1100 }, (_, i) =>
        changes.submit({ ...server, params: { IpsecServerName: `bulk-${i}` }, actor: 'bulk' }),
      ),
    );
    const json = (await get('/v1/audit')).json().events;
    expect(json).toHaveLength(1000);
    const jsonl = await get('/v1/audit?format=jsonl');
    expect(jsonl.body.trimEnd().split('\n')).toHaveLength(1107);
  });

  it.each([
    ['from=2025-02-30', 'from', 'must be a real calendar date: 2025-02 has 28 days (got 2025-02-30)'],
    ['to=2025-02-29T00:00:00Z', 'to', 'must be a real calendar date: 2025-02 has 28 days (got 2025-02-29)'],
    ['from=2100-02-29', 'from', 'must be a real calendar date: 2100-02 has 28 days (got 2100-02-29)'],
    [
      'to=2025-04-31T12:00:00%2B08:00',
      'to',
      'must be a real calendar date: 2025-04 has 30 days (got 2025-04-31)',
    ],
    ['from=2025-06-00', 'from', 'must be a real calendar date: 2025-06 has 30 days (got 2025-06-00)'],
    ['from=2025-13-01', 'from', 'must be a real calendar date: there is no month 13'],
  ])('refuses the impossible date in %s, naming the field', async (query, field, rule) => {
    const response = await get(`/v1/audit?${query}`);
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([{ field, rule }]);
  });

  it('takes leap days (2024-02-29, 2000-02-29)', async () => {
    const response = await get('/v1/audit?from=2024-02-29&to=2000-02-29T00:00:00Z');
    expect(response.statusCode).toBe(400);
    // Both dates exist: what is wrong is only their order.
    expect(response.json().errors).toEqual([{ field: 'from', rule: 'must not be after `to`' }]);
    expect((await get('/v1/audit?from=2000-02-29&to=2024-02-29T23:59:59Z')).statusCode).toBe(200);
  });

  const TIME_RULE =
    'must be epoch milliseconds or an ISO 8601 date or time with its offset, e.g. 2025-01-31T12:00:00Z';
  const LIMIT_RULE = 'must be from 1 to 10000';
  it.each([
    ['from=yesterday', [{ field: 'from', rule: TIME_RULE }]],
    ['from=1969-12-31', [{ field: 'from', rule: 'must be 1970-01-01 or later' }]],
    ['to=0000-01-01T00:00:00Z', [{ field: 'to', rule: 'must be 1970-01-01 or later' }]],
    ['format=jsonl&from=1969-12-31T23:59:59Z', [{ field: 'from', rule: 'must be 1970-01-01 or later' }]],
    ['to=2025-01-31T12:00:00', [{ field: 'to', rule: TIME_RULE }]],
    ['from=2025-02-01&to=2025-01-01', [{ field: 'from', rule: 'must not be after `to`' }]],
    ['limit=0', [{ field: 'limit', rule: LIMIT_RULE }]],
    ['limit=10001', [{ field: 'limit', rule: LIMIT_RULE }]],
    ['limit=99999999999', [{ field: 'limit', rule: LIMIT_RULE }]],
    ['limit=5&limit=6', [{ field: 'limit', rule: 'must be given once' }]],
    ['format=csv', [{ field: 'format', rule: 'must be one of json, jsonl' }]],
    [
      'change=a:b&server=x y',
      [
        { field: 'change', rule: 'must be a change id such as chg-01jq8x2m3n4p5q6r7s8t9v0w' },
        { field: 'server', rule: 'must be an IPsec server id such as iss-bp1...' },
      ],
    ],
    ['actor=alice', [{ field: 'actor', rule: 'unknown field' }]],
  ])('refuses %s, naming each field once with its rule', async (query, errors) => {
    const response = await get(`/v1/audit?${query}`);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(
      response
        .json()
        .errors.sort((a: { field: string }, b: { field: string }) => a.field.localeCompare(b.field)),
    ).toEqual(errors);
  });
});

describe('GET /v1/servers/:id/lane', () => {
  it('lists the waiting changes head first', async () => {
    const server = api.target(1).ipsecServerId;
    const response = await get(`/v1/servers/${server}/lane`);
    expect(response.statusCode).toBe(200);
    const { ipsecServerId, lane } = response.json();
    expect(ipsecServerId).toBe(server);
    expect(lane).toEqual(
      [ids[1], ids[3], ids[5]].map((id, index) => ({
        position: index + 1,
        id,
        state: 'queued',
        actor: 'setup',
        createdAt: expect.any(Number),
      })),
    );
  });

  it('answers an empty lane for a server without changes, and 400 for a malformed id', async () => {
    expect((await get('/v1/servers/iss-nothing-here/lane')).json()).toEqual({
      ipsecServerId: 'iss-nothing-here',
      lane: [],
    });
    const bad = await get('/v1/servers/-bad/lane');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors.map((issue: { field: string }) => issue.field)).toEqual(['id']);
  });
});
