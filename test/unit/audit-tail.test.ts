import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { AuditTail } from '../../src/api/audit-tail.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { deleteKeys, uniquePrefix } from '../support/orchestrator-harness.js';

/**
 * The tail against a real Redis. Entries are appended to the audit stream directly (the shape the
 * Lua scripts write: `XADD key * e <json>`), which is all the tail ever sees.
 */
let redisUrl: string;
let prefix: string;
let orchestrator: Orchestrator;
let writer: Redis;
const tails: AuditTail[] = [];

beforeEach(() => {
  redisUrl = inject('redisUrl');
  prefix = uniquePrefix();
  orchestrator = Orchestrator.connect({ redisUrl, prefix });
  writer = new Redis(redisUrl);
});

afterEach(async () => {
  await Promise.all(tails.splice(0).map((tail) => tail.close()));
  await orchestrator.close();
  writer.disconnect();
  await deleteKeys(redisUrl, prefix);
});

function newTail(options?: ConstructorParameters<typeof AuditTail>[1]): AuditTail {
  const tail = new AuditTail(orchestrator, options);
  tails.push(tail);
  return tail;
}

let seq = 0;
async function append(changeId: string, type = 'running', extra: Record<string, unknown> = {}) {
  const body = JSON.stringify({
    ts: Date.now(),
    actor: 'test',
    type,
    changeId,
    ipsecServerId: 'iss-1',
    regionId: 'cn-shanghai',
    attempt: seq++,
    ...extra,
  });
  return (await writer.xadd(orchestrator.keys.audit, '*', 'e', body)) as string;
}

async function appendMany(changeId: string, count: number): Promise<string[]> {
  const pipeline = writer.pipeline();
  for (let i = 0; i < count; i++) {
    const body = JSON.stringify({
      ts: i,
      actor: 't',
      type: 'running',
      changeId,
      ipsecServerId: 'i',
      regionId: 'r',
      attempt: i,
    });
    pipeline.xadd(orchestrator.keys.audit, '*', 'e', body);
  }
  const results = (await pipeline.exec()) ?? [];
  return results.map(([, id]) => id as string);
}

