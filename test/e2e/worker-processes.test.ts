/**
 * Acceptance tests of the change pipeline with real parts only: redis-server, the simulator over
 * real HTTP, and `ipsec-fleet worker` processes killed with real signals (DESIGN invariants 1–5
 * and 8). Polling here is the tests' own; the system under test is never reached into.
 */
import type { IncomingMessage } from 'node:http';
import fc from 'fast-check';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { compareStreamIds } from '../../src/audit/audit-log.js';
import { AUDIT_EVENT_TYPES, type AuditEvent } from '../../src/audit/event.js';
import type { ChangeView } from '../../src/orchestrator/change.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';
import { type PrivateRedis, startPrivateRedis } from '../../src/redis/private-server.js';
import { type SimulatorHandle, type SimulatorOptionsInput, startSimulator } from '../../src/sim/index.js';
import { PROCESS_START_TIMEOUT_MS } from '../support/cli.js';
import { startHoldProxy } from '../support/hold-proxy.js';
import { deleteKeys, FAST_POLICY, uniquePrefix } from '../support/orchestrator-harness.js';
import { startRedisCutter } from '../support/redis-hop.js';
import {
  killWorkerProcesses,
  startWorkerProcess,
  startWorkerProcesses,
  type WorkerProcess,
  type WorkerProcessOptions,
  waitUntil,
} from '../support/worker-process.js';

const TERMINAL = new Set(['succeeded', 'rejected', 'failed', 'cancelled', 'expired']);

/**
 * Hang guards, not speed bounds: how long changes may take to end, and each test's timeout, which
 * covers two process starts in a row (PROCESS_START_TIMEOUT_MS each) plus the waits of the test.
 */
const SETTLE_TIMEOUT_MS = 45_000;
const PROCESS_TEST_TIMEOUT_MS = 2 * PROCESS_START_TIMEOUT_MS + 2 * SETTLE_TIMEOUT_MS + 30_000;

