import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { grants, ROLES } from '../../src/api/auth/roles.js';
import {
  createToken,
  generateToken,
  hashToken,
  readTokensFile,
  TOKEN_PATTERN,
  TokenStore,
} from '../../src/api/auth/tokens.js';
import { InvalidInputError } from '../../src/validation.js';
import { type Api, PROBLEM_JSON, startApi, type Who } from './api-harness.js';

let api: Api;
beforeAll(async () => {
  api = await startApi({ workers: 0 });
});
afterAll(() => api?.close());

let serverIndex = 0;
/** A queued change (no worker runs in this file), on a server of its own. */
async function queuedChange(): Promise<string> {
  const change = await api.harness.orchestrator.changes.submit({
    ...api.target(serverIndex++ % 6),
    params: { IpsecServerName: `auth-${serverIndex}` },
    actor: 'setup',
  });
  return change.change.id;
}

interface RouteCase {
  route: string;
  role: 'viewer' | 'submitter';
  request: () => Promise<{ method: 'GET' | 'POST'; url: string; payload?: object }>;
}

const ROUTES: RouteCase[] = [
  {
    route: 'POST /v1/changes',
    role: 'submitter',
    request: async () => ({
      method: 'POST',
      url: '/v1/changes',
      payload: { ...api.target(0), params: { LocalSubnet: '10.9.0.0/24' } },
    }),
  },
  {
    route: 'GET /v1/changes/:id',
    role: 'viewer',
    request: async () => ({ method: 'GET', url: `/v1/changes/${await queuedChange()}` }),
  },
  { route: 'GET /v1/changes', role: 'viewer', request: async () => ({ method: 'GET', url: '/v1/changes' }) },
  {
    route: 'POST /v1/changes/:id/cancel',
    role: 'submitter',
    request: async () => ({ method: 'POST', url: `/v1/changes/${await queuedChange()}/cancel` }),
  },
  {
    route: 'GET /v1/changes/:id/events',
    role: 'viewer',
    // A cancelled change: its stream sends the timeline and ends.
    request: async () => {
      const id = await queuedChange();
      await api.harness.orchestrator.changes.cancel(id, 'setup');
      return { method: 'GET', url: `/v1/changes/${id}/events` };
    },
  },
  {
    route: 'GET /v1/servers/:id/lane',
    role: 'viewer',
    request: async () => ({ method: 'GET', url: `/v1/servers/${api.target(0).ipsecServerId}/lane` }),
  },
  { route: 'GET /v1/audit', role: 'viewer', request: async () => ({ method: 'GET', url: '/v1/audit' }) },
  {
    route: 'GET /v1/audit?format=jsonl',
    role: 'viewer',
    request: async () => ({ method: 'GET', url: '/v1/audit?format=jsonl' }),
  },
];

/** Who may do what, spelled out rather than derived from the code under test. */
const ALLOWED: Record<RouteCase['role'], Who[]> = {
  viewer: ['viewer', 'submitter', 'approver', 'admin'],
  submitter: ['submitter', 'admin'],
};

const WHO: Who[] = ['anonymous', 'bad', 'viewer', 'submitter', 'approver', 'admin'];

