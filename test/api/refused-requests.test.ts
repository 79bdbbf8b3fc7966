import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { largestSpec } from '../../bench/support/largest-rollout.js';
import { DEFAULT_BODY_LIMIT } from '../../src/api/app.js';
import { ROLLOUT_BODY_LIMIT } from '../../src/api/routes/rollouts.js';
import { MAX_TARGETS } from '../../src/rollouts/rollout.js';
import { rolloutSpecSchema } from '../../src/rollouts/rollout-spec.js';
import { type Api, PROBLEM_JSON, startApi } from './api-harness.js';

/**
 * Requests the API refuses before anything runs, on an app whose rollouts library has no worker:
 * a refused request must leave Redis exactly as it was.
 */

let api: Api;
beforeAll(async () => {
  api = await startApi({ workers: 0, rollouts: true });
});
afterAll(() => api?.close());

function createRollout(payload: string | object, headers: Record<string, string | string[]> = {}) {
  return api.call('submitter', { method: 'POST', url: '/v1/rollouts', headers, payload });
}

describe('POST /v1/rollouts', () => {
  it(`has a body limit that fits ${MAX_TARGETS} targets with every field at its largest`, () => {
    expect(rolloutSpecSchema.safeParse(largestSpec(MAX_TARGETS)).success).toBe(true);
    const bytes = Buffer.byteLength(JSON.stringify(largestSpec(MAX_TARGETS)));
    expect(bytes).toBeGreaterThan(25_000_000);
    expect(bytes).toBeLessThanOrEqual(ROLLOUT_BODY_LIMIT);
  });

  it(`takes ${MAX_TARGETS} targets, far over the 64 KiB of the other routes`, async () => {
    const spec = {
      targets: Array.from({ length: MAX_TARGETS }, (_, index) => ({
        ipsecServerId: `iss-bp1rollout${String(index).padStart(6, '0')}`,
        regionId: 'cn-shanghai-finance-1',
        params: { IpsecServerName: `vpn-${index}`, LocalSubnet: `10.${index >> 8}.${index & 255}.0/24` },
      })),
      params: { EffectImmediately: true },
      planOnly: true,
    };
    const body = JSON.stringify(spec);
    expect(Buffer.byteLength(body)).toBeGreaterThan(10 * DEFAULT_BODY_LIMIT);
    const response = await createRollout(body, { 'content-type': 'application/json' });
    expect(response.statusCode, response.body.slice(0, 500)).toBe(201);
    expect(response.json().rollout).toMatchObject({ targetCount: MAX_TARGETS, state: 'planning' });

    // Written a chunk at a time into a staging hash, renamed into place by the create script:
    // all of them, in order, kept for good, and nothing staged left behind.
    const { id } = response.json().rollout as { id: string };
    const { redis, keys } = api.harness.orchestrator;
    expect(await redis.hlen(keys.rolloutTargets(id))).toBe(MAX_TARGETS);
    expect(await redis.pttl(keys.rolloutTargets(id))).toBe(-1);
    expect((await api.keys()).filter((key) => key.includes(':staging:'))).toEqual([]);
    const stored = await api.rollouts!.targets(id);
    expect(stored.map((target) => target.ipsecServerId)).toEqual(spec.targets.map((t) => t.ipsecServerId));
    expect(stored[MAX_TARGETS - 1]!.params).toEqual({
      EffectImmediately: true,
      IpsecServerName: `vpn-${MAX_TARGETS - 1}`,
      LocalSubnet: spec.targets[MAX_TARGETS - 1]!.params.LocalSubnet,
    });
  });

  it('refuses a body over its limit with a 413, and keeps 64 KiB on the other routes', async () => {
    const before = await api.keys();
    const over = await createRollout(`{"note":"${'x'.repeat(ROLLOUT_BODY_LIMIT)}"}`, {
      'content-type': 'application/json',
    });
    expect(over.statusCode).toBe(413);
    expect(over.json().code).toBe('PAYLOAD_TOO_LARGE');
    const change = await api.call('submitter', {
      method: 'POST',
      url: '/v1/changes',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ note: 'x'.repeat(DEFAULT_BODY_LIMIT) }),
    });
    expect(change.statusCode).toBe(413);
    expect(await api.keys()).toEqual(before);
  });

  it('refuses an Idempotency-Key given twice (Node would join them) and writes nothing', async () => {
    const before = await api.keys();
    const response = await createRollout(
      { targets: [{ ...api.target(0), params: { IpsecServerName: 'given-twice' } }], planOnly: true },
      { 'idempotency-key': ['rollout-1', 'rollout-2'] },
    );
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(response.json().errors).toEqual([{ field: 'idempotency-key', rule: 'must be given once' }]);
    expect(await api.keys()).toEqual(before);
  });
});

