import { randomBytes } from 'node:crypto';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiApp, buildApp } from '../../src/api/app.js';
import { ROLES, type Role } from '../../src/api/auth/roles.js';
import { generateToken, hashToken, TokenStore } from '../../src/api/auth/tokens.js';
import { rolloutBodyHash } from '../../src/api/routes/rollouts.js';
import { pskFingerprinter } from '../../src/ipsec/psk.js';
import { MAX_TARGETS } from '../../src/rollouts/rollout.js';
import { rolloutSpecSchema } from '../../src/rollouts/rollout-spec.js';
import { newRolloutId } from '../../src/rollouts/rollouts.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { PROBLEM_JSON, type Who } from './api-harness.js';

/**
 * The rollout routes over the real library: a rollout worker, change workers and the simulator
 * behind buildApp, driven with inject.
 */

let h: RolloutHarness;
let app: ApiApp;
const tokens = Object.fromEntries(ROLES.map((role) => [role, generateToken()])) as Record<Role, string>;
const secondApprover = generateToken();

function call(who: Who | 'approver2', request: InjectOptions) {
  const headers: Record<string, string> = { ...(request.headers as Record<string, string>) };
  if (who === 'bad') headers.authorization = `Bearer ${generateToken()}`;
  else if (who === 'approver2') headers.authorization = `Bearer ${secondApprover}`;
  else if (who !== 'anonymous') headers.authorization = `Bearer ${tokens[who]}`;
  return app.inject({ ...request, headers });
}

function targets(count: number) {
  return h.sim.servers.slice(0, count).map((server) => ({
    ipsecServerId: server.ipsecServerId,
    regionId: server.regionId,
  }));
}

async function waitFor(id: string, states: string[]) {
  return h.waitForRollout(id, states, 20_000);
}

async function create(body: unknown, who: Who = 'submitter') {
  const response = await call(who, { method: 'POST', url: '/v1/rollouts', payload: body as object });
  expect(response.statusCode, response.body).toBe(201);
  return response.json().rollout as { id: string; state: string; actor: string };
}

beforeAll(async () => {
  h = await startRolloutHarness({ sim: { servers: 4, faults: { configuringMs: 0 } } });
  const store = new TokenStore([
    ...ROLES.map((role) => ({ name: `${role}-user`, roles: [role], sha256: hashToken(tokens[role]) })),
    { name: 'second-approver', roles: ['approver' as const], sha256: hashToken(secondApprover) },
  ]);
  app = buildApp({ orchestrator: h.orchestrator, tokens: store, rollouts: h.rollouts });
  await app.ready();
}, 30_000);

afterAll(async () => {
  await app?.close();
  await h?.close();
});

