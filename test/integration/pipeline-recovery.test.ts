import { randomBytes } from 'node:crypto';
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { CHANGE_QUEUE, type ChangeJobData } from '../../src/orchestrator/change-queue.js';
import { RUN_FIELDS } from '../../src/orchestrator/change-record.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { FAST_POLICY, type Harness, startHarness, submitTo } from '../support/orchestrator-harness.js';
import { startCommandHold, startRedisCutter } from '../support/redis-hop.js';
import { waitUntil } from '../support/worker-process.js';

/**
 * What a change does when something goes wrong around it rather than in the cloud: a worker that
 * cannot open its Psk, a circuit probe that is cancelled or backs off for another reason, a
 * transition whose answer is lost and sent again, a job delivered twice.
 */

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const subnet = (n: number) => ({ LocalSubnet: `172.17.${n}.0/24` });

const submit = submitTo;

const eventTypes = async (h: Harness, changeId: string) =>
  (await h.orchestrator.audit.forChange(changeId)).map((event) => event.type);

/** The acquire script as the pipeline calls it, for a given owner token. */
function acquire(h: Harness, change: { id: string; ipsecServerId: string }, owner: string) {
  const { keys, scripts, policy } = h.orchestrator;
  const template = JSON.stringify({ ts: Date.now(), actor: 'test', changeId: change.id });
  return scripts.run(
    'acquire',
    [keys.change(change.id), keys.lane(change.ipsecServerId), keys.lock(change.ipsecServerId), keys.audit],
    [change.id, owner, policy.leaseMs, Date.now(), template, keys.circuit(''), ...RUN_FIELDS],
  ) as Promise<[string, ...unknown[]]>;
}