async function eventually(check: () => unknown, timeoutMs = 5_000): Promise<void> {
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

async function tailClients(): Promise<string[]> {
  const list = (await writer.client('LIST')) as string;
  return list.split('\n').filter((line) => line.includes(`name=ipsec-fleet-audit-tail-${prefix} `));
}

describe('AuditTail', () => {
  it('replays the stream from the start, in order, across pages, then follows it live', async () => {
    const history = await appendMany('chg-a', 2_500);
    const tail = newTail({ blockMs: 100 });
    const seen: AuditEvent[] = [];
    tail.onEvent((event) => seen.push(event));
    tail.start();
    await eventually(() => expect(seen).toHaveLength(2_500));
    expect(seen.map((event) => event.id)).toEqual(history);
    expect(seen[0]).toMatchObject({ changeId: 'chg-a', type: 'running', attempt: 0 });

    const live = await append('chg-b', 'submitted');
    await eventually(() => expect(seen).toHaveLength(2_501));
    expect(seen[2_500]).toMatchObject({ id: live, changeId: 'chg-b', type: 'submitted' });
    expect(tail.position).toBe(live);
  });

  it('starts after a given id, e.g. `$` for only what comes next', async () => {
    await append('chg-old');
    const tail = newTail({ blockMs: 100, startId: '$' });
    const seen: string[] = [];
    tail.onEvent((event) => seen.push(event.changeId));
    tail.start();
    // Give the first XREAD time to be blocking (with `$`, it resolves to the end at that moment).
    await new Promise((resolve) => setTimeout(resolve, 100));
    await append('chg-new');
    await eventually(() => expect(seen).toEqual(['chg-new']));
  });

  it("hands per-change subscribers only their change's events, until they unsubscribe", async () => {
    const tail = newTail({ blockMs: 100 });
    tail.start();
    const a: string[] = [];
    const b: string[] = [];
    const all: string[] = [];
    const stopA = tail.subscribe('chg-a', (event) => a.push(event.type));
    tail.subscribe('chg-b', (event) => b.push(event.type));
    tail.onEvent((event) => all.push(event.changeId));
    expect(tail.subscriptionCount).toBe(2);

    await append('chg-a', 'submitted');
    await append('chg-b', 'submitted');
    await append('chg-a', 'running');
    await eventually(() => expect(all).toHaveLength(3));
    expect(a).toEqual(['submitted', 'running']);
    expect(b).toEqual(['submitted']);

    stopA();
    stopA();
    expect(tail.subscriptionCount).toBe(1);
    await append('chg-a', 'succeeded');
    await eventually(() => expect(all).toHaveLength(4));
    expect(a).toEqual(['submitted', 'running']);
  });

  it('keeps dispatching when a listener throws or an entry is unreadable', async () => {
    const tail = newTail({ blockMs: 100 });
    const seen: string[] = [];
    tail.onEvent(() => {
      throw new Error('listener bug');
    });
    tail.onEvent((event) => seen.push(event.type));
    tail.start();
    await writer.xadd(orchestrator.keys.audit, '*', 'e', '{not json');
    await writer.xadd(orchestrator.keys.audit, '*', 'other', 'field');
    await append('chg-a', 'succeeded');
    await eventually(() => expect(seen).toEqual(['succeeded']));
  });

  it('closes promptly while blocked, with its connection, and resumes where it stopped', async () => {
    await append('chg-a', 'submitted');
    const tail = newTail({ blockMs: 30_000 });
    const seen: string[] = [];
    tail.onEvent((event) => seen.push(event.type));
    tail.start();
    tail.start(); // idempotent: still one connection
    await eventually(() => expect(seen).toEqual(['submitted']));
    expect(await tailClients()).toHaveLength(1);

    // A close that waited out the 30 s XREAD block would fail on the test's 20 s timeout.
    await tail.close();
    expect(tail.running).toBe(false);
    await eventually(async () => expect(await tailClients()).toHaveLength(0));
    await tail.close(); // closing twice is fine

    await append('chg-a', 'running');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual(['submitted']);

    tail.start();
    await append('chg-a', 'succeeded');
    // No replay of what was already dispatched: only the events after the last one seen.
    await eventually(() => expect(seen).toEqual(['submitted', 'running', 'succeeded']));
  });

  it('survives its connection being killed', async () => {
    const tail = newTail({ blockMs: 10_000 });
    const seen: string[] = [];
    tail.onEvent((event) => seen.push(event.type));
    tail.start();
    await append('chg-a', 'submitted');
    await eventually(() => expect(seen).toEqual(['submitted']));

    for (let kill = 0; kill < 2; kill++) {
      let id: string | undefined;
      await eventually(async () => {
        id = /\bid=(\d+)/.exec((await tailClients())[0] ?? '')?.[1];
        expect(id).toBeDefined();
      });
      await writer.client('KILL', 'ID', id!);
      await append('chg-a', kill === 0 ? 'running' : 'succeeded');
    }
    await eventually(() => expect(seen).toEqual(['submitted', 'running', 'succeeded']), 10_000);
    expect(await tailClients()).toHaveLength(1);
  });

  it('closes promptly while its connection is down and reconnecting', async () => {
    const tail = newTail({ blockMs: 10_000 });
    tail.start();
    let id: string | undefined;
    await eventually(async () => {
      id = /\bid=(\d+)/.exec((await tailClients())[0] ?? '')?.[1];
      expect(id).toBeDefined();
    });
    await writer.client('KILL', 'ID', id!);
    // A close that waited out the 30 s XREAD block would fail on the test's 20 s timeout.
    await tail.close();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await tailClients()).toHaveLength(0);
  });
});
