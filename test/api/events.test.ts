import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditTail } from '../../src/api/audit-tail.js';
import { type EventsRoutesOptions, eventsRoutes } from '../../src/api/routes/events.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';

let harness: Harness | undefined;
let app: FastifyInstance | undefined;

afterEach(async () => {
  await app?.close();
  app = undefined;
  await harness?.close();
  harness = undefined;
});

/** The routes on a bare Fastify app, wired to the tail the way the app factory does it. */
async function buildApp(
  h: Harness,
  options: Partial<EventsRoutesOptions> & { startTail?: boolean } = {},
): Promise<{ app: FastifyInstance; tail: AuditTail }> {
  const tail = new AuditTail(h.orchestrator, { blockMs: 200 });
  const instance = Fastify();
  instance.setValidatorCompiler(validatorCompiler);
  instance.setSerializerCompiler(serializerCompiler);
  await instance.register(eventsRoutes, { orchestrator: h.orchestrator, tail, ...options });
  if (options.startTail !== false) instance.addHook('onReady', async () => tail.start());
  instance.addHook('onClose', async () => tail.close());
  await instance.ready();
  app = instance;
  return { app: instance, tail };
}

const submit = submitTo;

interface Frame {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
}

function parseFrames(text: string): Frame[] {
  const frames: Frame[] = [];
  for (const block of text.split('\n\n')) {
    if (block === '') continue;
    const frame: Frame = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) frame.comment = line.slice(1).trim();
      else {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon) as 'id' | 'event' | 'data';
        frame[name] = line.slice(colon + 1).replace(/^ /, '');
      }
    }
    frames.push(frame);
  }
  return frames;
}

const auditFrames = (frames: Frame[]) => frames.filter((frame) => frame.event === 'audit');
const eventsOf = (frames: Frame[]) =>
  auditFrames(frames).map((frame) => JSON.parse(frame.data!) as AuditEvent);

/** An SSE client over a real socket: collects complete frames as they arrive. */
async function connect(baseUrl: string, path: string, headers: Record<string, string> = {}) {
  const response = await request(`${baseUrl}${path}`, {
    headers: { accept: 'text/event-stream', ...headers },
  });
  const client = {
    statusCode: response.statusCode,
    headers: response.headers,
    text: '',
    ended: false,
    get frames() {
      return parseFrames(client.text.slice(0, client.text.lastIndexOf('\n\n') + 2));
    },
    close: () => response.body.destroy(),
    done: undefined as unknown as Promise<void>,
  };
  response.body.setEncoding('utf8');
  client.done = (async () => {
    try {
      for await (const chunk of response.body) client.text += chunk as string;
      client.ended = true;
    } catch {
      // destroyed by the test
    }
  })();
  return client;
}