describe('a change whose Psk this worker cannot open', () => {
  it('ends rejected without a cloud call and hands its lane to the next change', async () => {
    harness = await startHarness({ workers: 0, sim: { faults: { configuringMs: 0 } } });
    // Sealed under the harness key; the only worker holds another one.
    await harness.startWorker({ secretKey: randomBytes(32).toString('hex') });
    const sealed = await submit(harness, 0, { Psk: 'rotate-me-2026', PskEnabled: true });
    const next = await submit(harness, 0, subnet(1));

    expect(await harness.waitFor(sealed.id, ['rejected', 'failed', 'succeeded'])).toBe('rejected');
    const ended = await harness.orchestrator.changes.get(sealed.id);
    expect(ended.lastCode).toBe('SECRET_UNSEAL_FAILED');
    expect(ended.runs).toBe(1);
    expect(await eventTypes(harness, sealed.id)).toEqual(['submitted', 'running', 'rejected']);

    expect(await harness.waitFor(next.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');
    const history = harness.sim.server(sealed.ipsecServerId)!.history;
    expect(history.map((entry) => entry.clientToken)).toEqual([next.clientToken]);
  });
});

describe('the circuit of a financially locked account', () => {
  async function lockedProbeWithWaiters(h: Harness) {
    h.sim.setFaults({ financialLocked: [`account:${h.sim.accessKeyId}`] });
    const probe = await submit(h, 0, subnet(10));
    await h.waitFor(probe.id, ['backing_off']);
    const waiters = [];
    for (let n = 1; n < 3; n++) waiters.push(await submit(h, n, subnet(10 + n)));
    for (const waiter of waiters) await h.waitFor(waiter.id, ['backing_off']);
    for (const waiter of waiters)
      expect((await h.orchestrator.changes.get(waiter.id)).lastCode).toBe('CircuitOpen');
    return { probe, waiters };
  }

  it('closes when its probe is cancelled, and the changes that waited on it go on', async () => {
    harness = await startHarness({ sim: { servers: 3, faults: { configuringMs: 0 } } });
    const { probe, waiters } = await lockedProbeWithWaiters(harness);
    // Still locked: the probe keeps trying, and is cancelled between two of its short runs.
    for (;;) {
      const cancelled = await harness.orchestrator.changes.cancel(probe.id, 'bob').catch((error: unknown) => {
        if ((error as { code?: string }).code === 'CHANGE_STATE_CONFLICT') return undefined;
        throw error;
      });
      if (cancelled) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The circuit is the cancelled probe's no more: closed, or reopened by a woken waiter that met
    // the lock in turn and is the new probe.
    const { redis, keys } = harness.orchestrator;
    expect(await redis.hget(keys.circuit('default'), 'probe')).not.toBe(probe.id);

    harness.sim.setFaults({ financialLocked: [] });
    for (const waiter of waiters)
      expect(await harness.waitFor(waiter.id, ['succeeded', 'failed'], 5_000)).toBe('succeeded');
    expect(harness.sim.server(probe.ipsecServerId)!.history).toEqual([]);
  });

  it('follows its probe: a probe backing off for another reason moves the deadline to its next try', async () => {
    harness = await startHarness({
      sim: { servers: 3, faults: { configuringMs: 0 } },
      policy: { transient: { baseMs: 20, maxMs: 100, maxAttempts: 100 } },
    });
    const { probe, waiters } = await lockedProbeWithWaiters(harness);
    // Unlocked, but every call now fails: the probe backs off as transient, still the probe.
    harness.sim.setFaults({ financialLocked: [], failRate: 1 });
    const deadline = Date.now() + 10_000;
    const backedOffAsTransient = async () =>
      (await harness!.orchestrator.audit.forChange(probe.id)).some(
        (event) => (event.details as { class?: string } | undefined)?.class === 'transient',
      );
    while (!(await backedOffAsTransient())) {
      if (Date.now() > deadline) throw new Error('the probe never backed off as transient');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // Read together: the probe may back off again meanwhile, moving both on.
    const { redis, keys } = harness.orchestrator;
    const [[, circuit], [, nextAt]] = (await redis
      .multi()
      .hmget(keys.circuit('default'), 'until', 'probe')
      .hget(keys.change(probe.id), 'nextAt')
      .exec()) as [[null, [string, string]], [null, string]];
    expect(circuit).toEqual([nextAt, probe.id]);

    harness.sim.setFaults({ failRate: 0 });
    for (const change of [probe, ...waiters])
      expect(await harness.waitFor(change.id, ['succeeded', 'failed'])).toBe('succeeded');
  });
});

describe('a circuit waiter woken in a race', () => {
  /**
   * A waiter (server 0) and a probe (server 1): the waiter's job is taken by hand, as a worker
   * takes it, so the test decides when it is delayed; the probe holds its lease and the circuit.
   */
  async function waiterAndProbe(h: Harness) {
    const waiter = await submit(h, 0, subnet(30));
    const probe = await submit(h, 1, subnet(31));
    const { redis, keys, changes } = h.orchestrator;
    // A worker's blocking connection of its own, as BullMQ requires (no retry limit per request).
    const hand = new Worker<ChangeJobData>(CHANGE_QUEUE, null, {
      connection: new Redis(h.redisUrl, { maxRetriesPerRequest: null }),
      prefix: `{${h.prefix}}`,
    });
    const token = 'hand-token';
    const job = (await hand.getNextJob(token)) as Job<ChangeJobData>;
    expect(job.data.changeId).toBe(waiter.id);
    expect((await acquire(h, probe, 'w1/probe'))[0]).toBe('acquired');
    await redis.hset(keys.circuit('default'), 'until', String(Date.now() + 3_600_000), 'probe', probe.id);
    expect((await acquire(h, waiter, `w1/${token}`))[0]).toBe('circuit');
    const endProbe = () =>
      changes.finish(probe, {
        state: 'succeeded',
        allowedFrom: ['running'],
        owner: 'w1/probe',
        events: [JSON.stringify({ ts: Date.now(), type: 'succeeded', changeId: probe.id })],
        mayBeProbe: true,
      });
    return { waiter, probe, job, token, hand, endProbe };
  }

  it('goes on at once when the probe ended between its acquire and its delay', async () => {
    harness = await startHarness({ workers: 0 });
    const h = harness;
    const { job, token, hand, endProbe } = await waiterAndProbe(h);
    try {
      // The probe ends while the waiter's job is still active: the wake cannot promote it.
      expect((await endProbe())[0]).toBe('done');
      await h.orchestrator.changes.waitOnCircuit(job, token, 'default', Date.now() + 3_600_000);
      expect(await job.getState()).toBe('waiting');
    } finally {
      await hand.close();
      await hand.disconnect();
    }
  });

  it('is woken by a finish of the probe sent again after its answer was lost', async () => {
    harness = await startHarness({ workers: 0 });
    const h = harness;
    const { probe, job, token, hand, endProbe } = await waiterAndProbe(h);
    try {
      await h.orchestrator.changes.waitOnCircuit(job, token, 'default', Date.now() + 3_600_000);
      expect(await job.getState()).toBe('delayed');
      const { keys, scripts } = h.orchestrator;
      // The finish runs, and its answer (with the waiters to wake) is lost with the connection.
      const first = (await scripts.run('finish', keys.finishKeys(probe.id, probe.ipsecServerId, 'default'), [
        probe.id,
        'w1/probe',
        Date.now(),
        'succeeded',
        '{}',
        'running',
        '1',
        '{"type":"succeeded"}',
      ])) as string[];
      expect(first[0]).toBe('done');
      expect(await job.getState()).toBe('delayed');
      // ioredis sends it again: the change has ended, and the waiters are answered once more.
      expect((await endProbe())[0]).toBe('wrong_state');
      expect(await job.getState()).toBe('waiting');
    } finally {
      await hand.close();
      await hand.disconnect();
    }
  });
});

describe('transitions answered twice, jobs delivered twice', () => {
  it('a backoff sent again is the same backoff, and the job it delays cannot run before its time', async () => {
    harness = await startHarness({ workers: 0 });
    const change = await submit(harness, 0, subnet(20));
    const { keys, scripts } = harness.orchestrator;
    expect((await acquire(harness, change, 'w1/token-1'))[0]).toBe('acquired');

    const now = Date.now();
    const backoff = (owner: string) =>
      scripts.run(
        'backoff',
        [keys.change(change.id), keys.lock(change.ipsecServerId), keys.audit, keys.circuit('default')],
        [
          change.id,
          owner,
          now,
          60_000,
          'VpnGateway.Configuring',
          JSON.stringify({ busyCount: '1', busySince: String(now) }),
          '0',
          JSON.stringify({ ts: now, type: 'backoff', changeId: change.id, code: 'VpnGateway.Configuring' }),
        ],
      );
    expect(await backoff('w1/token-1')).toBe('ok');
    // The same call again, as ioredis resends a command whose answer was lost with the connection.
    expect(await backoff('w1/token-1')).toBe('ok');
    expect(await backoff('w2/token-9')).toBe('lost_lease');
    expect(await eventTypes(harness, change.id)).toEqual(['submitted', 'running', 'backoff']);
    const backingOff = await harness.orchestrator.changes.get(change.id);
    expect(backingOff).toMatchObject({ state: 'backing_off', nextAt: now + 60_000 });

    // Its job run again early (a retry whose delay was never set): it waits out the rest.
    const early = await acquire(harness, change, 'w1/token-2');
    expect(early[0]).toBe('early');
    expect(Number(early[1])).toBeGreaterThan(50_000);
    expect(Number(early[1])).toBeLessThanOrEqual(60_000);
    expect((await harness.orchestrator.changes.get(change.id)).state).toBe('backing_off');
    expect(await harness.orchestrator.redis.exists(keys.lock(change.ipsecServerId))).toBe(0);
  });

  it('a second delivery of a running change finds it locked, not turned into a circuit waiter', async () => {
    harness = await startHarness({ workers: 0 });
    const change = await submit(harness, 0, subnet(21));
    const { keys, redis } = harness.orchestrator;
    expect((await acquire(harness, change, 'w1/token-1'))[0]).toBe('acquired');
    // Another change of the account meets a financial lock while this one runs.
    await redis.hset(keys.circuit('default'), 'until', String(Date.now() + 60_000), 'probe', 'chg-other');

    const second = await acquire(harness, change, 'w2/token-7');
    expect(second[0]).toBe('locked');
    expect(Number(second[1])).toBeGreaterThan(0);
    const running = await harness.orchestrator.changes.get(change.id);
    expect(running).toMatchObject({ state: 'running', runs: 1 });
    expect(await redis.sismember(keys.circuitWaiters('default'), change.id)).toBe(0);
    expect(await eventTypes(harness, change.id)).toEqual(['submitted', 'running']);
  });

  it('a former waiter whose run died is redelivered behind a reopened circuit as a waiter again, cancellable', async () => {
    harness = await startHarness({ workers: 0, policy: { leaseMs: 1_000 } });
    const change = await submit(harness, 0, subnet(22));
    const { keys, redis } = harness.orchestrator;
    const openCircuit = (probe: string) =>
      redis.hset(keys.circuit('default'), 'until', String(Date.now() + 60_000), 'probe', probe);
    await openCircuit('chg-probe-1');
    expect((await acquire(harness, change, 'w1/token-1'))[0]).toBe('circuit');
    // The circuit closes and a worker takes the change; it dies there (kill -9: no further step).
    await redis.del(keys.circuit('default'), keys.circuitWaiters('default'));
    expect((await acquire(harness, change, 'w1/token-2'))[0]).toBe('acquired');
    // The account is locked again by another change, and the dead worker's lease runs out.
    await openCircuit('chg-probe-2');
    while (await redis.exists(keys.lock(change.ipsecServerId))) await new Promise((r) => setTimeout(r, 20));

    // The stalled job is delivered again: it waits on the circuit, and says so.
    expect((await acquire(harness, change, 'w2/token-3'))[0]).toBe('circuit');
    expect(await harness.orchestrator.changes.get(change.id)).toMatchObject({
      state: 'backing_off',
      lastCode: 'CircuitOpen',
    });
    expect(await eventTypes(harness, change.id)).toEqual(['submitted', 'backoff', 'running', 'backoff']);
    await expect(harness.orchestrator.changes.cancel(change.id, 'bob')).resolves.toMatchObject({
      state: 'cancelled',
    });
  });
});

describe('give-up deadlines', () => {
  it('do not count the time a change spent behind a financial lock', async () => {
    harness = await startHarness({
      sim: { servers: 2, faults: { configuringMs: 0, busyRate: 1 } },
      policy: {
        busy: { baseMs: 20, maxMs: 50, giveUpAfterMs: 600 },
        accountLocked: { baseMs: 100, maxMs: 200, giveUpAfterMs: 20_000 },
      },
    });
    const h = harness;
    const change = await submit(h, 0, subnet(30));
    const events = () => h.orchestrator.audit.forChange(change.id);
    const until = async (found: (list: Awaited<ReturnType<typeof events>>) => boolean) => {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const list = await events();
        if (found(list)) return list;
        if (Date.now() > deadline) throw new Error(`not seen in ${list.map((e) => e.code ?? e.type)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };
    const busySince = (await until((list) => list.some((e) => e.code === 'VpnGateway.Configuring'))).find(
      (e) => e.code === 'VpnGateway.Configuring',
    )!.ts;

    // Locked for longer than the busy deadline, then busy again at once.
    h.sim.setFaults({ busyRate: 0, financialLocked: [`account:${h.sim.accessKeyId}`] });
    await until((list) => list.some((e) => e.code === 'VpnGateway.FinancialLocked'));
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, busySince + 900 - Date.now())));
    h.sim.setFaults({ busyRate: 1, financialLocked: [] });
    const lockedAt = Date.now();
    const after = await until((list) =>
      list.some((e) => e.ts >= lockedAt && (e.code === 'VpnGateway.Configuring' || e.type === 'failed')),
    );
    // A new busy streak: backed off, not failed for a deadline that ran out behind the lock.
    expect(after.find((e) => e.ts >= lockedAt && e.code === 'VpnGateway.Configuring')?.type).toBe('backoff');

    h.sim.setFaults({ busyRate: 0 });
    expect(await h.waitFor(change.id, ['succeeded', 'failed'])).toBe('succeeded');
  });
});

describe('a command Redis refuses in the middle of a run', () => {
  it('does not end the change: the job is handed back and the change resumes once Redis takes it', async () => {
    harness = await startHarness({
      sim: { faults: { configuringMs: 0 } },
      policy: { apiQps: 1_000, leaseMs: 1_000 },
    });
    const { keys, redis } = harness.orchestrator;
    // The shared rate bucket of the first call the run makes, spoilt: its script gets WRONGTYPE.
    const bucket = keys.rate(harness.sim.accessKeyId, 'ListIpsecServers');
    await redis.rpush(bucket, 'not a bucket');
    const change = await submit(harness, 0, subnet(40));
    await harness.waitFor(change.id, ['running', 'rejected', 'failed']);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await harness.orchestrator.changes.get(change.id)).state).toBe('running');

    await redis.del(bucket);
    expect(await harness.waitFor(change.id, ['succeeded', 'rejected', 'failed'], 20_000)).toBe('succeeded');
    expect(harness.sim.server(change.ipsecServerId)!.history).toHaveLength(1);
  });
});

describe('a cancel racing a run', () => {
  it('names the run the change was in when it was cancelled, not the one its caller read before', async () => {
    harness = await startHarness({
      workers: 0,
      sim: { servers: 1, faults: { configuringMs: 0, busyRate: 1 } },
      policy: { busy: { baseMs: 60_000, maxMs: 60_000, giveUpAfterMs: 600_000 } },
    });
    const h = harness;
    const worker = await h.startWorker();
    await worker.worker.pause();
    const change = await submit(h, 0, subnet(50));
    // The cancel reads the change while it is queued; its transition reaches Redis only after a
    // worker has run the change and backed off.
    const hold = await startCommandHold(h.redisUrl, '"type":"cancelled"');
    const producer = Orchestrator.connect({ redisUrl: hold.url, prefix: h.prefix, policy: FAST_POLICY });
    try {
      const cancelled = producer.changes.cancel(change.id, 'bob');
      await waitUntil(() => (hold.holding() ? true : undefined), { describe: () => 'the cancel to be held' });
      worker.worker.resume();
      await h.waitFor(change.id, ['backing_off']);
      hold.release();
      expect((await cancelled).state).toBe('cancelled');

      const events = await h.orchestrator.audit.forChange(change.id);
      expect(events.map((event) => [event.type, event.attempt])).toEqual([
        ['submitted', 0],
        ['running', 1],
        ['backoff', 1],
        ['cancelled', 1],
      ]);
      expect(await h.orchestrator.audit.query({ ipsecServerId: change.ipsecServerId })).toEqual(events);
    } finally {
      await producer.close();
      await hold.close();
    }
  });
});

describe('a worker that has begun to stop', () => {
  it('hands back untouched a job BullMQ fetched for it as it began to close', async () => {
    harness = await startHarness({ workers: 0, sim: { servers: 1, faults: { configuringMs: 0 } } });
    const h = harness;
    // BullMQ fetches a job (moveToActive, which names the active list) once its blocking wait
    // says one is there, and does not look at the close again: the fetch is held until the
    // worker has begun to close, then let through.
    const hold = await startCommandHold(h.redisUrl, ':active', { armed: false });
    try {
      const worker = await h.startWorker({ redisUrl: hold.url });
      h.workers.splice(h.workers.indexOf(worker), 1);
      hold.arm();
      const change = await submit(h, 0, subnet(60));
      await waitUntil(() => (hold.holding() ? true : undefined), { describe: () => 'the fetch to be held' });
      const closed = worker.close();
      hold.release();
      await closed;

      expect((await h.orchestrator.changes.get(change.id)).state).toBe('queued');
      expect(await eventTypes(h, change.id)).toEqual(['submitted']);
      expect(h.sim.stats().requests).toBe(0);
      await h.startWorker();
      expect(await h.waitFor(change.id, ['succeeded', 'failed'])).toBe('succeeded');
      expect(h.sim.stats().applies).toBe(1);
    } finally {
      await hold.close();
    }
  });
});

describe('a cancel whose answer is lost with its connection', () => {
  it('is the same cancel when ioredis sends it again, not a conflict, and its job is discarded', async () => {
    harness = await startHarness({ workers: 0 });
    const h = harness;
    const change = await submit(h, 0, subnet(60));
    const cutter = await startRedisCutter(new URL(h.redisUrl), '"type":"cancelled"');
    const producer = Orchestrator.connect({ redisUrl: cutter.url, prefix: h.prefix, policy: FAST_POLICY });
    producer.redis.on('error', () => undefined);
    try {
      await expect(producer.changes.cancel(change.id, 'bob')).resolves.toMatchObject({ state: 'cancelled' });
      expect(cutter.cuts()).toBe(1);
      expect(await eventTypes(h, change.id)).toEqual(['submitted', 'cancelled']);
      expect(await h.orchestrator.queue.queue.getJob(change.id)).toBeUndefined();
    } finally {
      await producer.close();
      await cutter.close();
    }
  });

  it('is the same rejection of a change awaiting approval, and its expiry job is discarded', async () => {
    harness = await startHarness({ workers: 0, policy: { approval: { when: ['always'] } } });
    const h = harness;
    const change = await submit(h, 0, subnet(61));
    expect(change.state).toBe('awaiting_approval');
    const cutter = await startRedisCutter(new URL(h.redisUrl), '"type":"rejected"');
    const producer = Orchestrator.connect({ redisUrl: cutter.url, prefix: h.prefix, policy: FAST_POLICY });
    producer.redis.on('error', () => undefined);
    try {
      await expect(producer.changes.reject(change.id, 'carol', 'not this week')).resolves.toMatchObject({
        state: 'rejected',
      });
      expect(cutter.cuts()).toBe(1);
      expect(await eventTypes(h, change.id)).toEqual(['submitted', 'rejected']);
      expect(await h.orchestrator.queue.queue.getJob(`${change.id}-expire`)).toBeUndefined();
    } finally {
      await producer.close();
      await cutter.close();
    }
  });
});