describe('the auth matrix', () => {
  const cases = ROUTES.flatMap((route) => WHO.map((who) => ({ ...route, who })));
  it.each(cases)('$route as $who', async ({ request, role, who }) => {
    const response = await api.call(who, await request());
    if (who === 'anonymous' || who === 'bad') {
      expect(response.statusCode).toBe(401);
      expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="ipsec-fleet"/);
      expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(response.json()).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });
    } else if (ALLOWED[role].includes(who)) {
      expect(response.statusCode, response.body).toBeGreaterThanOrEqual(200);
      expect(response.statusCode, response.body).toBeLessThan(300);
    } else {
      expect(response.statusCode).toBe(403);
      expect(response.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(response.json()).toMatchObject({
        status: 403,
        code: 'FORBIDDEN',
        type: 'https://ipsec-fleet.dev/problems/FORBIDDEN',
      });
      expect(response.json().detail).toContain(`${who}-user`);
    }
  });

  it('records the token name as the actor', async () => {
    const response = await api.call('admin', await ROUTES[0]!.request());
    expect(response.statusCode).toBe(201);
    expect(response.json().change.actor).toBe('admin-user');
  });

  it.each([
    ['no scheme', 'ipf_x'],
    ['another scheme', `Basic ${Buffer.from('a:b').toString('base64')}`],
    ['an empty bearer', 'Bearer '],
    ['two tokens', 'Bearer a b'],
  ])('answers 401 to a malformed Authorization header (%s)', async (_name, authorization) => {
    const response = await api.app.inject({ method: 'GET', url: '/v1/changes', headers: { authorization } });
    expect(response.statusCode).toBe(401);
    expect(response.headers['www-authenticate']).toContain('error="invalid_token"');
  });

  it('takes the scheme in any case', async () => {
    const response = await api.app.inject({
      method: 'GET',
      url: '/v1/changes',
      headers: { authorization: `bearer ${api.tokens.viewer}` },
    });
    expect(response.statusCode).toBe(200);
  });

  it('checks the token before reading the body: 401, not 400, 413 or 415', async () => {
    for (const payload of ['{not json', 'x'.repeat(100_000)]) {
      const response = await api.call('anonymous', {
        method: 'POST',
        url: '/v1/changes',
        headers: { 'content-type': 'application/json' },
        payload,
      });
      expect(response.statusCode).toBe(401);
    }
    const plain = await api.call('bad', {
      method: 'POST',
      url: '/v1/changes',
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(plain.statusCode).toBe(401);
  });

  it.each([['/healthz'], ['/readyz'], ['/metrics'], ['/openapi.json'], ['/docs']])(
    'serves %s without a token',
    async (url) => {
      const response = await api.call('anonymous', { method: 'GET', url });
      // No worker runs in this file, so the API is alive but not ready.
      expect(response.statusCode).toBe(url === '/readyz' ? 503 : 200);
    },
  );
});

describe('roles', () => {
  it('grants viewer to every role, submitter to submitter and admin, approver to approver and admin', () => {
    expect(ROLES.filter((role) => grants([role], 'viewer'))).toEqual([
      'viewer',
      'submitter',
      'approver',
      'admin',
    ]);
    expect(ROLES.filter((role) => grants([role], 'submitter'))).toEqual(['submitter', 'admin']);
    expect(ROLES.filter((role) => grants([role], 'approver'))).toEqual(['approver', 'admin']);
    expect(ROLES.filter((role) => grants([role], 'admin'))).toEqual(['admin']);
    expect(grants(['viewer', 'approver'], 'submitter')).toBe(false);
  });
});