describe('rollout routes: auth matrix', () => {
  const writeRoutes: { url: string; role: Role; payload?: object }[] = [
    { url: '/v1/rollouts/rol-x/approve', role: 'approver' },
    { url: '/v1/rollouts/rol-x/reject', role: 'approver', payload: { reason: 'no' } },
    { url: '/v1/rollouts/rol-x/pause', role: 'submitter' },
    { url: '/v1/rollouts/rol-x/resume', role: 'submitter' },
    { url: '/v1/rollouts/rol-x/cancel', role: 'submitter' },
    { url: '/v1/rollouts/rol-x/rollback', role: 'submitter' },
  ];

  it('reads need a viewer token: 401 without, 404 problem for an unknown rollout with', async () => {
    for (const url of ['/v1/rollouts', '/v1/rollouts/rol-x', '/v1/rollouts/rol-x/events']) {
      for (const who of ['anonymous', 'bad'] as const) {
        const response = await call(who, { method: 'GET', url });
        expect(response.statusCode, `${who} ${url}`).toBe(401);
        expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      }
    }
    const list = await call('viewer', { method: 'GET', url: '/v1/rollouts' });
    expect(list.statusCode).toBe(200);
    const missing = await call('viewer', { method: 'GET', url: '/v1/rollouts/rol-x' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().code).toBe('ROLLOUT_NOT_FOUND');
  });

  it('each write needs its role (admin passes everywhere)', async () => {
    for (const route of writeRoutes) {
      for (const who of ROLES) {
        const response = await call(who, { method: 'POST', url: route.url, payload: route.payload });
        const allowed = who === route.role || who === 'admin';
        // Allowed: past auth, the unknown rollout is a 404.
        expect(response.statusCode, `${who} ${route.url}`).toBe(allowed ? 404 : 403);
        expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      }
      expect((await call('anonymous', { method: 'POST', url: route.url })).statusCode).toBe(401);
    }
    const body = { targets: targets(1), params: { IpsecServerName: 'x' } };
    for (const who of ['viewer', 'approver'] as const) {
      const response = await call(who, { method: 'POST', url: '/v1/rollouts', payload: body });
      expect(response.statusCode).toBe(403);
    }
  });
});

describe('rollout routes: OpenAPI', () => {
  it('documents every rollout route', async () => {
    const response = await call('anonymous', { method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const paths = Object.keys(response.json().paths).filter((path) => path.startsWith('/v1/rollouts'));
    expect(paths.sort()).toEqual([
      '/v1/rollouts',
      '/v1/rollouts/{id}',
      '/v1/rollouts/{id}/approve',
      '/v1/rollouts/{id}/cancel',
      '/v1/rollouts/{id}/events',
      '/v1/rollouts/{id}/pause',
      '/v1/rollouts/{id}/reject',
      '/v1/rollouts/{id}/resume',
      '/v1/rollouts/{id}/rollback',
    ]);
  });
});

describe('rollout routes: bad input', () => {
  it('a bad spec is a 400 problem naming every bad field', async () => {
    const response = await call('submitter', {
      method: 'POST',
      url: '/v1/rollouts',
      payload: {
        targets: [{ ipsecServerId: 'iss-1', regionId: 'cn-shanghai' }],
        strategy: { batches: [0] },
        maxErrors: -1,
        actor: 'mallory',
      },
    });
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
    const problem = response.json();
    expect(problem.code).toBe('INVALID_INPUT');
    const fields = problem.errors.map((issue: { field: string }) => issue.field);
    expect(fields).toEqual(expect.arrayContaining(['maxErrors']));
    expect(fields.some((field: string) => field.startsWith('strategy'))).toBe(true);
    expect(JSON.stringify(problem.errors)).toMatch(/actor/);
  });

  it('cross-field rules: a target listed twice, params nowhere', async () => {
    const [one] = targets(1);
    const response = await call('submitter', {
      method: 'POST',
      url: '/v1/rollouts',
      payload: { targets: [one, one] },
    });
    expect(response.statusCode).toBe(400);
    const fields = response.json().errors.map((issue: { field: string }) => issue.field);
    expect(fields).toEqual(expect.arrayContaining(['targets.0.params', 'targets.1.ipsecServerId']));
  });

  it('checks every target of 10,000 that share their params text: a bad one among them is named', async () => {
    // The rules of a text seen before are not run again (cidr.ts): the targets whose text differs,
    // and the second target to repeat a bad text, must still be named, each at its own index.
    const subnet = Array.from({ length: 32 }, (_, block) => `10.${block}.0.0/16`).join(',');
    const badSubnet = subnet.replace('10.31.0.0/16', '10.31.0.1/16');
    const params = { LocalSubnet: subnet, IkeConfig: '{"LocalId":"vpn.example.com"}' };
    const spec = {
      targets: Array.from({ length: MAX_TARGETS }, (_, index) => ({
        ipsecServerId: `iss-shared${index}`,
        regionId: 'cn-shanghai',
        params:
          index === 4_000
            ? { ...params, IkeConfig: '{"LocalId":"bad_id"}' }
            : index === 5 || index === 9_999
              ? { ...params, LocalSubnet: badSubnet }
              : params,
      })),
      planOnly: true,
    };
    const response = await call('submitter', { method: 'POST', url: '/v1/rollouts', payload: spec });
    expect(response.statusCode).toBe(400);
    const badBlock = 'entry 32: must be a network address, e.g. 10.31.0.0/16 (got 10.31.0.1/16)';
    expect(response.json().errors).toEqual([
      { field: 'targets.5.params.LocalSubnet', rule: badBlock },
      {
        field: 'targets.4000.params.IkeConfig.LocalId',
        rule: 'must be an FQDN (e.g. vpn.example.com) or an IP address (got "bad_id")',
      },
      { field: 'targets.9999.params.LocalSubnet', rule: badBlock },
    ]);
    expect((await h.rollouts.list()).rollouts.map((rollout) => rollout.targetCount)).not.toContain(
      MAX_TARGETS,
    );
  });

  it('refuses a note holding a lone UTF-16 surrogate, naming it, and creates nothing', async () => {
    const before = (await h.rollouts.list()).rollouts.length;
    const response = await call('submitter', {
      method: 'POST',
      url: '/v1/rollouts',
      payload: { targets: targets(1), params: { IpsecServerName: 'name-ok' }, note: 'ticket \ud800' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().errors).toEqual([
      { field: 'note', rule: 'must be Unicode text: it holds a lone UTF-16 surrogate' },
    ]);
    expect((await h.rollouts.list()).rollouts).toHaveLength(before);
  });

  it('reject needs a reason; approve takes no body; bad list queries are 400', async () => {
    const reject = await call('approver', { method: 'POST', url: '/v1/rollouts/rol-x/reject', payload: {} });
    expect(reject.statusCode).toBe(400);
    expect(reject.json().errors).toEqual([{ field: 'reason', rule: 'is required' }]);
    const long = await call('approver', {
      method: 'POST',
      url: '/v1/rollouts/rol-x/reject',
      payload: { reason: 'r'.repeat(1025) },
    });
    expect(long.json().errors).toEqual([{ field: 'reason', rule: 'must be at most 1024 characters' }]);
    const approve = await call('approver', {
      method: 'POST',
      url: '/v1/rollouts/rol-x/approve',
      payload: { yes: true },
    });
    expect(approve.statusCode).toBe(400);
    const list = await call('viewer', { method: 'GET', url: '/v1/rollouts?limit=0&cursor=zz' });
    expect(list.statusCode).toBe(400);
    expect(list.json().errors).toEqual([
      { field: 'cursor', rule: 'must be a cursor returned by a previous page' },
      { field: 'limit', rule: 'must be from 1 to 500' },
    ]);
    for (const query of ['limit=99999999999', 'limit=1&limit=2', 'limit=-3', 'limit=ten']) {
      const response = await call('viewer', { method: 'GET', url: `/v1/rollouts?${query}` });
      expect(response.statusCode, query).toBe(400);
      expect(response.json().errors, query).toEqual([
        {
          field: 'limit',
          rule: query.includes('&')
            ? 'must be given once'
            : query === 'limit=ten'
              ? 'must be a whole number'
              : 'must be from 1 to 500',
        },
      ]);
    }
  });
});

describe('rollout routes: a rollout through the API on the simulator', () => {
  it('plan only: planned with a plan report', async () => {
    const created = await create({
      targets: targets(2),
      params: { IpsecServerName: 'plan_only' },
      planOnly: true,
    });
    expect(created.actor).toBe('submitter-user');
    await waitFor(created.id, ['planned']);
    const response = await call('viewer', { method: 'GET', url: `/v1/rollouts/${created.id}` });
    expect(response.statusCode).toBe(200);
    const { rollout, plan } = response.json();
    expect(rollout.state).toBe('planned');
    expect(rollout.plan['would-change']).toBe(2);
    expect(plan).toHaveLength(2);
    expect(plan[0]).toMatchObject({ index: 0, kind: 'would-change' });
  });

  it('a selector instead of targets: resolved by the plan; both at once is a 400', async () => {
    const both = await call('submitter', {
      method: 'POST',
      url: '/v1/rollouts',
      payload: {
        targets: targets(1),
        selector: { regions: ['cn-shanghai'] },
        params: { IpsecServerName: 'by_selector' },
      },
    });
    expect(both.statusCode).toBe(400);
    expect(JSON.stringify(both.json().errors)).toMatch(/exactly one of targets/);
    const created = await create({
      selector: { regions: ['cn-shanghai'], namePattern: 'sim-ipsec-000[12]*' },
      params: { IpsecServerName: 'by_selector' },
      maxChangesPerMinute: 5,
      planOnly: true,
    });
    await waitFor(created.id, ['planned', 'rejected']);
    const response = await call('viewer', { method: 'GET', url: `/v1/rollouts/${created.id}` });
    const { rollout } = response.json();
    // `[` is not special in the glob: nothing is named that, so nothing matches.
    expect(rollout).toMatchObject({ state: 'rejected', reason: 'selector matches no IPsec server' });
    expect(rollout.selector).toEqual({ regions: ['cn-shanghai'], namePattern: 'sim-ipsec-000[12]*' });
    expect(rollout.settings.maxChangesPerMinute).toBe(5);
    const matching = await create({
      selector: { regions: ['cn-shanghai'], namePattern: 'sim-ipsec-000?' },
      params: { IpsecServerName: 'by_selector' },
      planOnly: true,
    });
    const planned = await waitFor(matching.id, ['planned']);
    expect(planned.targetCount).toBe(h.sim.servers.length);
    expect(planned.plan?.['would-change']).toBe(h.sim.servers.length);
  });

  it('Idempotency-Key: the same body returns the first rollout, another body is a 409', async () => {
    const body = { targets: targets(1), params: { IpsecServerName: 'idem' }, planOnly: true };
    const post = (payload: object, key: string) =>
      call('submitter', {
        method: 'POST',
        url: '/v1/rollouts',
        payload,
        headers: { 'idempotency-key': key },
      });
    const first = await post(body, 'key-1');
    expect(first.statusCode).toBe(201);
    const again = await post(body, 'key-1');
    expect(again.statusCode).toBe(200);
    expect(again.json().rollout.id).toBe(first.json().rollout.id);
    const other = await post({ ...body, note: 'different' }, 'key-1');
    expect(other.statusCode).toBe(409);
    expect(other.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    const bad = await post(body, 'caf\u00e9');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors[0].field).toBe('idempotency-key');
    await waitFor(first.json().rollout.id, ['planned']);
  });

  it("Idempotency-Key: the body's hash is keyed where a Psk is in it, so Redis holds no test of a guessed Psk", () => {
    const spec = (Psk: string | undefined, perTarget?: string) =>
      rolloutSpecSchema.parse({
        targets: [{ ...targets(1)[0], ...(perTarget ? { params: { Psk: perTarget } } : {}) }],
        params: Psk === undefined ? { IpsecServerName: 'no-psk' } : { Psk },
      });
    const underKeyA = pskFingerprinter(randomBytes(32));
    const underKeyB = pskFingerprinter(randomBytes(32));
    for (const body of [spec('Winter2025!'), spec(undefined, 'Summer2024!')]) {
      // Under another secret key, the same body hashes otherwise: without the key, no guess checks out.
      expect(rolloutBodyHash(body, underKeyA)).not.toBe(rolloutBodyHash(body, underKeyB));
      expect(rolloutBodyHash(body, underKeyA)).toBe(rolloutBodyHash(body, underKeyA));
      expect(rolloutBodyHash(body, underKeyA)).not.toBe(
        rolloutBodyHash({ ...body, note: 'another body' }, underKeyA),
      );
    }
    const noPsk = spec(undefined);
    expect(rolloutBodyHash(noPsk, underKeyA)).toBe(rolloutBodyHash(noPsk, underKeyB));
  });

  it('Idempotency-Key: concurrent identical requests make one rollout, a 201 for one of them and 200 for the rest', async () => {
    // Enough targets that staging them takes a few round trips: the others come in meanwhile.
    const body = {
      targets: Array.from({ length: 500 }, (_, i) => ({
        ipsecServerId: `iss-concurrent${i}`,
        regionId: 'cn-hangzhou',
      })),
      params: { IpsecServerName: 'idem-concurrent' },
      planOnly: true,
    };
    const responses = await Promise.all(
      Array.from({ length: 8 }, () =>
        call('submitter', {
          method: 'POST',
          url: '/v1/rollouts',
          payload: body,
          headers: { 'idempotency-key': 'key-concurrent' },
        }),
      ),
    );
    const ids = new Set(responses.map((response) => response.json().rollout.id as string));
    expect(ids.size).toBe(1);
    expect(responses.map((response) => response.statusCode).sort()).toEqual([
      200, 200, 200, 200, 200, 200, 200, 201,
    ]);
    const created = responses.find((response) => response.statusCode === 201);
    expect(created?.headers.location).toBe(`/v1/rollouts/${[...ids][0]}`);
    await call('submitter', { method: 'POST', url: `/v1/rollouts/${[...ids][0]}/cancel` });
  }, 30_000);

  it('Idempotency-Key: a retry after the first request died before creating makes the rollout under the id it reserved', async () => {
    const body = { targets: targets(1), params: { IpsecServerName: 'idem-crash' }, planOnly: true };
    const post = () =>
      call('submitter', {
        method: 'POST',
        url: '/v1/rollouts',
        payload: body,
        headers: { 'idempotency-key': 'key-crash' },
      });
    const before = (await h.rollouts.list({ limit: 500 })).rollouts.length;
    // The first request reserved the key and its rollout's id, then its process died.
    const reservedId = newRolloutId();
    const slot = h.orchestrator.keys.rolloutIdempotency('submitter-user', 'key-crash');
    const hash = rolloutBodyHash(rolloutSpecSchema.parse(body), h.orchestrator.secrets.fingerprint);
    await h.orchestrator.redis.set(slot, JSON.stringify({ hash, id: reservedId }), 'EX', 60);

    const retry = await post();
    expect(retry.statusCode, retry.body).toBe(201);
    expect(retry.json().rollout.id).toBe(reservedId);
    const again = await post();
    expect(again.statusCode).toBe(200);
    expect(again.json().rollout.id).toBe(reservedId);
    await waitFor(reservedId, ['planned']);
    // One rollout for the two requests and the one that died.
    expect((await h.rollouts.list({ limit: 500 })).rollouts).toHaveLength(before + 1);
  });

  it('planned → approved → completed; the submitter cannot approve; events stream to the end', async () => {
    const created = await create({
      targets: targets(3),
      params: { IpsecServerName: 'via_api' },
      strategy: { batches: [1, '100%'] },
    });
    await waitFor(created.id, ['awaiting_approval']);

    // The submitter (an admin too) cannot approve their own rollout.
    const own = await create({ targets: targets(1), params: { IpsecServerName: 'own' } }, 'admin');
    await waitFor(own.id, ['awaiting_approval']);
    const self = await call('admin', { method: 'POST', url: `/v1/rollouts/${own.id}/approve` });
    expect(self.statusCode).toBe(403);
    expect(self.json().code).toBe('APPROVER_IS_SUBMITTER');
    const selfReject = await call('admin', {
      method: 'POST',
      url: `/v1/rollouts/${own.id}/reject`,
      payload: { reason: 'mine' },
    });
    expect(selfReject.json().code).toBe('APPROVER_IS_SUBMITTER');
    const rejected = await call('approver', {
      method: 'POST',
      url: `/v1/rollouts/${own.id}/reject`,
      payload: { reason: 'not today' },
    });
    expect(rejected.statusCode).toBe(200);
    expect(rejected.json().rollout).toMatchObject({ state: 'rejected', reason: 'not today' });

    // Pausing a rollout that is not running is a 409.
    const early = await call('submitter', { method: 'POST', url: `/v1/rollouts/${created.id}/pause` });
    expect(early.statusCode).toBe(409);
    expect(early.json().code).toBe('ROLLOUT_STATE_CONFLICT');

    const approved = await call('approver', { method: 'POST', url: `/v1/rollouts/${created.id}/approve` });
    expect(approved.statusCode, approved.body).toBe(200);
    // The same approval sent again (a retry whose first answer was lost) is the same approval;
    // anyone else approving a rollout that is no longer waiting is a conflict.
    const again = await call('approver', { method: 'POST', url: `/v1/rollouts/${created.id}/approve` });
    expect(again.statusCode, again.body).toBe(200);
    const late = await call('admin', { method: 'POST', url: `/v1/rollouts/${created.id}/approve` });
    expect(late.statusCode).toBe(409);

    const events = await call('viewer', { method: 'GET', url: `/v1/rollouts/${created.id}/events` });
    expect(events.statusCode).toBe(200);
    expect(events.headers['content-type']).toMatch(/^text\/event-stream/);
    const types = [...events.body.matchAll(/^event: audit\ndata: (.*)$/gm)].map(
      (match) => JSON.parse(match[1] as string).type,
    );
    expect(types[0]).toBe('rollout_created');
    expect(types).toContain('rollout_approved');
    expect(types.at(-1)).toBe('rollout_completed');
    const progress = [...events.body.matchAll(/^event: progress\ndata: (.*)$/gm)].map((match) =>
      JSON.parse(match[1] as string),
    );
    expect(progress.at(-1)).toMatchObject({ state: 'completed', progress: { succeeded: 3, percent: 100 } });

    const done = await call('viewer', { method: 'GET', url: `/v1/rollouts/${created.id}` });
    expect(done.json().rollout).toMatchObject({ state: 'completed', progress: { total: 3, succeeded: 3 } });
    for (const server of h.sim.servers.slice(0, 3)) {
      expect(h.sim.server(server.ipsecServerId)?.config.IpsecServerName).toBe('via_api');
    }

    // Newest first, paged.
    const first = await call('viewer', { method: 'GET', url: '/v1/rollouts?limit=1' });
    const page = first.json();
    expect(page.rollouts.map((r: { id: string }) => r.id)).toEqual([own.id]);
    expect(page.nextCursor).toBeDefined();
    const next = await call('viewer', {
      method: 'GET',
      url: `/v1/rollouts?limit=1&cursor=${encodeURIComponent(page.nextCursor)}`,
    });
    expect(next.json().rollouts[0].id).toBe(created.id);
  }, 40_000);
});

describe('rollout routes: the event stream', () => {
  it('answers HEAD with the headers alone, leaving nothing polling Redis behind', async () => {
    const created = await create({ targets: targets(1), params: { IpsecServerName: 'head_only' } });
    await waitFor(created.id, ['awaiting_approval']);

    const head = await call('viewer', { method: 'HEAD', url: `/v1/rollouts/${created.id}/events` });
    expect(head.statusCode).toBe(200);
    expect(head.headers['content-type']).toMatch(/^text\/event-stream/);

    // Fastify drains a HEAD's body instead of sending it and never ends it: the stream's poll went
    // on reading the rollout every 500 ms until it ended, one more poller for every HEAD. Nothing
    // else reads a rollout that waits for approval, and OBJECT IDLETIME (whole seconds) is no read.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const idle = await h.orchestrator.redis.object('IDLETIME', h.orchestrator.keys.rollout(created.id));
    expect(idle).toBeGreaterThanOrEqual(2);

    await call('approver', {
      method: 'POST',
      url: `/v1/rollouts/${created.id}/reject`,
      payload: { reason: 'head' },
    });
  }, 30_000);
});