describe('routes that take no query string', () => {
  const target = { ipsecServerId: 'iss-query', regionId: 'cn-shanghai' };
  it.each([
    ['POST', '/v1/changes', { ...target, params: { IpsecServerName: 'query' } }],
    ['GET', '/v1/changes/chg-x', undefined],
    ['POST', '/v1/changes/chg-x/cancel', undefined],
    ['POST', '/v1/changes/chg-x/approve', undefined],
    ['POST', '/v1/changes/chg-x/reject', { reason: 'no' }],
    ['GET', '/v1/changes/chg-x/events', undefined],
    ['GET', '/v1/servers/iss-x/lane', undefined],
    ['POST', '/v1/rollouts', { targets: [{ ...target, params: { IpsecServerName: 'query' } }] }],
    ['GET', '/v1/rollouts/rol-x', undefined],
    ...['approve', 'pause', 'resume', 'cancel', 'rollback'].map(
      (action) => ['POST', `/v1/rollouts/rol-x/${action}`, undefined] as const,
    ),
    ['POST', '/v1/rollouts/rol-x/reject', { reason: 'no' }],
    ['GET', '/v1/rollouts/rol-x/events', undefined],
  ] as const)('%s %s refuses a query parameter, naming it', async (method, url, payload) => {
    const before = await api.keys();
    const response = await api.call('admin', {
      method,
      url: `${url}?limit=abc`,
      ...(payload ? { payload } : {}),
    });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().errors).toEqual([{ field: 'limit', rule: 'unknown field' }]);
    expect(await api.keys()).toEqual(before);
  });
});

describe('event streams', () => {
  const rule = 'must be an event id as the stream sends them, such as 1738310400000-0';
  let changeId: string;
  let lastEventId: string;
  beforeAll(async () => {
    const { changes, audit } = api.harness.orchestrator;
    const { change } = await changes.submit({
      ...api.target(1),
      params: { IpsecServerName: 'streamed' },
      actor: 'setup',
    });
    await changes.cancel(change.id, 'setup');
    changeId = change.id;
    lastEventId = (await audit.forChange(change.id)).at(-1)?.id as string;
  });

  it.each([
    ['bogus', rule],
    ['', rule],
    ['1738310400000-0-1', rule],
    [['1738310400000-0', '1738310400000-1'], 'must be given once'],
  ])('refuses Last-Event-ID %j, naming it, instead of sending every event again', async (value, expected) => {
    for (const url of [`/v1/changes/${changeId}/events`, '/v1/rollouts/rol-x/events']) {
      const response = await api.call('viewer', { method: 'GET', url, headers: { 'last-event-id': value } });
      expect(response.statusCode, `${url}: ${response.body}`).toBe(400);
      expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(response.json().errors).toEqual([{ field: 'last-event-id', rule: expected }]);
    }
  });

  it('resumes after a Last-Event-ID it sent', async () => {
    const url = `/v1/changes/${changeId}/events`;
    const whole = await api.call('viewer', { method: 'GET', url });
    expect(whole.statusCode).toBe(200);
    expect(whole.body).toContain(`id: ${lastEventId}\n`);
    const resumed = await api.call('viewer', {
      method: 'GET',
      url,
      headers: { 'last-event-id': lastEventId },
    });
    expect(resumed.statusCode).toBe(200);
    expect(resumed.body).not.toContain('event: audit');
  });
});

