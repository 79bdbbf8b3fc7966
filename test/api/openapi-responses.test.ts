/**
 * The OpenAPI document lists every answer a route can give, so that a client generated from it
 * (or a reader of it) is not surprised: the error statuses docs/api-contract.md gives each route,
 * as problems, and every status real requests get, a Redis that does not answer among them.
 */
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiApp, DEFAULT_BODY_LIMIT } from '../../src/api/app.js';
import { generateToken, hashToken, TokenStore } from '../../src/api/auth/tokens.js';
import { ROLLOUT_BODY_LIMIT } from '../../src/api/routes/rollouts.js';
import { type ApiBehindProxy, startApiBehindProxy } from '../support/api-behind-proxy.js';
import type { Harness } from '../support/orchestrator-harness.js';
import type { TcpProxy } from '../support/tcp-proxy.js';

interface Operation {
  tags?: string[];
  security?: unknown[];
  parameters?: unknown[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}

interface Document {
  tags?: Array<{ name: string }>;
  paths: Record<string, Record<string, Operation>>;
}

/** The errors of each route's own logic, as the contract's table of routes gives them. */
const LOGIC_ERRORS: Readonly<Record<string, readonly number[]>> = {
  'POST /v1/changes': [409],
  'GET /v1/changes/{id}': [404],
  'POST /v1/changes/{id}/cancel': [404, 409],
  'POST /v1/changes/{id}/approve': [404, 409],
  'POST /v1/changes/{id}/reject': [404, 409],
  'GET /v1/changes/{id}/events': [404],
  'POST /v1/rollouts': [409],
  'GET /v1/rollouts/{id}': [404],
  'POST /v1/rollouts/{id}/approve': [404, 409],
  'POST /v1/rollouts/{id}/reject': [404, 409],
  'POST /v1/rollouts/{id}/pause': [404, 409],
  'POST /v1/rollouts/{id}/resume': [404, 409],
  'POST /v1/rollouts/{id}/cancel': [404, 409],
  'POST /v1/rollouts/{id}/rollback': [404, 409],
  'GET /v1/rollouts/{id}/events': [404],
};

/** The anonymous routes, which answer whether Redis does or not (the contract's Auth section). */
const OPERATIONS_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * What the contract's Errors and Auth sections give every route of its kind: 400 for bad input,
 * 401 and 403 behind a token, 413 and 415 (and broken JSON, a 400) where a body is read, and a
 * 503 to a read or a 504 to a write when Redis does not answer.
 */
function contractStatuses(method: string, path: string, operation: Operation): number[] {
  const statuses = new Set(LOGIC_ERRORS[`${method} ${path}`] ?? []);
  const takesBody = method !== 'GET';
  if ((operation.parameters ?? []).length > 0 || operation.requestBody || takesBody) statuses.add(400);
  if (path.startsWith('/v1/')) {
    statuses.add(401);
    statuses.add(403);
  }
  if (takesBody) {
    statuses.add(413);
    statuses.add(415);
  }
  if (!OPERATIONS_ROUTES.has(path)) statuses.add(takesBody ? 504 : 503);
  return [...statuses].sort((a, b) => a - b);
}

function operationsOf(document: Document) {
  return Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, operation]) => ({ method: method.toUpperCase(), path, operation })),
  );
}

const PROBLEM_REF = '#/components/schemas/Problem';

let api: ApiBehindProxy;
let harness: Harness;
let proxy: TcpProxy;
let app: ApiApp;
let document: Document;
const admin = generateToken();
const viewer = generateToken();

beforeAll(async () => {
  api = await startApiBehindProxy(
    new TokenStore([
      { name: 'admin-user', roles: ['admin'], sha256: hashToken(admin) },
      { name: 'viewer-user', roles: ['viewer'], sha256: hashToken(viewer) },
    ]),
    { rollouts: true },
  );
  ({ harness, proxy, app } = api);
  document = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
});

afterAll(() => api?.close());