describe('tokens', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ipf-tokens-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('look like ipf_ and 43 base64url characters, all different', () => {
    const tokens = new Set(Array.from({ length: 200 }, generateToken));
    expect(tokens.size).toBe(200);
    for (const token of tokens) expect(token).toMatch(TOKEN_PATTERN);
  });

  it('are hashed as the hex SHA-256 of the whole token', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('round trip: created into a 0600 file as a hash only, then accepted by the API', async () => {
    const file = join(dir, 'round-trip.json');
    const token = await createToken(file, { name: 'ci-deploy', roles: ['submitter'] });
    expect(token).toMatch(TOKEN_PATTERN);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(token);
    expect(JSON.parse(text)).toEqual({
      tokens: [{ name: 'ci-deploy', roles: ['submitter'], sha256: hashToken(token) }],
    });

    const second = await createToken(file, { name: 'bob', roles: ['viewer', 'viewer'] });
    expect((await readTokensFile(file))?.tokens.map((entry) => [entry.name, entry.roles])).toEqual([
      ['ci-deploy', ['submitter']],
      ['bob', ['viewer']],
    ]);

    const store = await TokenStore.load(file);
    expect(store.authenticate(token)).toEqual({ name: 'ci-deploy', roles: ['submitter'] });
    expect(store.authenticate(second)).toEqual({ name: 'bob', roles: ['viewer'] });
    expect(store.authenticate(generateToken())).toBeUndefined();

    const app = buildApp({ orchestrator: api.harness.orchestrator, tokens: store });
    try {
      const submitted = await app.inject({
        method: 'POST',
        url: '/v1/changes',
        headers: { authorization: `Bearer ${token}` },
        payload: { ...api.target(1), params: { IpsecServerName: 'round-trip' } },
      });
      expect(submitted.statusCode).toBe(201);
      expect(submitted.json().change.actor).toBe('ci-deploy');
      const denied = await app.inject({
        method: 'POST',
        url: '/v1/changes',
        headers: { authorization: `Bearer ${second}` },
        payload: { ...api.target(1), params: { IpsecServerName: 'round-trip' } },
      });
      expect(denied.statusCode).toBe(403);
    } finally {
      await app.close();
    }
  });

  it('keeps the mode of an existing file', async () => {
    const file = join(dir, 'mode.json');
    await writeFile(file, '{"tokens":[]}', { mode: 0o640 });
    await createToken(file, { name: 'alice', roles: ['viewer'] });
    expect((await stat(file)).mode & 0o777).toBe(0o640);
  });

  it('refuses a duplicate name and leaves the file as it was', async () => {
    const file = join(dir, 'duplicate.json');
    await createToken(file, { name: 'alice', roles: ['viewer'] });
    const before = await readFile(file, 'utf8');
    await expect(createToken(file, { name: 'alice', roles: ['admin'] })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      issues: [{ field: 'name', rule: expect.stringContaining('already exists') }],
    });
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('serializes concurrent creations: none is lost', async () => {
    const file = join(dir, 'concurrent.json');
    await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        createToken(file, { name: `user-${index}`, roles: ['viewer'] }),
      ),
    );
    expect((await readTokensFile(file))?.tokens).toHaveLength(8);
  });

  it('names what is wrong in an invalid tokens file', async () => {
    const file = join(dir, 'invalid.json');
    await writeFile(
      file,
      JSON.stringify({
        tokens: [
          { name: 'a', roles: ['root'], sha256: 'abc' },
          { name: 'a', roles: [], sha256: 'x' },
        ],
      }),
    );
    const error = await TokenStore.load(file).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidInputError);
    const fields = (error as InvalidInputError).issues.map((issue) => issue.field);
    expect(fields).toEqual(
      expect.arrayContaining(['tokens.0.roles.0', 'tokens.0.sha256', 'tokens.1.roles', 'tokens.1.sha256']),
    );
    const sha256 = hashToken('x');
    await writeFile(
      file,
      JSON.stringify({
        tokens: [
          { name: 'a', roles: ['viewer'], sha256 },
          { name: 'a', roles: ['admin'], sha256 },
        ],
      }),
    );
    await expect(TokenStore.load(file)).rejects.toMatchObject({
      issues: [
        { field: 'tokens.1.name', rule: 'is used by another token' },
        { field: 'tokens.1.sha256', rule: 'is used by another token' },
      ],
    });
    await writeFile(file, '{"tokens":');
    await expect(TokenStore.load(file)).rejects.toThrow(/is not valid JSON/);
    await expect(TokenStore.load(join(dir, 'missing.json'))).rejects.toThrow(/does not exist/);
  });

  it('reloads the file, keeping the tokens in use when it became invalid', async () => {
    const file = join(dir, 'reload.json');
    const first = await createToken(file, { name: 'first', roles: ['viewer'] });
    const store = await TokenStore.load(file);
    const second = await createToken(file, { name: 'second', roles: ['viewer'] });
    expect(store.authenticate(second)).toBeUndefined();
    expect(await store.reload()).toBe(2);
    expect(store.authenticate(second)?.name).toBe('second');
    await writeFile(file, 'garbage');
    await expect(store.reload()).rejects.toThrow(InvalidInputError);
    expect(store.authenticate(first)?.name).toBe('first');
  });
});
