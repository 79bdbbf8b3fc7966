import { afterEach, describe, expect, it } from 'vitest';
import type { ChangeState } from '../../src/orchestrator/change.js';
import { TERMINAL_STATES } from '../../src/orchestrator/change.js';
import { batchRanges } from '../../src/rollouts/rate-control.js';
import type { RolloutInput } from '../../src/rollouts/rollout.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';
import { keyA, keyB } from '../support/sim-harness.js';

/**
 * A fleet-sized rollout on the simulator with faults: busy gateways, one locked account (of two,
 * owning the servers round-robin) and targets whose params the cloud refuses. Sized to stay well
 * under a minute on two cores.
 */

const FLEET = Number(process.env.ROLLOUT_FLEET_TARGETS ?? 1_000);
const ILLEGAL = 7;
/** Servers past the big rollout's, for the maxErrors one. */
const SMALL = 20;

let harness: RolloutHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

/** Every `step`-th index from `offset`, `count` of them. */
const spread = (count: number, step: number, offset: number) =>
  Array.from({ length: count }, (_, i) => offset + i * step);

/** Creates, waits for the plan, and approves (bob) a rollout submitted by alice. */
async function approved(h: RolloutHarness, input: Omit<RolloutInput, 'actor'>) {
  const created = await h.rollouts.create({ actor: 'alice', ...input });
  const planned = await h.waitForRollout(created.id, ['awaiting_approval'], 30_000);
  await h.rollouts.approve(created.id, 'bob');
  return planned;
}

/** The states of the rollout's changes, read in one pipeline (a thousand changes per sample). */
async function changeStates(h: RolloutHarness, id: string): Promise<Map<number, string>> {
  const entries = [...(await h.rollouts.changeIds(id)).entries()];
  const pipeline = h.orchestrator.redis.pipeline();
  for (const [, changeId] of entries) pipeline.hget(h.orchestrator.keys.change(changeId), 'state');
  const states = (await pipeline.exec()) ?? [];
  return new Map(entries.map(([index], i) => [index, (states[i]?.[1] as string | null) ?? 'unknown']));
}