async function eventually(check: () => unknown, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

describe('GET /v1/changes/:id/events', () => {
  it('streams the whole timeline of a change that runs to succeeded, in order, once each, then ends', async () => {
    harness = await startHarness({ workers: 0, sim: { faults: { configuringMs: 0 } } });
    // The tail is started only after the client has its timeline: it then replays the stream from
    // the start, so the subscription delivers `submitted` a second time and it must be dropped.
    const { app, tail } = await buildApp(harness, { startTail: false });
    const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    const change = await submit(harness, 0, { LocalSubnet: '172.16.40.0/24' });

    const client = await connect(baseUrl, `/v1/changes/${change.id}/events`);
    expect(client.statusCode).toBe(200);
    expect(client.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(client.headers['cache-control']).toBe('no-cache');
    await eventually(() => expect(auditFrames(client.frames)).toHaveLength(1));
    expect(eventsOf(client.frames)[0]).toMatchObject({ type: 'submitted', changeId: change.id });

    tail.start();
    await harness.startWorker();
    await client.done;
    expect(client.ended).toBe(true);

    const received = eventsOf(client.frames);
    expect(received.map((event) => event.type)).toEqual([
      'submitted',
      'running',
      'dry_run_passed',
      'applied',
      'succeeded',
    ]);
    const stored = await harness.orchestrator.audit.forChange(change.id);
    expect(received).toEqual(stored);
    expect(auditFrames(client.frames).map((frame) => frame.id)).toEqual(stored.map((event) => event.id));
    await eventually(() => expect(tail.subscriptionCount).toBe(0));
  });

  it('gives a client that connects after the end the whole timeline, and ends', async () => {
    harness = await startHarness({ sim: { faults: { configuringMs: 0 } } });
    const { app } = await buildApp(harness);
    const target = harness.sim.servers[1]!;
    const pool = harness.sim.server(target.ipsecServerId)!.config.ClientIpPool as string;
    const change = await submit(harness, 1, { LocalSubnet: pool });
    expect(await harness.waitFor(change.id, ['rejected', 'succeeded', 'failed'])).toBe('rejected');

    // inject() resolves only once the response has ended.
    const response = await app.inject({ method: 'GET', url: `/v1/changes/${change.id}/events` });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    const frames = parseFrames(response.body);
    const stored = await harness.orchestrator.audit.forChange(change.id);
    expect(eventsOf(frames)).toEqual(stored);
    expect(stored.map((event) => event.type)).toEqual(['submitted', 'running', 'rejected']);
    expect(stored[2]).toMatchObject({ code: 'IllegalParam.LocalSubnet' });
    expect(response.body).toMatch(/^id: \d+-\d+\nevent: audit\ndata: \{.*\}\n\n/);

    // A client that reconnects with Last-Event-ID gets what follows it, and the end.
    const resumed = await app.inject({
      method: 'GET',
      url: `/v1/changes/${change.id}/events`,
      headers: { 'last-event-id': stored[0]!.id },
    });
    expect(eventsOf(parseFrames(resumed.body)).map((event) => event.id)).toEqual(
      stored.slice(1).map((event) => event.id),
    );
  });

  it('answers 404 problem+json for a change that does not exist', async () => {
    harness = await startHarness({ workers: 0 });
    const { app, tail } = await buildApp(harness);
    const response = await app.inject({ method: 'GET', url: '/v1/changes/chg-nope/events' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toEqual({
      type: 'https://ipsec-fleet.dev/problems/CHANGE_NOT_FOUND',
      title: 'Change not found',
      status: 404,
      detail: 'change chg-nope does not exist',
      code: 'CHANGE_NOT_FOUND',
    });
    expect(tail.subscriptionCount).toBe(0);
  });

  it('runs the auth preHandler before anything else', async () => {
    harness = await startHarness({ workers: 0 });
    const { app, tail } = await buildApp(harness, {
      preHandler: async (request, reply) => {
        if (request.headers.authorization !== 'Bearer viewer') {
          await reply.code(401).header('www-authenticate', 'Bearer').send({ code: 'UNAUTHORIZED' });
        }
      },
    });
    const change = await submit(harness, 0, { LocalSubnet: '172.16.41.0/24' });
    const denied = await app.inject({ method: 'GET', url: `/v1/changes/${change.id}/events` });
    expect(denied.statusCode).toBe(401);
    expect(tail.subscriptionCount).toBe(0);

    const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    const client = await connect(baseUrl, `/v1/changes/${change.id}/events`, {
      authorization: 'Bearer viewer',
    });
    expect(client.statusCode).toBe(200);
    await eventually(() => expect(auditFrames(client.frames)).toHaveLength(1));
    client.close();
  });

  it('sends heartbeats, and drops the subscription when the client goes away', async () => {
    harness = await startHarness({ workers: 0 });
    const { app, tail } = await buildApp(harness, { heartbeatMs: 50 });
    const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    const change = await submit(harness, 2, { LocalSubnet: '172.16.42.0/24' });

    const client = await connect(baseUrl, `/v1/changes/${change.id}/events`);
    await eventually(() => expect(client.frames.some((frame) => frame.comment === 'heartbeat')).toBe(true));
    expect(eventsOf(client.frames).map((event) => event.type)).toEqual(['submitted']);
    expect(tail.subscriptionCount).toBe(1);

    client.close();
    await eventually(() => expect(tail.subscriptionCount).toBe(0));
  });

  it('answers HEAD with the headers alone, keeping no subscription or heartbeat behind', async () => {
    harness = await startHarness({ workers: 0 });
    const { app, tail } = await buildApp(harness, { heartbeatMs: 50 });
    const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
    const change = await submit(harness, 4, { LocalSubnet: '172.16.44.0/24' });

    const response = await request(`${baseUrl}/v1/changes/${change.id}/events`, { method: 'HEAD' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
    await response.body.text();
    // Fastify drains a HEAD's body instead of sending it and never ends it: a stream left open
    // held its subscription and heartbeat until the change ended, one more for every HEAD.
    await eventually(() => expect(tail.subscriptionCount).toBe(0), 2_000);
  });

  it('ends open streams when the app closes, so closing does not wait for clients', async () => {
    harness = await startHarness({ workers: 0 });
    const { app: instance, tail } = await buildApp(harness);
    const baseUrl = await instance.listen({ port: 0, host: '127.0.0.1' });
    const change = await submit(harness, 3, { LocalSubnet: '172.16.43.0/24' });
    const client = await connect(baseUrl, `/v1/changes/${change.id}/events`);
    await eventually(() => expect(auditFrames(client.frames)).toHaveLength(1));

    // A close that waited for the stream to end would hang past the test's timeout.
    await instance.close();
    app = undefined;
    await client.done;
    expect(client.ended).toBe(true);
    expect(tail.subscriptionCount).toBe(0);
    expect(tail.running).toBe(false);
  });
});
