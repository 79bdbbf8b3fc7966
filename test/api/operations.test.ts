import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { TokenStore } from '../../src/api/auth/tokens.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { uniquePrefix } from '../support/orchestrator-harness.js';
import { type Api, startApi } from './api-harness.js';

let api: Api | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

describe('health', () => {
  it('healthz answers ok; readyz is 503 without a live worker and 200 with one', async () => {
    api = await startApi({ workers: 0 });
    const health = await api.call('anonymous', { method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });

    const notReady = await api.call('anonymous', { method: 'GET', url: '/readyz' });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({ status: 'not_ready', redis: 'ok', workers: 0, failing: ['workers'] });

    const worker = await api.harness.startWorker();
    const ready = await api.call('anonymous', { method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', redis: 'ok', workers: 1 });

    await worker.close();
    api.harness.workers.splice(api.harness.workers.indexOf(worker), 1);
    expect((await api.call('anonymous', { method: 'GET', url: '/readyz' })).statusCode).toBe(503);
  });

  it('readyz is 503 naming redis when Redis does not answer', async () => {
    // Nothing listens on port 1.
    const orchestrator = Orchestrator.connect({ redisUrl: 'redis://127.0.0.1:1', prefix: uniquePrefix() });
    orchestrator.redis.on('error', () => undefined);
    orchestrator.queue.queue.on('error', () => undefined);
    const app = buildApp({ orchestrator, tokens: new TokenStore([]) });
    try {
      const response = await app.inject({ method: 'GET', url: '/readyz' });
      expect(response.statusCode).toBe(503);
      expect(response.json()).toEqual({
        status: 'not_ready',
        redis: 'unavailable',
        workers: 0,
        failing: ['redis'],
      });
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
      await orchestrator.close();
    }
  });
});

describe('OpenAPI', () => {
  it('documents every route with its schemas, and serves Swagger UI', async () => {
    api = await startApi({ workers: 0 });
    const response = await api.call('anonymous', { method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    const document = response.json();
    expect(document.openapi).toMatch(/^3\./);
    const operations = Object.entries(document.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        'POST /v1/changes',
        'GET /v1/changes',
        'GET /v1/changes/{id}',
        'POST /v1/changes/{id}/cancel',
        'POST /v1/changes/{id}/approve',
        'POST /v1/changes/{id}/reject',
        'GET /v1/changes/{id}/events',
        'GET /v1/servers/{id}/lane',
        'GET /v1/audit',
        'GET /healthz',
        'GET /readyz',
        'GET /metrics',
      ].sort(),
    );

    const submit = document.paths['/v1/changes'].post;
    expect(submit.security).toEqual([{ bearerAuth: [] }]);
    expect(submit.parameters).toEqual(
      expect.arrayContaining([expect.objectContaining({ in: 'header', name: 'idempotency-key' })]),
    );
    const body = submit.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['ipsecServerId', 'regionId', 'params']);
    expect(body.additionalProperties).toBe(false);
    expect(Object.keys(body.properties.params.properties)).toEqual(
      expect.arrayContaining(['LocalSubnet', 'ClientIpPool', 'IkeConfig', 'Psk']),
    );
    expect(Object.keys(submit.responses)).toEqual(
      expect.arrayContaining(['200', '201', '400', '401', '403', '409']),
    );
    expect(submit.responses['400'].content['application/problem+json']).toBeDefined();
    for (const [path, methods] of Object.entries(
      document.paths as Record<string, Record<string, { security?: unknown }>>,
    )) {
      for (const operation of Object.values(methods)) {
        expect(operation.security !== undefined, path).toBe(path.startsWith('/v1/'));
      }
    }
    expect(document.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    const list = document.paths['/v1/changes'].get.parameters.map(
      (parameter: { name: string }) => parameter.name,
    );
    expect(list.sort()).toEqual(['cursor', 'limit', 'server', 'state']);

    const ui = await api.call('anonymous', { method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toMatch(/text\/html/);
  });
});

describe('metrics', () => {
  it('serves Prometheus text without a token', async () => {
    api = await startApi({ workers: 0 });
    const response = await api.call('anonymous', { method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
    expect(response.body).toContain('ipsec_fleet_changes');
  });
});
