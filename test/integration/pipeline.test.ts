import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { AliyunClient } from '../../src/aliyun/client.js';
import { compareStreamIds } from '../../src/audit/audit-log.js';
import { sendUpdateIpsecServer } from '../../src/ipsec/api.js';
import type { IkeConfig } from '../../src/ipsec/ike-config.js';
import type { ChangeView } from '../../src/orchestrator/change.js';
import { IdempotencyConflictError, SecretKeyMissingError } from '../../src/orchestrator/errors.js';
import { Orchestrator } from '../../src/orchestrator/orchestrator.js';
import { restoreParams } from '../../src/rollouts/rollouts.js';
import { simPskLabel } from '../../src/sim/psk-label.js';
import { forwardTo, startHttpServer } from '../support/http-server.js';
import {
  changesWithClock,
  deleteKeys,
  FAST_POLICY,
  type Harness,
  startHarness,
  submitTo,
} from '../support/orchestrator-harness.js';
import { sendV3 } from '../support/sim-harness.js';
import { waitUntil } from '../support/worker-process.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const subnet = (n: number) => ({ LocalSubnet: `172.16.${n}.0/24` });

const submit = submitTo;

async function eventTypes(h: Harness, changeId: string) {
  return (await h.orchestrator.audit.forChange(changeId)).map((event) => event.type);
}