describe('rules in words, never in zod wording', () => {
  const t = { ipsecServerId: 'iss-words', regionId: 'cn-shanghai', params: { IpsecServerName: 'words' } };
  it.each([
    ['/v1/rollouts', [], 'body', 'must be an object'],
    ['/v1/rollouts', { targets: [] }, 'targets', 'must not be empty'],
    ['/v1/rollouts', { targets: 'x' }, 'targets', 'must be a list'],
    [
      '/v1/rollouts',
      { targets: [t], approvals: { required: 0 } },
      'approvals.required',
      'must be at least 1',
    ],
    ['/v1/rollouts', { targets: [t], pause: 'sometimes' }, 'pause', 'must be one of none, first, every'],
    ['/v1/rollouts', { targets: [t], planOnly: 'yes' }, 'planOnly', 'must be true or false'],
    ['/v1/rollouts', { targets: [t], bakeMs: 1.5 }, 'bakeMs', 'must be a whole number'],
    // A bad concurrency is told its rule, not that `concurrency` is unknown (to { batches }).
    [
      '/v1/rollouts',
      { targets: [t], strategy: { concurrency: 1.5 } },
      'strategy.concurrency',
      'must be a whole number or a percentage such as 25%',
    ],
    [
      '/v1/rollouts',
      { targets: [t], strategy: { concurrency: 0 } },
      'strategy.concurrency',
      'must be at least 1',
    ],
    [
      '/v1/rollouts',
      { targets: [t], strategy: { concurrency: '0%' } },
      'strategy.concurrency',
      'percentage must be from 1% to 100%',
    ],
    [
      '/v1/rollouts',
      { targets: [t], strategy: { batches: [1], concurrency: 2 } },
      'strategy',
      'must be { batches: [...] } or { concurrency: N | "N%" }, not both',
    ],
    [
      '/v1/rollouts',
      { targets: [t], maxErrors: 1.5 },
      'maxErrors',
      'must be a whole number or a percentage such as 25%',
    ],
    // The controller pauses and bakes between batches only: under concurrency both did nothing.
    [
      '/v1/rollouts',
      { targets: [t], strategy: { concurrency: 2 }, pause: 'first' },
      'pause',
      'applies to the batches strategy only (a concurrency strategy has no batches to pause after)',
    ],
    [
      '/v1/rollouts',
      { targets: [t], strategy: { concurrency: 2 }, bakeMs: 60_000 },
      'bakeMs',
      'applies to the batches strategy only (a concurrency strategy has no batches to wait between)',
    ],
    ['/v1/rollouts', { targets: [t], note: 5 }, 'note', 'must be a string'],
    ['/v1/rollouts', { targets: [{ ...t, regionId: '' }] }, 'targets.0.regionId', 'must not be empty'],
    ['/v1/rollouts/rol-x/reject', [], 'body', 'must be an object'],
    ['/v1/rollouts/rol-x/reject', { reason: 5 }, 'reason', 'must be a string'],
    ['/v1/rollouts/rol-x/rollback', { note: '' }, 'note', 'must not be empty'],
    ['/v1/changes/chg-x/reject', [], 'body', 'must be an object'],
    ['/v1/changes', null, 'body', 'is required'],
  ])('POST %s with %j: %s %s', async (url, payload, field, rule) => {
    const before = await api.keys();
    const response = await api.call('admin', {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(payload),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([{ field, rule }]);
    expect(await api.keys()).toEqual(before);
  });

  // Valid JSON all of it: what is refused is the key, which is named, and not the syntax.
  it.each([
    [
      '/v1/changes',
      '{"ipsecServerId":"iss-words","regionId":"cn-shanghai","params":{"__proto__":{"LocalSubnet":"10.0.0.0/24"}}}',
      'params.__proto__',
    ],
    ['/v1/changes', '{"__proto__":{},"ipsecServerId":"iss-words"}', '__proto__'],
    [
      '/v1/rollouts',
      '{"targets":[{"ipsecServerId":"iss-words","regionId":"cn-shanghai","constructor":{"prototype":{}}}]}',
      'targets.0.constructor.prototype',
    ],
  ])('POST %s with %s: %s is refused as a key', async (url, payload, field) => {
    const before = await api.keys();
    const response = await api.call('admin', {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      payload,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([
      { field, rule: 'is not accepted as a key (it names a property of every object)' },
    ]);
    expect(await api.keys()).toEqual(before);
  });

  it('finds a refused key nested deeper than the call stack goes, and answers 400', async () => {
    const depth = 200_000;
    const payload = `{"targets":${'['.repeat(depth)}{"__proto__":1}${']'.repeat(depth)}}`;
    const response = await createRollout(payload, { 'content-type': 'application/json' });
    expect(response.statusCode).toBe(400);
    const [issue] = response.json().errors as Array<{ field: string; rule: string }>;
    expect(issue?.field).toBe(`targets.${'0.'.repeat(depth)}__proto__`);
  });
});