interface Fleet {
  prefix: string;
  redisUrl: string;
  sim: SimulatorHandle;
  orchestrator: Orchestrator;
  /** What a worker process needs to join this fleet. */
  workerOptions: WorkerProcessOptions;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await killWorkerProcesses();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startFleet(
  options: { redisUrl?: string; sim?: SimulatorOptionsInput; policy?: PipelinePolicyInput } = {},
): Promise<Fleet> {
  const redisUrl = options.redisUrl ?? inject('redisUrl');
  const prefix = uniquePrefix();
  const sim = await startSimulator({ servers: 4, regions: ['cn-shanghai'], ...options.sim });
  cleanups.push(() => sim.close());
  const policy = { ...FAST_POLICY, ...options.policy };
  const orchestrator = Orchestrator.connect({ redisUrl, prefix, policy });
  cleanups.push(async () => {
    await orchestrator.close();
    // A Redis of the test's own goes away whole; on the shared one, the test removes its keys only.
    if (!options.redisUrl) await deleteKeys(redisUrl, prefix);
  });
  return {
    prefix,
    redisUrl,
    sim,
    orchestrator,
    workerOptions: {
      redisUrl,
      prefix,
      endpoint: sim.endpoint,
      accessKeyId: sim.accessKeyId,
      accessKeySecret: sim.accessKeySecret,
      policy,
      concurrency: 10,
    },
  };
}

async function submit(fleet: Fleet, server: number, params: Record<string, unknown>): Promise<ChangeView> {
  const target = fleet.sim.servers[server] as { ipsecServerId: string; regionId: string };
  const { change } = await fleet.orchestrator.changes.submit({
    ipsecServerId: target.ipsecServerId,
    regionId: target.regionId,
    params,
    actor: 'e2e',
  });
  return change;
}

/** Waits until every change is terminal; returns their final views. */
async function waitAllTerminal(
  fleet: Fleet,
  ids: readonly string[],
  timeoutMs = SETTLE_TIMEOUT_MS,
): Promise<ChangeView[]> {
  let last: ChangeView[] = [];
  return waitUntil(
    async () => {
      last = await Promise.all(ids.map((id) => fleet.orchestrator.changes.get(id)));
      return last.every((change) => TERMINAL.has(change.state)) ? last : undefined;
    },
    {
      timeoutMs,
      intervalMs: 50,
      describe: () =>
        `changes not terminal: ${last
          .filter((change) => !TERMINAL.has(change.state))
          .map((change) => `${change.id}=${change.state}/${change.step}/${change.lastCode ?? ''}`)
          .join(', ')}`,
    },
  );
}

async function stateOf(fleet: Fleet, id: string): Promise<{ state: string; step: string | undefined }> {
  const change = await fleet.orchestrator.changes.get(id);
  return { state: change.state, step: change.step };
}

/** What may follow each event in a change's timeline (DESIGN: a change and its life). */
const NEXT: Record<string, readonly string[]> = {
  submitted: ['running', 'backoff', 'cancelled', 'expired'],
  // A run can end at any step by its worker dying: then the next event is the taker's `running`.
  running: ['dry_run_passed', 'backoff', 'rejected', 'failed', 'running'],
  dry_run_passed: ['applied', 'backoff', 'failed', 'running'],
  applied: ['succeeded', 'failed', 'backoff', 'running'],
  backoff: ['running', 'backoff', 'cancelled', 'expired', 'failed'],
};

/**
 * A change's timeline is whole: it starts with `submitted`, follows the state machine with no
 * step skipped (no apply without a dry run passed in the same run, invariant 1), counts its runs
 * 1, 2, 3..., ends with exactly one terminal event, and is the same, event for event, as the
 * change's entries in the global audit stream (both are written by one script, invariant 5).
 */
function expectWholeTimeline(
  events: AuditEvent[],
  streamEvents: AuditEvent[] | undefined,
  terminal = 'succeeded',
) {
  const types = events.map((event) => event.type);
  const where = `timeline ${types.join(' > ')}`;
  expect(types[0], where).toBe('submitted');
  expect(types.at(-1), where).toBe(terminal);
  expect(
    types.filter((type) => TERMINAL.has(type)),
    where,
  ).toEqual([terminal]);
  for (const type of types) expect(AUDIT_EVENT_TYPES, where).toContain(type);
  for (let i = 1; i < events.length; i++) {
    const previous = events[i - 1] as AuditEvent;
    const event = events[i] as AuditEvent;
    expect(NEXT[previous.type] ?? [], `${where}: ${previous.type} then ${event.type}`).toContain(event.type);
    expect(compareStreamIds(previous.id, event.id), where).toBeLessThan(0);
  }
  let runs = 0;
  for (const event of events) {
    if (event.type === 'running') runs++;
    // Every event carries the run it belongs to: 0 before the first, then the run's number.
    expect(event.attempt, `${where}: ${event.type} ${event.id}`).toBe(runs);
  }
  if (terminal === 'succeeded') {
    const lastRun = types.lastIndexOf('running');
    expect(types.slice(lastRun), where).toEqual(expect.arrayContaining(['dry_run_passed', 'applied']));
    expect(types.slice(lastRun).indexOf('dry_run_passed'), where).toBeLessThan(
      types.slice(lastRun).indexOf('applied'),
    );
  }
  if (streamEvents) expect(streamEvents, where).toEqual(events);
}

async function globalStreamByChange(fleet: Fleet): Promise<Map<string, AuditEvent[]>> {
  const byChange = new Map<string, AuditEvent[]>();
  for (const event of await fleet.orchestrator.audit.query()) {
    const list = byChange.get(event.changeId) ?? [];
    list.push(event);
    byChange.set(event.changeId, list);
  }
  return byChange;
}

/**
 * Between a change's `running` and its next backoff, terminal event or the next `running` (a
 * takeover), its worker holds the server. No two changes of one server may hold it at once
 * (invariant 2), as seen from the audit stream's total order.
 */
function expectOneHolderPerServer(events: AuditEvent[]) {
  const holder = new Map<string, string>();
  for (const event of events) {
    const current = holder.get(event.ipsecServerId);
    if (event.type === 'running') {
      expect(
        current === undefined || current === event.changeId,
        `${event.changeId} ran while ${current} held`,
      ).toBe(true);
      holder.set(event.ipsecServerId, event.changeId);
    } else if (event.type === 'backoff' || TERMINAL.has(event.type)) {
      if (current === event.changeId) holder.delete(event.ipsecServerId);
    } else if (event.type !== 'submitted') {
      expect(current, `${event.type} of ${event.changeId} without holding its server`).toBe(event.changeId);
    }
  }
}

describe('worker processes', { timeout: PROCESS_TEST_TIMEOUT_MS }, () => {
  it('serialize random changes per server across 3 processes, applying each once in lane order', async () => {
    const servers = 4;
    const fleet = await startFleet({
      sim: {
        servers,
        seed: 7,
        faults: { configuringMs: 30, latencyMs: 5, jitterMs: 20, busyRate: 0.15 },
      },
      policy: { busy: { baseMs: 20, maxMs: 100, giveUpAfterMs: 30_000 } },
    });
    // The plan: 80 changes in a random order over the servers, each a random LocalSubnet of one or
    // two /24 blocks (never overlapping the servers' 10.x client pools), about half also renaming.
    const planArb = fc.array(
      fc.record({
        server: fc.integer({ min: 0, max: servers - 1 }),
        blocks: fc.uniqueArray(fc.tuple(fc.integer({ min: 16, max: 31 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 2,
          selector: ([b, c]) => `${b}.${c}`,
        }),
        rename: fc.option(fc.stringMatching(/^[a-z][a-z0-9_-]{1,30}$/), { freq: 2, nil: undefined }),
      }),
      { minLength: 80, maxLength: 80 },
    );
    const plan = fc.sample(planArb, { seed: 20_260_401, numRuns: 1 })[0];
    if (!plan) throw new Error('fast-check gave no plan');
    expect(new Set(plan.map((step) => step.server)).size).toBe(servers);
    expect(plan.some((step) => step.rename) && plan.some((step) => !step.rename)).toBe(true);

    const workers = await startWorkerProcesses(3, fleet.workerOptions);
    const submitted: ChangeView[] = [];
    for (const step of plan) {
      const params: Record<string, unknown> = {
        LocalSubnet: step.blocks.map(([b, c]) => `172.${b}.${c}.0/24`).join(','),
      };
      if (step.rename) params.IpsecServerName = step.rename;
      submitted.push(await submit(fleet, step.server, params));
    }
    // While they run, every server's lane lists its waiting changes in submission order (the
    // ones already done have left from the head).
    for (const target of fleet.sim.servers) {
      const lane = (await fleet.orchestrator.changes.laneOf(target.ipsecServerId)).map((entry) => entry.id);
      const order = submitted.filter((c) => c.ipsecServerId === target.ipsecServerId).map((c) => c.id);
      expect(lane).toEqual(order.slice(order.length - lane.length));
    }

    const done = await waitAllTerminal(
      fleet,
      submitted.map((change) => change.id),
    );
    expect(done.filter((change) => change.state !== 'succeeded')).toEqual([]);

    const stats = fleet.sim.stats();
    expect(stats.concurrentUpdateViolations).toBe(0);
    expect(stats.maxConcurrentUpdatesPerServer).toBe(1);
    expect(stats.applies).toBe(plan.length);
    expect(stats.byCode['VpnGateway.Configuring'] ?? 0).toBeGreaterThan(0);
    for (const target of fleet.sim.servers) {
      const mine = submitted.filter((change) => change.ipsecServerId === target.ipsecServerId);
      const server = fleet.sim.server(target.ipsecServerId);
      expect(server?.history.map((entry) => entry.clientToken)).toEqual(
        mine.map((change) => change.clientToken),
      );
      expect(server?.config.LocalSubnet).toBe(mine.at(-1)?.params.LocalSubnet);
      expect(await fleet.orchestrator.changes.laneOf(target.ipsecServerId)).toEqual([]);
    }

    const stream = await globalStreamByChange(fleet);
    for (const change of submitted) {
      expectWholeTimeline(await fleet.orchestrator.audit.forChange(change.id), stream.get(change.id));
    }
    const all = await fleet.orchestrator.audit.query();
    expectOneHolderPerServer(all);
    // The work was shared: changes ran in more than one process.
    const actors = new Set(all.filter((event) => event.type === 'running').map((event) => event.actor));
    expect(actors.size).toBeGreaterThan(1);
    for (const actor of actors) expect(workers.map((worker) => worker.workerId)).toContain(actor);
  });

  it("finish a change on another process after kill -9 lost its apply's response, applying it once", async () => {
    const fleet = await startFleet({ sim: { servers: 2, faults: { configuringMs: 300 } } });
    // Between the workers and the simulator, a proxy holds back the answer of the first real apply,
    // so the worker is killed after the cloud applied the change and before it heard so.
    const proxy = await startHoldProxy(fleet.sim.endpoint, isApply, SETTLE_TIMEOUT_MS);
    cleanups.push(() => proxy.close());
    fleet.workerOptions.endpoint = proxy.origin;
    const workers = await startWorkerProcesses(2, fleet.workerOptions);

    const change = await submit(fleet, 0, { LocalSubnet: '172.20.1.0/24' });
    const server = () => fleet.sim.server(change.ipsecServerId);
    await waitUntil(() => (server()?.history.length === 1 ? true : undefined), {
      timeoutMs: SETTLE_TIMEOUT_MS,
    });
    const firstRun = await fleet.orchestrator.audit.forChange(change.id);
    expect(firstRun.map((event) => event.type)).toEqual(['submitted', 'running', 'dry_run_passed']);
    const victim = workers.find((worker) => worker.workerId === firstRun[1]?.actor) as WorkerProcess;
    expect(await victim.signal('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    expect(proxy.held()).toBe(1);
    expect(await stateOf(fleet, change.id)).toEqual({ state: 'running', step: 'dry_run_passed' });

    const [done] = await waitAllTerminal(fleet, [change.id]);
    expect(done?.state).toBe('succeeded');
    const history = server()?.history ?? [];
    expect(history.map((entry) => entry.clientToken)).toEqual([change.clientToken]);
    const stats = fleet.sim.stats();
    expect(stats.applies).toBe(1);
    // The retry carried the same ClientToken: the cloud answered it with the first apply's answer.
    expect(stats.idempotentReplays).toBe(1);

    const events = await fleet.orchestrator.audit.forChange(change.id);
    expectWholeTimeline(events, (await globalStreamByChange(fleet)).get(change.id));
    const survivor = workers.find((worker) => worker !== victim) as WorkerProcess;
    const runs = events.filter((event) => event.type === 'running');
    expect(runs.map((event) => [event.attempt, event.actor])).toEqual([
      [1, victim.workerId],
      [2, survivor.workerId],
    ]);
    const applied = events.filter((event) => event.type === 'applied');
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({ actor: survivor.workerId, cloudRequestId: history[0]?.requestId });
    expect(events.at(-1)?.actor).toBe(survivor.workerId);
  });

  it('finish a change on a process started after kill -9 hit the one whose apply was in flight', async () => {
    const fleet = await startFleet({ sim: { servers: 2, faults: { configuringMs: 0, latencyMs: 1_000 } } });
    const victim = await startWorkerProcess(fleet.workerOptions);
    const change = await submit(fleet, 1, { LocalSubnet: '172.21.1.0/24', IpsecServerName: 'after-crash' });
    // The dry run passed and the apply has reached the simulator, which holds it for its latency.
    await waitUntil(
      async () =>
        (await stateOf(fleet, change.id)).step === 'dry_run_passed' &&
        fleet.sim.stats().byAction.UpdateIpsecServer === 2
          ? true
          : undefined,
      { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 5 },
    );
    expect(await victim.signal('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    fleet.sim.setFaults({ latencyMs: 0 });
    expect(fleet.sim.server(change.ipsecServerId)?.history).toEqual([]);

    const successor = await startWorkerProcess(fleet.workerOptions);
    const [done] = await waitAllTerminal(fleet, [change.id]);
    expect(done?.state).toBe('succeeded');
    expect(fleet.sim.server(change.ipsecServerId)?.history.map((entry) => entry.clientToken)).toEqual([
      change.clientToken,
    ]);
    expect(fleet.sim.stats().applies).toBe(1);
    const events = await fleet.orchestrator.audit.forChange(change.id);
    expectWholeTimeline(events, (await globalStreamByChange(fleet)).get(change.id));
    expect(
      events.filter((event) => event.type === 'running').map((event) => [event.attempt, event.actor]),
    ).toEqual([
      [1, victim.workerId],
      [2, successor.workerId],
    ]);
  });

  it('finish the change in flight on SIGTERM, take no new one, and exit 0', async () => {
    const fleet = await startFleet({ sim: { servers: 2, faults: { configuringMs: 0 } } });
    // The answer to the apply is held back until the worker has begun to stop: the change is in
    // flight for certain when SIGTERM arrives, and the one behind it cannot start before.
    const proxy = await startHoldProxy(fleet.sim.endpoint, isApply, SETTLE_TIMEOUT_MS);
    cleanups.push(() => proxy.close());
    const stopping = await startWorkerProcess({ ...fleet.workerOptions, endpoint: proxy.origin });
    const first = await submit(fleet, 0, { LocalSubnet: '172.22.1.0/24' });
    const behind = await submit(fleet, 0, { LocalSubnet: '172.22.2.0/24' });
    await waitUntil(() => (fleet.sim.server(first.ipsecServerId)?.history.length === 1 ? true : undefined), {
      timeoutMs: SETTLE_TIMEOUT_MS,
    });
    expect(await stateOf(fleet, first.id)).toEqual({ state: 'running', step: 'dry_run_passed' });
    stopping.child.kill('SIGTERM');
    // Once it has begun to stop (it says so), a change submitted for an idle server is not its own.
    await waitUntil(() => (stopping.output().includes('"msg":"stopping') ? true : undefined), {
      timeoutMs: SETTLE_TIMEOUT_MS,
    });
    const later = await submit(fleet, 1, { LocalSubnet: '172.22.3.0/24' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(stopping.child.exitCode).toBeNull();
    proxy.release();
    expect(await stopping.exited).toEqual({ code: 0, signal: null });
    expect(stopping.output()).toContain('"msg":"stopped"');

    // The change in flight was finished by the stopping worker; the others were left alone.
    expect(await stateOf(fleet, first.id)).toEqual({ state: 'succeeded', step: 'done' });
    const firstEvents = await fleet.orchestrator.audit.forChange(first.id);
    expect(firstEvents.at(-1)).toMatchObject({ type: 'succeeded', actor: stopping.workerId });
    for (const waiting of [behind, later]) {
      expect((await stateOf(fleet, waiting.id)).state).toBe('queued');
      expect((await fleet.orchestrator.audit.forChange(waiting.id)).map((event) => event.type)).toEqual([
        'submitted',
      ]);
    }

    const next = await startWorkerProcess(fleet.workerOptions);
    const done = await waitAllTerminal(fleet, [behind.id, later.id]);
    expect(done.map((change) => change.state)).toEqual(['succeeded', 'succeeded']);
    const stream = await globalStreamByChange(fleet);
    for (const change of [first, behind, later]) {
      const events = await fleet.orchestrator.audit.forChange(change.id);
      expectWholeTimeline(events, stream.get(change.id));
      if (change !== first) expect(events.at(-1)?.actor).toBe(next.workerId);
    }
    expect(fleet.sim.server(first.ipsecServerId)?.history.map((entry) => entry.clientToken)).toEqual([
      first.clientToken,
      behind.clientToken,
    ]);
    expect(fleet.sim.stats().applies).toBe(3);
  });

  it('wait past the stop deadline on SIGTERM for a run that outlasts it while Redis answers', async () => {
    // The verify loop outlasts the deadline (max(lease 2 s, call 1 s + 5 s) = 6 s): reads lag the
    // apply by 7 s, and the loop reads for up to 8 s.
    const fleet = await startFleet({
      sim: { servers: 1, faults: { configuringMs: 0, staleReadMs: 7_000 } },
      policy: { callTimeoutMs: 1_000, verifyAttempts: 40, verifyIntervalMs: 200 },
    });
    const stopping = await startWorkerProcess(fleet.workerOptions);
    const change = await submit(fleet, 0, { LocalSubnet: '172.22.9.0/24' });
    await waitUntil(() => (fleet.sim.stats().applies === 1 ? true : undefined), {
      timeoutMs: SETTLE_TIMEOUT_MS,
    });
    stopping.child.kill('SIGTERM');
    expect(await stopping.exited).toEqual({ code: 0, signal: null });
    expect(stopping.output()).toContain('still finishing the steps in flight');
    expect(await stateOf(fleet, change.id)).toEqual({ state: 'succeeded', step: 'done' });
  });

  it('exit within the stop deadline on SIGTERM while Redis is away, and at once on a second signal', async () => {
    const redis = await startPrivateRedis();
    cleanups.push(() => redis.stop());
    // The stop deadline: the lease (2 s here) or the call's deadline plus 5 s, whichever is longer.
    const fleet = await startFleet({
      redisUrl: redis.url,
      sim: { servers: 2, faults: { configuringMs: 0 } },
      policy: { callTimeoutMs: 1_000 },
    });
    fleet.orchestrator.redis.on('error', () => undefined);
    fleet.orchestrator.queue.queue.on('error', () => undefined);
    // Each worker (one change at a time) runs a change whose apply is held back, so that its stop
    // has a step to wait for: with nothing in flight, a worker may close without Redis and exit 0.
    const proxies = await Promise.all(
      [0, 1].map(() => startHoldProxy(fleet.sim.endpoint, isApply, SETTLE_TIMEOUT_MS)),
    );
    for (const proxy of proxies) cleanups.push(() => proxy.close());
    const [patient, impatient] = await Promise.all(
      proxies.map((proxy) =>
        startWorkerProcess({ ...fleet.workerOptions, endpoint: proxy.origin, concurrency: 1 }),
      ),
    );
    for (const server of [0, 1]) await submit(fleet, server, { LocalSubnet: `172.22.${20 + server}.0/24` });
    await waitUntil(() => (proxies.every((proxy) => proxy.held() === 1) ? true : undefined), {
      timeoutMs: SETTLE_TIMEOUT_MS,
    });
    await redis.kill();

    patient!.child.kill('SIGTERM');
    impatient!.child.kill('SIGTERM');
    await waitUntil(() => (impatient!.output().includes('"msg":"stopping') ? true : undefined), {
      timeoutMs: SETTLE_TIMEOUT_MS,
    });
    impatient!.child.kill('SIGTERM');
    // Which way each one went is in its log: the second signal cut the stop short, while the
    // first alone waited for the stop deadline (the test's timeout guards against a hang).
    expect(await impatient!.exited).toEqual({ code: 1, signal: null });
    expect(impatient!.output()).toContain('second signal: exiting now');
    expect(impatient!.output()).not.toContain('stop timed out');

    expect(await patient!.exited).toEqual({ code: 1, signal: null });
    expect(patient!.output()).toContain('stop timed out');
    expect(patient!.output()).not.toContain('second signal');
  });

  it('lose nothing when redis-server (AOF on) is killed -9 and restarted mid-run', async () => {
    const redis = await startPrivateRedis({ appendOnly: true });
    let restarted: PrivateRedis | undefined;
    cleanups.push(async () => {
      await restarted?.stop();
      await redis.stop();
    });
    const fleet = await startFleet({
      redisUrl: redis.url,
      sim: { servers: 4, seed: 11, faults: { configuringMs: 100, latencyMs: 120, jitterMs: 60 } },
    });
    // The test's own connection sees Redis go away too; it reconnects like the workers do.
    fleet.orchestrator.redis.on('error', () => undefined);
    fleet.orchestrator.queue.queue.on('error', () => undefined);
    const workers = await startWorkerProcesses(2, fleet.workerOptions);
    const changes: ChangeView[] = [];
    for (let round = 0; round < 3; round++) {
      for (let server = 0; server < 4; server++) {
        changes.push(await submit(fleet, server, { LocalSubnet: `172.23.${round * 4 + server}.0/24` }));
      }
    }
    // Kill Redis while some changes are done, one has its apply in flight, and others still wait.
    await waitUntil(
      async () => {
        const states = await Promise.all(changes.map((change) => stateOf(fleet, change.id)));
        const done = states.filter((state) => state.state === 'succeeded').length;
        const queued = states.filter((state) => state.state === 'queued').length;
        const applying = states.some((state) => state.step === 'dry_run_passed');
        return done >= 2 && queued >= 4 && applying ? true : undefined;
      },
      { timeoutMs: SETTLE_TIMEOUT_MS, intervalMs: 5 },
    );
    await redis.kill();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    restarted = await startPrivateRedis({ appendOnly: true, dir: redis.dir, port: redis.port });

    // The same worker processes carry on: no restart, so no lane repair at start hides a change
    // that the outage left without a job.
    const done = await waitAllTerminal(
      fleet,
      changes.map((change) => change.id),
    );
    expect(done.map((change) => change.state)).toEqual(changes.map(() => 'succeeded'));
    const listed = await fleet.orchestrator.changes.list({ limit: 100 });
    expect(listed.changes.map((change) => change.id).sort()).toEqual(
      changes.map((change) => change.id).sort(),
    );
    const stream = await globalStreamByChange(fleet);
    for (const change of changes) {
      expectWholeTimeline(await fleet.orchestrator.audit.forChange(change.id), stream.get(change.id));
    }
    for (const target of fleet.sim.servers) {
      const mine = changes.filter((change) => change.ipsecServerId === target.ipsecServerId);
      expect(fleet.sim.server(target.ipsecServerId)?.history.map((entry) => entry.clientToken)).toEqual(
        mine.map((change) => change.clientToken),
      );
      expect(await fleet.orchestrator.changes.laneOf(target.ipsecServerId)).toEqual([]);
    }
    const stats = fleet.sim.stats();
    expect(stats.applies).toBe(changes.length);
    expect(stats.concurrentUpdateViolations).toBe(0);
    for (const worker of workers) {
      expect(worker.child.exitCode).toBeNull();
      // The outage is in the log once per source (change and rollout workers) with its end, not
      // once per reconnect attempt of every connection.
      const lines = worker.output().split('\n');
      const down = lines.filter((line) => line.includes('Redis does not answer')).length;
      expect(down).toBeGreaterThan(0);
      expect(down).toBeLessThanOrEqual(2);
      expect(lines.filter((line) => line.includes('Redis answers again')).length).toBe(down);
      expect(worker.output()).not.toContain('[ioredis] Unhandled error event');
    }
  });
});

/**
 * Redis ran a command, and its answer was lost with the connection: ioredis sends the command
 * again once reconnected (autoResendUnfulfilledCommands), so every transition script must be
 * safe to run twice — no second lane entry, run or event, and the lane handed on all the same.
 */
describe('a Redis answer lost with its connection', { timeout: PROCESS_TEST_TIMEOUT_MS }, () => {
  const cases = [
    // The needle is a piece of the command's arguments that only that script carries.
    { script: 'submit', needle: '"type":"submitted"', side: 'producer' },
    { script: 'acquire', needle: 'throttledSince', side: 'worker' },
    { script: 'step', needle: '"type":"dry_run_passed"', side: 'worker' },
    { script: 'finish', needle: '"type":"succeeded"', side: 'worker' },
  ] as const;

  it.each(cases)('leaves $script run once, and the lane moving', async ({ needle, side }) => {
    const fleet = await startFleet({ sim: { servers: 2, faults: { configuringMs: 0 } } });
    const cutter = await startRedisCutter(new URL(fleet.redisUrl), needle);
    cleanups.push(() => cutter.close());
    let producer = fleet;
    if (side === 'producer') {
      const orchestrator = Orchestrator.connect({
        redisUrl: cutter.url,
        prefix: fleet.prefix,
        policy: FAST_POLICY,
      });
      orchestrator.redis.on('error', () => undefined);
      cleanups.push(() => orchestrator.close());
      producer = { ...fleet, orchestrator };
    }
    const worker = await startWorkerProcess({
      ...fleet.workerOptions,
      redisUrl: side === 'worker' ? cutter.url : fleet.redisUrl,
    });
    const first = await submit(producer, 0, { LocalSubnet: '172.24.1.0/24' });
    const second = await submit(producer, 0, { LocalSubnet: '172.24.2.0/24' });

    const done = await waitAllTerminal(fleet, [first.id, second.id]);
    expect(cutter.cuts()).toBe(1);
    expect(done.map((change) => change.state)).toEqual(['succeeded', 'succeeded']);
    const stream = await globalStreamByChange(fleet);
    for (const change of [first, second]) {
      const events = await fleet.orchestrator.audit.forChange(change.id);
      expectWholeTimeline(events, stream.get(change.id));
      expect(events.map((event) => event.type)).toEqual([
        'submitted',
        'running',
        'dry_run_passed',
        'applied',
        'succeeded',
      ]);
      expect(events.slice(1).every((event) => event.actor === worker.workerId)).toBe(true);
    }
    expect(await fleet.orchestrator.changes.laneOf(first.ipsecServerId)).toEqual([]);
    expect(fleet.sim.server(first.ipsecServerId)?.history.map((entry) => entry.clientToken)).toEqual([
      first.clientToken,
      second.clientToken,
    ]);
  });
});

/** A real apply (UpdateIpsecServer without DryRun), as the V3 client sends it. */
function isApply(req: IncomingMessage): boolean {
  return req.headers['x-acs-action'] === 'UpdateIpsecServer' && !/[?&]DryRun=true(&|$)/.test(req.url ?? '');
}