describe('OpenAPI: the answers of every route', () => {
  it('documents, for every operation, each error status the contract gives it, as a problem', () => {
    const missing: string[] = [];
    for (const { method, path, operation } of operationsOf(document)) {
      for (const status of contractStatuses(method, path, operation)) {
        const response = operation.responses[String(status)];
        if (response?.content?.['application/problem+json']?.schema?.$ref !== PROBLEM_REF) {
          missing.push(`${method} ${path} ${status}`);
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('declares every tag an operation uses', () => {
    const declared = new Set((document.tags ?? []).map((tag) => tag.name));
    const used = new Set(operationsOf(document).flatMap(({ operation }) => operation.tags ?? []));
    expect([...used].filter((tag) => !declared.has(tag))).toEqual([]);
  });

  it('documents each status that real requests get, with Redis up and with Redis not answering', async () => {
    const server = harness.sim.servers[0]!;
    const target = { ipsecServerId: server.ipsecServerId, regionId: server.regionId };
    // A body each route accepts, so that what decides the answer is the case tried, not the body.
    const bodies: Record<string, unknown> = {
      'POST /v1/changes': { ...target, params: { IpsecServerName: 'x-1' } },
      'POST /v1/changes/{id}/reject': { reason: 'no' },
      'POST /v1/rollouts': { targets: [target], params: { IpsecServerName: 'x-1' } },
      'POST /v1/rollouts/{id}/reject': { reason: 'no' },
    };
    const operations = operationsOf(document);
    const request = (method: string, path: string, extra: Partial<InjectOptions> = {}): InjectOptions => {
      const url = path.replace('{id}', path.startsWith('/v1/servers/') ? server.ipsecServerId : 'unknown-1');
      const payload = bodies[`${method} ${path}`];
      return {
        method: method as InjectOptions['method'],
        url,
        headers: { authorization: `Bearer ${admin}` },
        ...(payload === undefined ? {} : { payload: payload as InjectOptions['payload'] }),
        ...extra,
      };
    };
    const answers: Array<{ method: string; path: string; case: string; response: LightMyRequestResponse }> =
      [];
    const send = async (method: string, path: string, name: string, options: InjectOptions) => {
      answers.push({ method, path, case: name, response: await app.inject(options) });
    };

    for (const { method, path, operation } of operations) {
      const secured = (operation.security ?? []).length > 0;
      await send(method, path, 'as asked', request(method, path));
      if (secured) await send(method, path, 'no token', request(method, path, { headers: {} }));
      if (secured && method !== 'GET') {
        await send(
          method,
          path,
          'viewer',
          request(method, path, { headers: { authorization: `Bearer ${viewer}` } }),
        );
      }
      if (path.startsWith('/v1/')) {
        const { url, ...rest } = request(method, path);
        await send(method, path, 'unknown query parameter', { ...rest, url: `${url}?bogus=1` });
      }
      if (method !== 'GET') {
        const { headers } = request(method, path);
        await send(method, path, 'text/plain', {
          ...request(method, path),
          headers: { ...headers, 'content-type': 'text/plain' },
          payload: 'hello',
        });
        const limit = path === '/v1/rollouts' ? ROLLOUT_BODY_LIMIT : DEFAULT_BODY_LIMIT;
        await send(method, path, 'too large', {
          ...request(method, path),
          headers: { ...headers, 'content-type': 'application/json' },
          payload: `"${'x'.repeat(limit)}"`,
        });
      }
    }

    proxy.freeze();
    // Each waits for the command timeout: together, not one after another.
    await Promise.all(
      operations.map(async ({ method, path }) => {
        const options = request(method, path);
        answers.push({ method, path, case: 'Redis not answering', response: await app.inject(options) });
      }),
    );
    proxy.heal();
    // The replies held back meanwhile reach their connections before anything closes them.
    expect((await app.inject(request('GET', '/v1/changes'))).statusCode).toBe(200);

    const seen = new Set(answers.map(({ response }) => response.statusCode));
    // Each case provoked what it is there for; else the check below would pass without trying it.
    expect([...seen].sort()).toEqual(expect.arrayContaining([400, 401, 403, 404, 413, 415, 503, 504]));
    const undocumented = answers
      .filter(({ method, path, response }) => {
        const documented =
          document.paths[path]?.[method.toLowerCase()]?.responses[String(response.statusCode)];
        if (!documented) return true;
        return (
          /^application\/problem\+json/.test(String(response.headers['content-type'])) &&
          documented.content?.['application/problem+json'] === undefined
        );
      })
      .map(({ method, path, case: name, response }) => `${method} ${path} (${name}): ${response.statusCode}`);
    expect(undocumented).toEqual([]);
  }, 60_000);
});