describe('the change pipeline', () => {
  it('reads, dry-runs, applies with the change ClientToken, verifies, and audits each step', async () => {
    harness = await startHarness({ sim: { faults: { configuringMs: 0 } } });
    const change = await submit(harness, 0, subnet(1), { note: 'widen' });
    expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');

    const server = harness.sim.server(change.ipsecServerId)!;
    expect(server.history).toHaveLength(1);
    expect(server.history[0]).toMatchObject({ clientToken: change.clientToken });
    // What was applied is what the dry run checked.
    expect(server.dryRuns.map((entry) => entry.params)).toEqual([server.history[0]!.params]);
    expect(server.config).toMatchObject({ LocalSubnet: '172.16.1.0/24' });
    const stats = harness.sim.stats();
    expect(stats.dryRuns).toBe(1);
    expect(stats.applies).toBe(1);

    const events = await harness.orchestrator.audit.forChange(change.id);
    expect(events.map((event) => event.type)).toEqual([
      'submitted',
      'running',
      'dry_run_passed',
      'applied',
      'succeeded',
    ]);
    const [dryRun, applied] = [events[2]!, events[3]!];
    expect(dryRun.cloudRequestId).toMatch(/\w/);
    expect(applied.cloudRequestId).toBe(server.history[0]!.requestId);
    expect(dryRun.cloudRequestId).not.toBe(applied.cloudRequestId);
    for (const event of events) {
      expect(event).toMatchObject({
        changeId: change.id,
        ipsecServerId: change.ipsecServerId,
        regionId: change.regionId,
      });
      expect(event.actor).not.toBe('');
    }
    expect(events.map((event) => event.attempt)).toEqual([0, 1, 1, 1, 1]);

    const done = await harness.orchestrator.changes.get(change.id);
    expect(done.before).toMatchObject({ IpsecServerId: change.ipsecServerId });
    expect(done.before?.LocalSubnet).not.toBe('172.16.1.0/24');
    expect(done.after).toMatchObject({ LocalSubnet: '172.16.1.0/24' });
    expect(await harness.orchestrator.changes.laneOf(change.ipsecServerId)).toEqual([]);
  });

  it('runs changes on one server in lane order, backing off while the gateway configures', async () => {
    // Each apply leaves the gateway configuring for a minute of the simulator's time: the next
    // change surely meets it, and backs off. The test ends the window by moving that clock on,
    // once a follower has backed off, and stops opening new ones.
    const configuringMs = 60_000;
    let skewMs = 0;
    harness = await startHarness({
      sim: { faults: { configuringMs } },
      simRuntime: { clock: () => Date.now() + skewMs },
    });
    const h = harness;
    const changes: ChangeView[] = [];
    for (let n = 1; n <= 3; n++) changes.push(await submit(h, 0, subnet(n)));
    const lane = await h.orchestrator.changes.laneOf(changes[0]!.ipsecServerId);
    expect(lane.map((entry) => entry.id)).toEqual(changes.map((change) => change.id));
    const backoffs = async () =>
      (await Promise.all(changes.slice(1).map((change) => h.orchestrator.audit.forChange(change.id))))
        .flat()
        .filter((event) => event.type === 'backoff');
    await waitUntil(async () => ((await backoffs()).length > 0 ? true : undefined), {
      timeoutMs: 15_000,
      intervalMs: 20,
      describe: () => 'a follower to back off while the gateway configures',
    });
    h.sim.setFaults({ configuringMs: 0 });
    skewMs += configuringMs;
    for (const change of changes)
      expect(await h.waitFor(change.id, ['succeeded', 'failed'])).toBe('succeeded');

    const history = h.sim.server(changes[0]!.ipsecServerId)!.history;
    expect(history.map((entry) => entry.clientToken)).toEqual(changes.map((change) => change.clientToken));
    const stats = h.sim.stats();
    expect(stats.byCode['VpnGateway.Configuring']).toBeGreaterThan(0);
    expect(stats.concurrentUpdateViolations).toBe(0);
    const busy = await backoffs();
    expect(busy.length).toBeGreaterThan(0);
    expect(stats.byCode['VpnGateway.Configuring']).toBe(busy.length);
    // The busy rule's delay: at least the 50 ms floor, at most the policy's maxMs.
    for (const event of busy) {
      expect(event).toMatchObject({ code: 'VpnGateway.Configuring', details: { class: 'busy' } });
      expect(event.delayMs).toBeGreaterThanOrEqual(50);
      expect(event.delayMs).toBeLessThanOrEqual(FAST_POLICY.busy!.maxMs!);
    }
  });

  it('rejects a change the dry run refuses, without applying it', async () => {
    harness = await startHarness();
    const target = harness.sim.servers[0]!;
    const pool = harness.sim.server(target.ipsecServerId)!.config.ClientIpPool as string;
    const change = await submit(harness, 0, { LocalSubnet: pool });
    expect(await harness.waitFor(change.id, ['rejected', 'succeeded', 'failed'])).toBe('rejected');
    const done = await harness.orchestrator.changes.get(change.id);
    expect(done.lastCode).toBe('IllegalParam.LocalSubnet');
    expect(harness.sim.server(target.ipsecServerId)!.history).toEqual([]);
    expect(harness.sim.stats().applies).toBe(0);
    expect(await eventTypes(harness, change.id)).toEqual(['submitted', 'running', 'rejected']);
  });

  it('ends a change failed, with its before snapshot, when the cloud carried out its dry run: a rollback can put it back', async () => {
    harness = await startHarness({ workers: 0, sim: { servers: 1, faults: { configuringMs: 0 } } });
    const h = harness;
    const target = h.sim.servers[0]!;
    const credentials = { accessKeyId: h.sim.accessKeyId, accessKeySecret: h.sim.accessKeySecret };
    const subnetBefore = h.sim.server(target.ipsecServerId)!.config.LocalSubnet;
    // A cloud that does not honour DryRun: it applies the call and answers it as done.
    const forward = forwardTo(h.sim.endpoint);
    const hop = await startHttpServer(async (recorded, response, raw) => {
      if (recorded.query.DryRun !== 'true') return forward(recorded, response, raw);
      const { DryRun: _dryRun, ...params } = recorded.query;
      const applied = await sendV3(h.sim.endpoint, credentials, 'UpdateIpsecServer', params);
      response.writeHead(applied.status, { 'content-type': 'application/json' });
      response.end(applied.text);
    });
    try {
      await h.startWorker({ endpoint: hop.origin });
      const change = await submit(h, 0, subnet(7));
      expect(await h.waitFor(change.id, ['succeeded', 'failed', 'rejected'])).toBe('failed');
      expect(h.sim.server(target.ipsecServerId)!.config.LocalSubnet).toBe('172.16.7.0/24');

      const ended = await h.orchestrator.changes.get(change.id);
      expect(ended.lastCode).toBe('IPSEC_DRY_RUN_NOT_HONOURED');
      expect(await h.orchestrator.redis.hget(h.orchestrator.keys.change(change.id), 'mayHaveApplied')).toBe(
        '1',
      );
      expect(restoreParams(ended)).toEqual({ LocalSubnet: subnetBefore });
      const events = await h.orchestrator.audit.forChange(change.id);
      expect(events.map((event) => event.type)).toEqual(['submitted', 'running', 'failed']);
      expect(events[2]).toMatchObject({
        code: 'IPSEC_DRY_RUN_NOT_HONOURED',
        cloudRequestId: h.sim.server(target.ipsecServerId)!.history[0]!.requestId,
        details: { phase: 'dry-run' },
      });
    } finally {
      await hop.close();
    }
  });

  it('retries transient errors and lost responses with one effective apply per change', async () => {
    harness = await startHarness({
      sim: { servers: 8, seed: 42, faults: { failRate: 0.25, resetRate: 0.2, configuringMs: 50 } },
      policy: { transient: { baseMs: 10, maxMs: 50, maxAttempts: 30 } },
    });
    const changes = [];
    for (let n = 0; n < 8; n++) changes.push(await submit(harness, n, subnet(n + 10)));
    for (const change of changes) {
      expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected'], 30_000)).toBe('succeeded');
    }
    const stats = harness.sim.stats();
    expect(stats.applies).toBe(8);
    for (const change of changes) {
      const history = harness.sim.server(change.ipsecServerId)!.history;
      expect(history).toHaveLength(1);
      expect(history[0]!.clientToken).toBe(change.clientToken);
    }
    const faults = (stats.byCode.InternalError ?? 0) + (stats.byCode.ServiceUnavailable ?? 0);
    expect(faults).toBeGreaterThan(0);
  });

  it('takes a 200 it cannot read (a proxy page) as an unknown outcome: retried, applied once', async () => {
    harness = await startHarness({
      sim: { servers: 6, seed: 5, faults: { garbleRate: 0.4, configuringMs: 0 } },
      policy: { transient: { baseMs: 10, maxMs: 50, maxAttempts: 30 } },
    });
    const changes = [];
    for (let n = 0; n < 6; n++) changes.push(await submit(harness, n, subnet(n + 40)));
    for (const change of changes) {
      expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected'], 30_000)).toBe('succeeded');
    }
    const stats = harness.sim.stats();
    expect(stats.byCode.NotJsonAnswer).toBeGreaterThan(0);
    expect(stats.applies).toBe(6);
    for (const change of changes) {
      expect(harness.sim.server(change.ipsecServerId)!.history.map((entry) => entry.clientToken)).toEqual([
        change.clientToken,
      ]);
    }
    const codes = (
      await Promise.all(changes.map((change) => harness!.orchestrator.audit.forChange(change.id)))
    )
      .flat()
      .map((event) => event.code);
    expect(codes).toContain('HTTP.200.NotJson');
  });

  it('sends a config whole: keys a change does not name keep their values, whatever the cloud does with left-out keys', async () => {
    // This simulator puts left-out config keys back to their documented defaults.
    harness = await startHarness({
      sim: { servers: 1, faults: { configuringMs: 0, partialConfigs: 'defaults' } },
    });
    const ikev1 = {
      IkeVersion: 'ikev1',
      IkePfs: 'group5',
      IkeLifetime: 3600,
      LocalId: 'vpn.example.com',
      RemoteId: 'peer.example.com',
    };
    const first = await submit(harness, 0, { IkeConfig: ikev1 });
    expect(await harness.waitFor(first.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');
    const second = await submit(harness, 0, { IkeConfig: { IkeLifetime: 7200 } });
    expect(await harness.waitFor(second.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');

    const server = harness.sim.server(second.ipsecServerId)!;
    expect(server.config.IkeConfig).toMatchObject({ ...ikev1, IkeLifetime: 7200 });
    expect(server.history.at(-1)!.params.IkeConfig).toMatchObject({ IkeVersion: 'ikev1', IkeLifetime: 7200 });
    expect(server.dryRuns.at(-1)!.params).toEqual(server.history.at(-1)!.params);
    const dryRun = (await harness.orchestrator.audit.forChange(second.id)).find(
      (event) => event.type === 'dry_run_passed',
    );
    expect(dryRun?.details).toMatchObject({
      filledFromServer: expect.arrayContaining([
        'IkeConfig.IkeVersion',
        'IkeConfig.IkePfs',
        'IkeConfig.LocalId',
        'IkeConfig.RemoteId',
      ]),
    });
    // What the change asked for is kept as asked.
    expect((await harness.orchestrator.changes.get(second.id)).params).toEqual({
      IkeConfig: { IkeLifetime: 7200 },
    });
  });

  it('makes a config whole again from a fresh read when its apply was refused outright: an edit made meanwhile stays', async () => {
    harness = await startHarness({
      workers: 0,
      sim: { servers: 1, faults: { configuringMs: 300, partialConfigs: 'defaults' } },
    });
    const h = harness;
    const target = h.sim.servers[0]!;
    const console = new AliyunClient({
      endpoint: h.sim.endpoint,
      credentials: { accessKeyId: h.sim.accessKeyId, accessKeySecret: h.sim.accessKeySecret },
    });
    // Someone edits the gateway in the console after the change's dry run, just before its apply:
    // the gateway is busy with that edit, and the apply is refused (none of it taken).
    let edited = false;
    const forward = forwardTo(h.sim.endpoint);
    const hop = await startHttpServer(async (recorded, response, raw) => {
      if (!edited && recorded.query.IkeConfig !== undefined && recorded.query.DryRun === undefined) {
        edited = true;
        const current = h.sim.server(target.ipsecServerId)!.config.IkeConfig;
        await sendUpdateIpsecServer(console, {
          RegionId: target.regionId,
          IpsecServerId: target.ipsecServerId,
          IkeConfig: { ...(current as IkeConfig), RemoteId: 'console.example.com' },
        });
      }
      forward(recorded, response, raw);
    });
    try {
      await h.startWorker({ endpoint: hop.origin });
      const change = await submit(h, 0, { IkeConfig: { IkeLifetime: 7200 } });
      expect(await h.waitFor(change.id, ['succeeded', 'failed', 'rejected'])).toBe('succeeded');
      expect(edited).toBe(true);
      const codes = (await h.orchestrator.audit.forChange(change.id)).map((event) => event.code);
      expect(codes).toContain('VpnGateway.Configuring');
      const server = h.sim.server(target.ipsecServerId)!;
      expect(server.config.IkeConfig).toMatchObject({ IkeLifetime: 7200, RemoteId: 'console.example.com' });
      // The apply that went through is what its own dry run, after the fresh read, checked.
      expect(server.dryRuns.at(-1)!.params).toEqual(server.history.at(-1)!.params);
      expect((await h.orchestrator.changes.get(change.id)).before?.IkeConfig).toMatchObject({
        RemoteId: 'console.example.com',
      });
    } finally {
      await hop.close();
      await console.close();
    }
  });

  it('retries an apply of a config made whole with the very parameters it first sent (invariant 4)', async () => {
    // Lost answers after applies: each retry must be a replay, which the simulator grants only to
    // parameters identical, as sent, to the first call's.
    harness = await startHarness({
      sim: { servers: 6, seed: 21, faults: { configuringMs: 0, resetRate: 0.6 } },
      policy: { transient: { baseMs: 5, maxMs: 20, maxAttempts: 60 } },
    });
    let count = 0;
    for (let round = 0; round < 5 && !harness.sim.stats().idempotentReplays; round++) {
      const batch = [];
      for (let n = 0; n < 6; n++)
        batch.push(await submit(harness, n, { IkeConfig: { IkeLifetime: 3600 + count++ } }));
      for (const change of batch) {
        expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected'], 30_000)).toBe(
          'succeeded',
        );
      }
    }
    const stats = harness.sim.stats();
    expect(stats.idempotentReplays).toBeGreaterThan(0);
    expect(stats.applies).toBe(count);
    expect(stats.byCode.IdempotentParameterMismatch ?? 0).toBe(0);
  });

  it('waits out LastTokenProcessing on the retry of an apply whose answer was lost, applying once', async () => {
    // The cloud takes a minute to process a token: a retry of an apply whose answer was lost
    // surely meets LastTokenProcessing, however slowly it comes. Once one did, the test lets
    // the processing end (tokenProcessingMs 0), so the retries go through.
    harness = await startHarness({
      sim: { servers: 6, seed: 9, faults: { configuringMs: 0, resetRate: 0.5, tokenProcessingMs: 60_000 } },
      policy: { transient: { baseMs: 5, maxMs: 20, maxAttempts: 40 } },
    });
    const h = harness;
    // Which apply loses its answer is up to the dice: rounds of six until one did, each change
    // on its own server.
    const changes: ChangeView[] = [];
    for (let round = 0; round < 5 && !h.sim.stats().byCode.LastTokenProcessing; round++) {
      const batch: ChangeView[] = [];
      for (let n = 0; n < 6; n++) batch.push(await submit(h, n, subnet(60 + round * 6 + n)));
      let last: ChangeView[] = [];
      await waitUntil(
        async () => {
          if (h.sim.stats().byCode.LastTokenProcessing) h.sim.setFaults({ tokenProcessingMs: 0 });
          last = await Promise.all(batch.map((change) => h.orchestrator.changes.get(change.id)));
          return last.every((change) => ['succeeded', 'failed', 'rejected'].includes(change.state))
            ? true
            : undefined;
        },
        {
          timeoutMs: 45_000,
          intervalMs: 20,
          describe: () =>
            last.map((change) => `${change.id}=${change.state}/${change.lastCode ?? ''}`).join(', '),
        },
      );
      expect(last.map((change) => change.state)).toEqual(batch.map(() => 'succeeded'));
      changes.push(...batch);
    }
    const stats = harness.sim.stats();
    expect(stats.byCode.LastTokenProcessing).toBeGreaterThan(0);
    expect(stats.applies).toBe(changes.length);
    const waited = (
      await Promise.all(changes.map((change) => harness!.orchestrator.audit.forChange(change.id)))
    )
      .flat()
      .filter((event) => event.code === 'LastTokenProcessing');
    // Busy, not transient: it waits like VpnGateway.Configuring and spends no transient attempt.
    expect(waited.length).toBeGreaterThan(0);
    for (const event of waited) expect(event).toMatchObject({ type: 'backoff', details: { class: 'busy' } });
  });

  it('does not spend attempts on throttling', { timeout: 90_000 }, async () => {
    harness = await startHarness({
      sim: { servers: 6, faults: { qps: 3, configuringMs: 0 } },
      // One transient attempt: a call that merely stalls on a loaded machine must not end the
      // change failed, so the call deadline is a hang guard here (the harness's is 2 s).
      policy: {
        transient: { baseMs: 10, maxMs: 20, maxAttempts: 1 },
        throttled: { baseMs: 50, maxMs: 300 },
        callTimeoutMs: 30_000,
      },
    });
    const changes = [];
    for (let n = 0; n < 6; n++) changes.push(await submit(harness, n, subnet(n + 20)));
    for (const change of changes) {
      expect(await harness.waitFor(change.id, ['succeeded', 'failed'], 30_000)).toBe('succeeded');
    }
    expect(harness.sim.stats().byCode['Throttling.User']).toBeGreaterThan(1);
  });

  it('waits after a throttled call as long as the cloud asked, not its own backoff', {
    timeout: 90_000,
  }, async () => {
    harness = await startHarness({
      sim: { servers: 8, faults: { qps: 4, configuringMs: 0 } },
      policy: {
        transient: { baseMs: 10, maxMs: 20, maxAttempts: 1 },
        // Its own backoff would draw up to a minute per throttled call: the simulator asks for
        // well under a second (x-acs-retry-after, until its bucket has a token again).
        throttled: { baseMs: 60_000, maxMs: 60_000 },
        callTimeoutMs: 30_000,
      },
    });
    const changes = [];
    for (let n = 0; n < 8; n++) changes.push(await submit(harness, n, subnet(n + 40)));
    const deadline = Date.now() + 25_000;
    for (const change of changes) {
      const left = Math.max(deadline - Date.now(), 1);
      expect(await harness.waitFor(change.id, ['succeeded', 'failed'], left)).toBe('succeeded');
    }
    // Enough throttled calls that drawing under 25 s for all of them by chance is out of reach.
    expect(harness.sim.stats().byCode['Throttling.User']).toBeGreaterThanOrEqual(6);
  });

  it('holds an account behind a circuit while it is financially locked, then lets it go', async () => {
    harness = await startHarness({ sim: { servers: 4, faults: { configuringMs: 0 } } });
    harness.sim.setFaults({ financialLocked: [`account:${harness.sim.accessKeyId}`] });
    const probe = await submit(harness, 0, subnet(30));
    await harness.waitFor(probe.id, ['backing_off']);
    expect((await harness.orchestrator.changes.get(probe.id)).lastCode).toBe('VpnGateway.FinancialLocked');

    const waiters = [];
    for (let n = 1; n < 4; n++) waiters.push(await submit(harness, n, subnet(30 + n)));
    for (const waiter of waiters) await harness.waitFor(waiter.id, ['backing_off']);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const waiter of waiters) {
      expect((await harness.orchestrator.changes.get(waiter.id)).lastCode).toBe('CircuitOpen');
      // Waiting behind the circuit costs the cloud nothing: not one call for these servers.
      expect(await eventTypes(harness, waiter.id)).toEqual(['submitted', 'backoff']);
    }
    // The probe keeps retrying while we look: its answered calls lie between two reads of its audit.
    const lockedCalls = async () =>
      (await harness!.orchestrator.audit.forChange(probe.id)).filter(
        (event) => event.code === 'VpnGateway.FinancialLocked',
      ).length;
    const recordedBefore = await lockedCalls();
    const answered = harness.sim.stats().byCode['VpnGateway.FinancialLocked'] ?? 0;
    const recordedAfter = await lockedCalls();
    expect(answered).toBeGreaterThanOrEqual(recordedBefore);
    expect(answered).toBeLessThanOrEqual(recordedAfter + 1);

    harness.sim.setFaults({ financialLocked: [] });
    for (const change of [probe, ...waiters])
      expect(await harness.waitFor(change.id, ['succeeded', 'failed'])).toBe('succeeded');
  });

  it('cancels a queued change, which then never runs, and refuses to cancel a running one', async () => {
    harness = await startHarness({ sim: { faults: { latencyMs: 300, configuringMs: 0 } } });
    const first = await submit(harness, 0, subnet(40));
    const second = await submit(harness, 0, subnet(41));
    const third = await submit(harness, 0, subnet(42));
    await harness.waitFor(first.id, ['running']);
    const cancelled = await harness.orchestrator.changes.cancel(second.id, 'bob');
    expect(cancelled.state).toBe('cancelled');
    await expect(harness.orchestrator.changes.cancel(first.id, 'bob')).rejects.toMatchObject({
      code: 'CHANGE_STATE_CONFLICT',
    });
    expect(await harness.waitFor(first.id, ['succeeded'])).toBe('succeeded');
    expect(await harness.waitFor(third.id, ['succeeded'])).toBe('succeeded');
    const history = harness.sim.server(first.ipsecServerId)!.history;
    expect(history.map((entry) => entry.clientToken)).toEqual([first.clientToken, third.clientToken]);
    const events = await harness.orchestrator.audit.forChange(second.id);
    expect(events.map((event) => event.type)).toEqual(['submitted', 'cancelled']);
    expect(events[1]!.actor).toBe('bob');
  });
});

describe('cancelling a change whose apply went out', () => {
  /** An apply slower than the call deadline: the worker gives up on the answer, the cloud applies. */
  const lostApply = {
    sim: { servers: 2, faults: { configuringMs: 0, applyLatencyMs: 1_500 } },
    policy: { callTimeoutMs: 1_000, transient: { baseMs: 2_500, maxMs: 2_500, maxAttempts: 5 } },
  };
  const tokensApplied = (h: Harness, change: { ipsecServerId: string }) =>
    h.sim.server(change.ipsecServerId)!.history.map((entry) => entry.clientToken);
  const lastEvent = async (h: Harness, changeId: string) =>
    (await h.orchestrator.audit.forChange(changeId)).at(-1)!;

  it('is refused while it backs off after an apply whose answer was lost; it is retried and verified', async () => {
    harness = await startHarness(lostApply);
    const change = await submit(harness, 0, subnet(150));
    await harness.waitFor(change.id, ['backing_off']);
    expect(await lastEvent(harness, change.id)).toMatchObject({
      type: 'backoff',
      details: { phase: 'apply' },
    });
    await expect(harness.orchestrator.changes.cancel(change.id, 'bob')).rejects.toMatchObject({
      code: 'CHANGE_STATE_CONFLICT',
      message: expect.stringMatching(/may have taken effect/),
    });

    harness.sim.setFaults({ applyLatencyMs: 0 });
    expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected', 'cancelled'])).toBe(
      'succeeded',
    );
    expect(tokensApplied(harness, change)).toEqual([change.clientToken]);
  });

  it('ends failed, not rejected, when a retry after such an apply is refused at its dry run', async () => {
    harness = await startHarness(lostApply);
    const change = await submit(harness, 0, subnet(151));
    await harness.waitFor(change.id, ['backing_off']);
    // Meanwhile someone edits the server in the console: its client pool now overlaps the change's
    // subnet, so the retry's dry run is refused. Whether the lost apply took effect, nobody knows.
    harness.sim.setFaults({ applyLatencyMs: 0 });
    const console = new AliyunClient({
      credentials: { accessKeyId: harness.sim.accessKeyId, accessKeySecret: harness.sim.accessKeySecret },
      endpoint: harness.sim.endpoint,
      timeoutMs: 5_000,
    });
    try {
      await sendUpdateIpsecServer(console, {
        RegionId: change.regionId,
        IpsecServerId: change.ipsecServerId,
        LocalSubnet: '10.99.0.0/24',
        ClientIpPool: '172.16.151.0/24',
      });
    } finally {
      await console.close();
    }
    expect(await harness.waitFor(change.id, ['succeeded', 'failed', 'rejected', 'cancelled'])).toBe('failed');
    expect(await lastEvent(harness, change.id)).toMatchObject({
      type: 'failed',
      code: 'IllegalParam.LocalSubnet',
      details: { phase: 'dry-run' },
    });
  });

  it('is allowed again when the gateway refused the apply outright: none went out', async () => {
    harness = await startHarness({
      sim: { servers: 6, faults: { configuringMs: 0, busyRate: 0.5 } },
      policy: { busy: { baseMs: 10_000, maxMs: 10_000, giveUpAfterMs: 60_000 } },
    });
    // Which call the gateway calls busy is up to the dice: the dry run (about half the changes),
    // or the apply after a dry run that passed (a quarter); rounds of six until an apply was.
    let refusedApplies = 0;
    for (let round = 0; round < 8 && refusedApplies === 0; round++) {
      const batch = [];
      for (let n = 0; n < 6; n++) batch.push(await submit(harness, n, subnet(160 + round * 6 + n)));
      for (const change of batch) {
        if ((await harness.waitFor(change.id, ['backing_off', 'succeeded'])) === 'succeeded') continue;
        const backoff = await lastEvent(harness, change.id);
        expect(backoff).toMatchObject({ type: 'backoff', code: 'VpnGateway.Configuring' });
        if ((backoff.details as { phase: string }).phase === 'apply') refusedApplies++;
        expect((await harness.orchestrator.changes.cancel(change.id, 'bob')).state).toBe('cancelled');
      }
    }
    expect(refusedApplies).toBeGreaterThan(0);
  });
});

describe('giving up', () => {
  it('ends a change as failed with the last code once the busy deadline passes', async () => {
    harness = await startHarness({
      sim: { faults: { busyRate: 1 } },
      policy: { busy: { baseMs: 20, maxMs: 50, giveUpAfterMs: 300 } },
    });
    const change = await submit(harness, 0, subnet(80));
    expect(await harness.waitFor(change.id, ['failed', 'succeeded'])).toBe('failed');
    const done = await harness.orchestrator.changes.get(change.id);
    expect(done.lastCode).toBe('VpnGateway.Configuring');
    const events = await harness.orchestrator.audit.forChange(change.id);
    expect(events.at(-1)).toMatchObject({
      type: 'failed',
      code: 'VpnGateway.Configuring',
      details: { gaveUp: true },
    });
    expect(events.filter((event) => event.type === 'backoff').length).toBeGreaterThan(1);
    expect(harness.sim.stats().applies).toBe(0);
  });

  it('ends a change as failed after the transient policy runs out of attempts', async () => {
    harness = await startHarness({
      sim: { faults: { failRate: 1 } },
      policy: { transient: { baseMs: 5, maxMs: 10, maxAttempts: 3 } },
    });
    const change = await submit(harness, 0, subnet(81));
    expect(await harness.waitFor(change.id, ['failed', 'succeeded'])).toBe('failed');
    const events = await harness.orchestrator.audit.forChange(change.id);
    expect(events.filter((event) => event.type === 'backoff')).toHaveLength(2);
    expect(['InternalError', 'ServiceUnavailable']).toContain(events.at(-1)?.code);
  });
});

describe('submitting changes', () => {
  it('returns the same change for the same idempotency key and body, and refuses another body', async () => {
    harness = await startHarness({ workers: 0 });
    const target = harness.sim.servers[0]!;
    const input = {
      ipsecServerId: target.ipsecServerId,
      regionId: target.regionId,
      params: subnet(50),
      actor: 'ci',
      idempotencyKey: 'deploy-123',
    };
    const first = await harness.orchestrator.changes.submit(input);
    const again = await harness.orchestrator.changes.submit(input);
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ created: false, change: { id: first.change.id } });
    await expect(
      harness.orchestrator.changes.submit({ ...input, params: subnet(51) }),
    ).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect(await harness.orchestrator.changes.laneOf(target.ipsecServerId)).toHaveLength(1);
  });

  it('rejects bad input naming the field, and writes nothing', async () => {
    harness = await startHarness({ workers: 0 });
    const redis = new Redis(harness.redisUrl);
    // BullMQ writes its queue's meta key on its own schedule; everything else must stay untouched.
    const keysNow = async () =>
      (await redis.keys(`{${harness!.prefix}}*`)).filter((key) => !key.endsWith(':meta')).sort();
    const before = await keysNow();
    const target = harness.sim.servers[0]!;
    await expect(
      harness.orchestrator.changes.submit({
        ipsecServerId: target.ipsecServerId,
        regionId: target.regionId,
        params: { LocalSubnet: '10.0.0.1/24' },
        actor: 'ci',
      }),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining('params.LocalSubnet'),
    });
    await expect(
      harness.orchestrator.changes.submit({
        ipsecServerId: target.ipsecServerId,
        regionId: target.regionId,
        params: {},
        actor: 'ci',
      }),
    ).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining('must set at least one'),
    });
    expect(await keysNow()).toEqual(before);
    expect(await harness.orchestrator.queue.queue.count()).toBe(0);
    redis.disconnect();
  });

  it('seals a Psk at rest: Redis, the audit and the change view only ever hold its fingerprint', async () => {
    harness = await startHarness({ sim: { faults: { configuringMs: 0 } } });
    const psk = 'Sup3r-Secret-Psk-Value';
    const change = await submit(harness, 0, { Psk: psk, PskEnabled: true });
    expect(change.params.Psk).toBe(harness.orchestrator.secrets.fingerprint(psk));
    expect(await harness.waitFor(change.id, ['succeeded', 'failed'])).toBe('succeeded');
    expect(harness.sim.server(change.ipsecServerId)!.config.Psk).toBe(simPskLabel(psk));
    // And on the paths that end otherwise: refused by the dry run, with the Psk in the request.
    const pool = harness.sim.server(harness.sim.servers[1]!.ipsecServerId)!.config.ClientIpPool;
    const refused = await submit(harness, 1, { Psk: psk, PskEnabled: true, LocalSubnet: pool });
    expect(await harness.waitFor(refused.id, ['rejected', 'failed', 'succeeded'])).toBe('rejected');

    const redis = new Redis(harness.redisUrl);
    const keys = await redis.keys(`{${harness.prefix}}*`);
    const types = new Set<string>();
    for (const key of keys) {
      const type = await redis.type(key);
      types.add(type);
      const dump =
        type === 'hash'
          ? JSON.stringify(await redis.hgetall(key))
          : type === 'list'
            ? JSON.stringify(await redis.lrange(key, 0, -1))
            : type === 'stream'
              ? JSON.stringify(await redis.xrange(key, '-', '+'))
              : type === 'set'
                ? JSON.stringify(await redis.smembers(key))
                : type === 'zset'
                  ? JSON.stringify(await redis.zrange(key, '0', '-1', 'WITHSCORES'))
                  : type === 'string'
                    ? String(await redis.get(key))
                    : `unread type ${type}`;
      expect(dump, key).not.toContain(psk);
      expect(dump, key).not.toMatch(/^unread type/);
    }
    expect([...types].sort()).toEqual(expect.arrayContaining(['hash', 'stream', 'zset']));
    redis.disconnect();

    const noKey = Orchestrator.connect({ redisUrl: harness.redisUrl, prefix: harness.prefix });
    await expect(
      noKey.changes.submit({
        ipsecServerId: change.ipsecServerId,
        regionId: change.regionId,
        params: { Psk: psk },
        actor: 'x',
      }),
    ).rejects.toBeInstanceOf(SecretKeyMissingError);
    await noKey.close();
  });

  it("keeps an idempotency key's body hash keyed: with the Psk in it, no test of a guessed Psk without the secret key", async () => {
    harness = await startHarness({ workers: 0 });
    const target = harness.sim.servers[0]!;
    const submission = {
      ipsecServerId: target.ipsecServerId,
      regionId: target.regionId,
      params: { Psk: 'Winter2025!', PskEnabled: true as const },
      actor: 'alice',
      idempotencyKey: 'rotate-42',
    };
    // The same submission through two deployments on one Redis, each with its own secret key.
    const other = Orchestrator.connect({
      redisUrl: harness.redisUrl,
      prefix: `${harness.prefix}-other`,
      secretKey: randomBytes(32).toString('hex'),
    });
    try {
      const storedHash = async (orchestrator: Orchestrator) => {
        await orchestrator.changes.submit(submission);
        const record = await orchestrator.redis.get(orchestrator.keys.idempotency('alice', 'rotate-42'));
        return record!.split(' ')[1];
      };
      const mine = await storedHash(harness.orchestrator);
      const theirs = await storedHash(other);
      expect(mine).toMatch(/^[0-9a-f]{64}$/);
      // A plain hash of the body is the same under any key, and anyone reading Redis can test
      // guesses of the Psk against it; the keyed one is not.
      expect(theirs).not.toBe(mine);
      // Retries still find their change: the same body, the same hash.
      expect((await harness.orchestrator.changes.submit(submission)).created).toBe(false);
    } finally {
      await deleteKeys(harness.redisUrl, `${harness.prefix}-other`);
      await other.close();
    }
  });
});

