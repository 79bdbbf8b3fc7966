import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditTail } from '../../src/api/audit-tail.js';
import { AuditMetrics, cloudCallOf, stateAfter } from '../../src/api/metrics.js';
import { metricsRoutes } from '../../src/api/routes/metrics.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';

let harness: Harness | undefined;
const apps: FastifyInstance[] = [];

afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()));
  await harness?.close();
  harness = undefined;
});

async function buildApp(h: Harness): Promise<{ app: FastifyInstance; tail: AuditTail }> {
  const tail = new AuditTail(h.orchestrator, { blockMs: 200 });
  const app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(metricsRoutes, { orchestrator: h.orchestrator, tail });
  app.addHook('onReady', async () => tail.start());
  app.addHook('onClose', async () => tail.close());
  await app.ready();
  apps.push(app);
  return { app, tail };
}

const submit = submitTo;

/** One sample's value from Prometheus text (undefined when the series is absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (wanted.every(([key, value]) => present[key] === value)) return Number(match[3]);
  }
  return undefined;
}

async function scrape(app: FastifyInstance): Promise<string> {
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.body;
}

async function eventually(check: () => unknown, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

const event = (type: string, extra: Partial<AuditEvent> = {}): AuditEvent => ({
  id: '1-0',
  ts: 0,
  actor: 'w',
  type,
  changeId: 'chg-1',
  ipsecServerId: 'iss-1',
  regionId: 'cn-shanghai',
  attempt: 1,
  ...extra,
});

describe('audit-derived metrics: the mapping', () => {
  it('puts a change in the state its last event names', () => {
    expect(stateAfter(event('submitted'))).toBe('queued');
    for (const type of ['running', 'dry_run_passed', 'applied'])
      expect(stateAfter(event(type))).toBe('running');
    expect(stateAfter(event('backoff'))).toBe('backing_off');
    for (const type of ['succeeded', 'rejected', 'failed', 'cancelled', 'expired'])
      expect(stateAfter(event(type))).toBe(type);
    expect(stateAfter(event('toString'))).toBeUndefined();
  });

  it('puts a change held for approval in awaiting_approval, and approved in queued', () => {
    const held = event('submitted', { details: { approval: { required: 1, expiresAt: 1 } } });
    expect(stateAfter(held)).toBe('awaiting_approval');
    expect(stateAfter(event('approval'))).toBeUndefined();
    expect(stateAfter(event('approved'))).toBe('queued');
  });

  it('names the cloud call of an event from its type, or its code and phase', () => {
    expect(cloudCallOf(event('dry_run_passed'))).toEqual({
      action: 'UpdateIpsecServer',
      code: 'DryRunOperation',
    });
    expect(cloudCallOf(event('applied'))).toEqual({ action: 'UpdateIpsecServer', code: 'OK' });
    const failure = (type: string, code: string, phase?: string) =>
      cloudCallOf(event(type, { code, ...(phase ? { details: { phase } } : {}) }));
    expect(failure('backoff', 'VpnGateway.Configuring', 'dry-run')).toEqual({
      action: 'UpdateIpsecServer',
      code: 'VpnGateway.Configuring',
    });
    expect(failure('failed', 'InternalError', 'apply')?.action).toBe('UpdateIpsecServer');
    expect(failure('rejected', 'Forbidden', 'read')).toEqual({
      action: 'ListIpsecServers',
      code: 'Forbidden',
    });
    expect(failure('backoff', 'ServiceUnavailable', 'verify')?.action).toBe('ListIpsecServers');
    expect(failure('backoff', 'CircuitOpen')).toBeUndefined();
    expect(failure('failed', 'VerifyMismatch', 'verify')).toBeUndefined();
    expect(cloudCallOf(event('running'))).toBeUndefined();
    expect(cloudCallOf(event('cancelled'))).toBeUndefined();
  });
});

describe('GET /metrics', () => {
  it('reports change states, cloud calls by code, backoffs, lane waits, queue depth and workers', async () => {
    harness = await startHarness({ workers: 0, sim: { faults: { configuringMs: 400 } } });
    const { app } = await buildApp(harness);

    // Nothing runs yet: three changes queued, the two lane heads have waiting jobs.
    const first = await submit(harness, 0, { LocalSubnet: '172.16.50.0/24' });
    const second = await submit(harness, 0, { LocalSubnet: '172.16.51.0/24' });
    const target = harness.sim.servers[1]!;
    const pool = harness.sim.server(target.ipsecServerId)!.config.ClientIpPool as string;
    const bad = await submit(harness, 1, { LocalSubnet: pool });
    await eventually(async () => {
      const text = await scrape(app);
      expect(sample(text, 'ipsec_fleet_changes', { state: 'queued' })).toBe(3);
    });
    let text = await scrape(app);
    expect(sample(text, 'ipsec_fleet_queue_depth', { state: 'waiting' })).toBe(2);
    expect(sample(text, 'ipsec_fleet_queue_depth', { state: 'active' })).toBe(0);
    expect(sample(text, 'ipsec_fleet_queue_depth', { state: 'delayed' })).toBe(0);
    expect(sample(text, 'ipsec_fleet_live_workers')).toBe(0);
    expect(sample(text, 'ipsec_fleet_changes', { state: 'succeeded' })).toBe(0);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);

    await harness.startWorker();
    for (const change of [first, second])
      expect(await harness.waitFor(change.id, ['succeeded'])).toBe('succeeded');
    expect(await harness.waitFor(bad.id, ['rejected'])).toBe('rejected');

    await eventually(async () => {
      text = await scrape(app);
      expect(sample(text, 'ipsec_fleet_changes', { state: 'succeeded' })).toBe(2);
      expect(sample(text, 'ipsec_fleet_changes', { state: 'rejected' })).toBe(1);
    });
    for (const state of ['queued', 'running', 'backing_off', 'failed', 'cancelled', 'expired'])
      expect(sample(text, 'ipsec_fleet_changes', { state })).toBe(0);
    const update = (code: string) =>
      sample(text, 'ipsec_fleet_cloud_calls_total', { action: 'UpdateIpsecServer', code });
    expect(update('DryRunOperation')).toBe(2);
    expect(update('OK')).toBe(2);
    expect(update('IllegalParam.LocalSubnet')).toBe(1);
    // The second change on server 0 met the gateway configuring after the first one's apply.
    const busy = (await harness.orchestrator.audit.forChange(second.id)).filter(
      (e) => e.type === 'backoff' && e.code === 'VpnGateway.Configuring',
    ).length;
    expect(busy).toBeGreaterThan(0);
    expect(update('VpnGateway.Configuring')).toBe(busy);
    expect(sample(text, 'ipsec_fleet_backoffs_total', { code: 'VpnGateway.Configuring' })).toBe(busy);
    expect(sample(text, 'ipsec_fleet_lane_wait_seconds_count')).toBe(3);
    expect(sample(text, 'ipsec_fleet_lane_wait_seconds_sum')).toBeGreaterThan(0);
    expect(sample(text, 'ipsec_fleet_live_workers')).toBe(1);
    expect(sample(text, 'ipsec_fleet_queue_depth', { state: 'waiting' })).toBe(0);
    expect(sample(text, 'ipsec_fleet_queue_depth', { state: 'delayed' })).toBe(0);

    // A second app (its own registry) replays the stream from the start and agrees.
    const { app: other } = await buildApp(harness);
    await eventually(async () => {
      const otherText = await scrape(other);
      expect(sample(otherText, 'ipsec_fleet_changes', { state: 'succeeded' })).toBe(2);
      expect(
        sample(otherText, 'ipsec_fleet_cloud_calls_total', { action: 'UpdateIpsecServer', code: 'OK' }),
      ).toBe(2);
    });
  });

  it('counts each event once across a close and start of the tail', async () => {
    harness = await startHarness({ sim: { faults: { configuringMs: 0 } } });
    const { app, tail } = await buildApp(harness);
    const one = await submit(harness, 0, { LocalSubnet: '172.16.60.0/24' });
    await harness.waitFor(one.id, ['succeeded']);
    await eventually(async () =>
      expect(sample(await scrape(app), 'ipsec_fleet_changes', { state: 'succeeded' })).toBe(1),
    );

    await tail.close();
    const two = await submit(harness, 1, { LocalSubnet: '172.16.61.0/24' });
    await harness.waitFor(two.id, ['succeeded']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sample(await scrape(app), 'ipsec_fleet_changes', { state: 'succeeded' })).toBe(1);

    tail.start();
    await eventually(async () =>
      expect(sample(await scrape(app), 'ipsec_fleet_changes', { state: 'succeeded' })).toBe(2),
    );
    const text = await scrape(app);
    expect(sample(text, 'ipsec_fleet_cloud_calls_total', { action: 'UpdateIpsecServer', code: 'OK' })).toBe(
      2,
    );
    expect(sample(text, 'ipsec_fleet_lane_wait_seconds_count')).toBe(2);
  });

  it('holds only unfinished changes in memory', async () => {
    harness = await startHarness({ workers: 0 });
    const metrics = new AuditMetrics(harness.orchestrator, { defaultMetrics: false });
    let n = 0;
    const at = (type: string, changeId: string, extra: Partial<AuditEvent> = {}) =>
      metrics.observe(event(type, { id: `${++n}-0`, ts: n * 1000, changeId, ...extra }));
    for (let i = 0; i < 100; i++) {
      const id = `chg-${i}`;
      at('submitted', id);
      at('running', id);
      at('backoff', id, { code: 'CircuitOpen' });
      at('running', id);
      at(i % 2 === 0 ? 'succeeded' : 'cancelled', id);
    }
    at('submitted', 'chg-open');
    at('cancelled', 'chg-never-ran-but-seen-late');
    expect(metrics.openChanges).toBe(1);
    const text = await metrics.metrics();
    expect(sample(text, 'ipsec_fleet_changes', { state: 'succeeded' })).toBe(50);
    expect(sample(text, 'ipsec_fleet_changes', { state: 'cancelled' })).toBe(51);
    expect(sample(text, 'ipsec_fleet_changes', { state: 'queued' })).toBe(1);
    expect(sample(text, 'ipsec_fleet_changes', { state: 'running' })).toBe(0);
    expect(sample(text, 'ipsec_fleet_backoffs_total', { code: 'CircuitOpen' })).toBe(100);
    expect(text).not.toContain('code="CircuitOpen",action');
    expect(sample(text, 'ipsec_fleet_cloud_calls_total')).toBeUndefined();
    // Lane wait: only the first run of each change, 1 s after its submission.
    expect(sample(text, 'ipsec_fleet_lane_wait_seconds_count')).toBe(100);
    expect(sample(text, 'ipsec_fleet_lane_wait_seconds_sum')).toBe(100);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeUndefined();
  });
});
