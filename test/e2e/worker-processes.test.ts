/**
 * Acceptance tests of the change pipeline with real parts only: redis-server, the simulator over
 * real HTTP, and `ipsec-fleet worker` processes killed with real signals (DESIGN invariants 1–5
 * and 8). Polling here is the tests' own; the system under test is never reached into.
 */
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { type AuditEvent, AUDIT_EVENT_TYPES } from '../../src/audit/event.js';
import { compareStreamIds } from '../../src/audit/audit-log.js';
import type { ChangeView } from '../../src/orchestrator/change.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';
import { type PrivateRedis, startPrivateRedis } from '../../src/redis/private-server.js';
import { type SimulatorHandle, type SimulatorOptionsInput, startSimulator } from '../../src/sim/index.js';
import { deleteKeys, FAST_POLICY, uniquePrefix } from '../support/orchestrator-harness.js';
import {
  killWorkerProcesses,
  startWorkerProcess,
  startWorkerProcesses,
  type WorkerProcess,
  type WorkerProcessOptions,
  waitUntil,
} from '../support/worker-process.js';

const TERMINAL = new Set(['succeeded', 'rejected', 'failed', 'cancelled', 'expired']);

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
  options: { redisUrl?: string; sim?: SimulatorOptionsInput; policy?: PipelinePolicyInput; endpoint?: string } = {},
): Promise<Fleet> {
  const redisUrl = options.redisUrl ?? inject('redisUrl');
  const prefix = uniquePrefix();
  const sim = await startSimulator({ servers: 4, regions: ['cn-shanghai'], ...options.sim });
  cleanups.push(() => sim.close());
  const policy = { ...FAST_POLICY, ...options.policy };
  const orchestrator = Orchestrator.connect({ redisUrl, prefix, policy });
  cleanups.push(async () => {
    await orchestrator.close();
    await deleteKeys(redisUrl, prefix);
  });
  return {
    prefix,
    redisUrl,
    sim,
    orchestrator,
    workerOptions: {
      redisUrl,
      prefix,
      endpoint: options.endpoint ?? sim.endpoint,
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
async function waitAllTerminal(fleet: Fleet, ids: readonly string[], timeoutMs = 20_000): Promise<ChangeView[]> {
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
function expectWholeTimeline(events: AuditEvent[], streamEvents: AuditEvent[] | undefined, terminal = 'succeeded') {
  const types = events.map((event) => event.type);
  const where = `timeline ${types.join(' > ')}`;
  expect(types[0], where).toBe('submitted');
  expect(types.at(-1), where).toBe(terminal);
  expect(types.filter((type) => TERMINAL.has(type)), where).toEqual([terminal]);
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
      expect(current === undefined || current === event.changeId, `${event.changeId} ran while ${current} held`).toBe(
        true,
      );
      holder.set(event.ipsecServerId, event.changeId);
    } else if (event.type === 'backoff' || TERMINAL.has(event.type)) {
      if (current === event.changeId) holder.delete(event.ipsecServerId);
    } else if (event.type !== 'submitted') {
      expect(current, `${event.type} of ${event.changeId} without holding its server`).toBe(event.changeId);
    }
  }
}

describe('worker processes', () => {
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
    // two /24 blocks (never overlapping the servers' 10.x client pools), a third also renaming.
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
      25_000,
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
      expect(server?.history.map((entry) => entry.clientToken)).toEqual(mine.map((change) => change.clientToken));
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
});