describe('a fleet rollout with faults', () => {
  // A hang guard: under load (both files of a 2-core run busy) this takes about a minute.
  it(`plans, runs in batches and completes ${FLEET} targets`, { timeout: 180_000 }, async () => {
    harness = await startRolloutHarness({
      sim: {
        servers: FLEET + SMALL,
        accessKeys: [keyA, keyB],
        faults: { busyRate: 0.1, configuringMs: 20 },
      },
      // `default` is keyA (the simulator's primary key); keyB's account is the locked one.
      profiles: { bravo: keyB },
      planConcurrency: 32,
    });
    const h = harness;
    // The change worker of the harness runs 10 at a time: a fleet wants more.
    await h.startWorker({ concurrency: 50 });
    const servers = h.sim.servers.slice(0, FLEET);
    // Every server of keyB's account is locked: its targets are blocked, whatever their params.
    const locked = new Set(
      [...servers.keys()].filter((i) => servers[i]!.ownerAccessKeyId === keyB.accessKeyId),
    );
    expect(locked.size).toBe(Math.floor(FLEET / 2));
    // The illegal subnets are on the open account (on the locked one, the lock answers first).
    const open = [...servers.keys()].filter((i) => !locked.has(i));
    const illegal = new Set(spread(ILLEGAL, 65, 20).map((k) => open[k]!));
    h.sim.setFaults({ financialLocked: [`account:${keyB.accessKeyId}`] });

    const targets = servers.map((server, index) => {
      const target = {
        ipsecServerId: server.ipsecServerId,
        regionId: server.regionId,
        ...(locked.has(index) ? { profile: 'bravo' } : {}),
      };
      if (!illegal.has(index)) return target;
      // A LocalSubnet inside the server's own client pool: the cloud refuses it.
      const pool = h.sim.server(server.ipsecServerId)!.config.ClientIpPool;
      return { ...target, params: { LocalSubnet: pool.replace(/\/\d+$/, '/28') } };
    });
    const planned = await approved(h, {
      targets,
      params: { LocalSubnet: '172.31.250.0/24' },
      strategy: { batches: ['10%', '30%'] },
      maxErrors: 0,
    });

    // The plan: illegal params rejected, the locked account's servers blocked, the rest would change.
    const wouldChange = FLEET - locked.size - ILLEGAL;
    expect(planned.plan).toEqual({
      'would-change': wouldChange,
      'no-op': 0,
      rejected: ILLEGAL,
      blocked: locked.size,
      unknown: 0,
    });
    const plan = await h.rollouts.plan(planned.id);
    for (const entry of plan) {
      if (illegal.has(entry.index))
        expect(entry).toMatchObject({ kind: 'rejected', code: 'IllegalParam.LocalSubnet' });
      else if (locked.has(entry.index))
        expect(entry).toMatchObject({ kind: 'blocked', code: 'VpnGateway.FinancialLocked' });
      else expect(entry.kind).toBe('would-change');
    }

    // While it runs: the changes in flight always belong to one batch, never more than its size.
    const runnable = plan
      .filter((entry) => entry.kind === 'would-change')
      .map((entry) => entry.index)
      .sort((a, b) => a - b);
    const batchOf = new Map<number, number>();
    const ranges = batchRanges(['10%', '30%'], wouldChange);
    ranges.forEach(([start, end], batch) => {
      for (let position = start; position < end; position++) batchOf.set(runnable[position]!, batch);
    });
    const sizes = ranges.map(([start, end]) => end - start);
    // 10% and 30% round up, the 30% batch repeats, the last takes what is left: with the default
    // fleet, 493 would-change make [50, 148, 148, 147].
    const expected = [Math.ceil(wouldChange * 0.1)];
    for (let left = wouldChange - expected[0]!; left > 0; left -= expected.at(-1)!)
      expected.push(Math.min(Math.ceil(wouldChange * 0.3), left));
    expect(sizes).toEqual(expected);
    let samples = 0;
    let maxInFlight = 0;
    const batchesSeen = new Set<number>();
    for (;;) {
      const states = await changeStates(h, planned.id);
      const inFlight = [...states].filter(([, state]) => !TERMINAL_STATES.has(state as ChangeState));
      const batches = new Set(inFlight.map(([index]) => batchOf.get(index)));
      expect(batches.size).toBeLessThanOrEqual(1);
      for (const batch of batches) {
        batchesSeen.add(batch!);
        expect(inFlight.length).toBeLessThanOrEqual(sizes[batch!]!);
      }
      maxInFlight = Math.max(maxInFlight, inFlight.length);
      samples++;
      const { state } = await h.rollouts.get(planned.id);
      // Approved until its controller starts it; sampled until it ends.
      if (state !== 'approved' && state !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(samples).toBeGreaterThan(4);
    // Batches ran wide: more than one batch was seen in flight, and one of them with over 50 changes.
    expect(batchesSeen.size).toBeGreaterThan(1);
    expect(maxInFlight).toBeGreaterThan(50);

    const done = await h.rollouts.get(planned.id);
    expect(done.state).toBe('completed');
    expect(done.progress).toMatchObject({
      total: wouldChange,
      submitted: wouldChange,
      succeeded: wouldChange,
      errors: 0,
      inFlight: 0,
      percent: 100,
      currentBatch: 4,
      batchCount: 4,
    });
    for (const [index, server] of servers.entries()) {
      const config = h.sim.server(server.ipsecServerId)!.config;
      if (locked.has(index) || illegal.has(index)) expect(config.LocalSubnet).not.toBe('172.31.250.0/24');
      else expect(config.LocalSubnet).toBe('172.31.250.0/24');
    }
    // Only the runnable targets got a change, and the busy gateways were met and waited out.
    expect((await h.rollouts.changeIds(planned.id)).size).toBe(wouldChange);
    expect(h.sim.stats().byCode['VpnGateway.Configuring'] ?? 0).toBeGreaterThan(0);
  });

  // Covers its waits in a row: the plan (15 s), three drift changes (15 s each), the run (30 s).
  it('halts at the batch where errors exceed maxErrors, and starts nothing after it', {
    timeout: 120_000,
  }, async () => {
    harness = await startRolloutHarness({
      sim: { servers: SMALL, faults: { busyRate: 0.1, configuringMs: 20 } },
    });
    const h = harness;
    const targets = h.sim.servers.map((server) => ({
      ipsecServerId: server.ipsecServerId,
      regionId: server.regionId,
    }));
    const created = await h.rollouts.create({
      actor: 'alice',
      targets,
      params: { LocalSubnet: '192.168.9.0/24' },
      strategy: { batches: [5] },
      maxErrors: 2,
    });
    const planned = await h.waitForRollout(created.id, ['awaiting_approval']);
    expect(planned.plan?.['would-change']).toBe(SMALL);
    // Drift after the plan: three servers get a client pool the rollout's subnet now overlaps,
    // so their changes are rejected by the dry run before the apply (errors of batches 1, 2, 3).
    const drifted = [2, 6, 12];
    for (const index of drifted) {
      const { change } = await h.orchestrator.changes.submit({
        ...targets[index]!,
        params: { ClientIpPool: '192.168.9.0/24' },
        actor: 'carol',
      });
      expect(await h.waitFor(change.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');
    }
    await h.rollouts.approve(created.id, 'bob');
    const halted = await h.waitForRollout(created.id, ['halted', 'completed'], 30_000);
    expect(halted.state).toBe('halted');
    // Batch 3 (targets 10-14) brought the third error: it finished, and batch 4 never started.
    expect(halted.progress).toMatchObject({
      total: SMALL,
      submitted: 15,
      errors: 3,
      succeeded: 12,
      inFlight: 0,
    });
    expect(halted.reason).toMatch(/3 errors exceeded maxErrors 2/);
    const states = await changeStates(h, created.id);
    expect([...states.keys()].sort((a, b) => a - b)).toEqual(spread(15, 1, 0));
    for (const [index, state] of states)
      expect(state).toBe(drifted.includes(index) ? 'rejected' : 'succeeded');
    for (const target of targets.slice(15)) {
      expect(h.sim.server(target.ipsecServerId)!.config.LocalSubnet).toBe('192.168.0.0/24');
    }
  });
});