describe('lanes after a crash between two steps', () => {
  it('repairLanes makes a lane head runnable again when its job was lost', async () => {
    harness = await startHarness({ workers: 0, sim: { faults: { configuringMs: 0 } } });
    const change = await submit(harness, 0, subnet(60));
    // What a producer that died right after the submit script leaves behind: a head with no job.
    await harness.orchestrator.queue.queue.remove(change.id);
    expect(await harness.orchestrator.queue.queue.getJob(change.id)).toBeUndefined();
    expect(await harness.orchestrator.changes.repairLanes()).toEqual([change.id]);
    expect(await harness.orchestrator.changes.repairLanes()).toEqual([]);
    await harness.startWorker();
    expect(await harness.waitFor(change.id, ['succeeded', 'failed'])).toBe('succeeded');
  });
});

describe('the audit trail', () => {
  it('gives the same events for one time range by change, by server and globally, whatever the writer clock', async () => {
    harness = await startHarness({ workers: 0 });
    // A submitter whose clock runs a minute behind Redis's: its events' `ts` are a minute early.
    const skewed = changesWithClock(harness, -60_000);
    const target = harness.sim.servers[0]!;
    const from = Date.now() - 1_000;
    const { change } = await skewed.submit({
      ipsecServerId: target.ipsecServerId,
      regionId: target.regionId,
      params: subnet(72),
      actor: 'alice',
    });
    const to = Date.now() + 1_000;
    const { audit } = harness.orchestrator;
    const ids = async (query: Parameters<typeof audit.query>[0]) =>
      (await audit.query(query)).filter((event) => event.changeId === change.id).map((event) => event.id);
    const global = await ids({ from, to });
    expect(global).toHaveLength(1);
    expect(await ids({ changeId: change.id, from, to })).toEqual(global);
    expect(await ids({ ipsecServerId: target.ipsecServerId, from, to })).toEqual(global);
    expect(await ids({ changeId: change.id, to: from - 1 })).toEqual([]);
  });

  it('is queried by change, by server and by time, and exported as JSON lines', async () => {
    harness = await startHarness({ sim: { faults: { configuringMs: 0 } } });
    const start = Date.now();
    const first = await submit(harness, 0, subnet(70));
    const second = await submit(harness, 1, subnet(71));
    for (const change of [first, second]) await harness.waitFor(change.id, ['succeeded']);
    const audit = harness.orchestrator.audit;

    const forServer = await audit.query({ ipsecServerId: first.ipsecServerId });
    expect(new Set(forServer.map((event) => event.changeId))).toEqual(new Set([first.id]));
    const all = await audit.query({ from: start });
    expect(
      all
        .filter((event) => event.type === 'succeeded')
        .map((event) => event.changeId)
        .sort(),
    ).toEqual([first.id, second.id].sort());
    const ids = all.map((event) => event.id);
    expect([...ids].sort(compareStreamIds)).toEqual(ids);
    expect(await audit.query({ from: Date.now() + 60_000 })).toEqual([]);

    const lines: string[] = [];
    const { Writable } = await import('node:stream');
    const sink = new Writable({
      write(chunk, _encoding, callback) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        callback();
      },
    });
    const exported = await audit.exportJsonl(sink, { changeId: second.id });
    expect(exported).toBe(5);
    expect(lines.map((line) => JSON.parse(line).type)).toEqual([
      'submitted',
      'running',
      'dry_run_passed',
      'applied',
      'succeeded',
    ]);
  });
});
