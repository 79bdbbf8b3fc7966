/**
 * Injected faults: 5xx failures, connection resets (lost responses after an apply), latency and
 * jitter, their determinism under a seed, and the count of concurrent updates on one server.
 */
import { describe, expect, it } from 'vitest';
import type { AliyunClient } from '../../src/aliyun/client.js';
import { startSimulator } from '../../src/sim/index.js';
import type { SimFaultsPatch } from '../../src/sim/options.js';
import {
  adminGet,
  adminPost,
  label,
  labelOf,
  type Outcome,
  outcome,
  type Sim,
  type SimServer,
  useSimulators,
} from '../support/sim-harness.js';

const sims = useSimulators();

async function startWith(faults: SimFaultsPatch, seed = 17, servers = 4): Promise<Sim> {
  return sims.start({ servers, regions: ['cn-shanghai'], seed, faults: { configuringMs: 0, ...faults } });
}

function serverAt(sim: Sim, index: number): SimServer {
  const server = sim.servers[index];
  if (!server) throw new Error(`test setup: no server #${index}`);
  return server;
}

function apply(client: AliyunClient, server: SimServer, params: Record<string, string> = {}) {
  return outcome(
    client.call('UpdateIpsecServer', {
      RegionId: server.regionId,
      IpsecServerId: server.ipsecServerId,
      ...params,
    }),
  );
}

async function timed<T>(work: () => Promise<T>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

describe('failRate', () => {
  it('at 1 fails every call with 500 InternalError or 503 ServiceUnavailable, applying nothing', async () => {
    const sim = await startWith({ failRate: 1 });
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    const results: Outcome[] = [];
    for (let index = 0; index < 24; index++) {
      results.push(await outcome(client.call('DescribeRegions', {})));
      results.push(await apply(client, server, { IpsecServerName: `fail${index}` }));
    }
    for (const result of results) {
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      expect([
        [500, 'InternalError'],
        [503, 'ServiceUnavailable'],
      ]).toContainEqual([result.status, result.code]);
      expect(result.requestId).toEqual(expect.any(String));
    }
    expect(new Set(results.map(label))).toEqual(new Set(['InternalError', 'ServiceUnavailable']));
    expect(sim.server(server.ipsecServerId)?.history).toEqual([]);
    expect(sim.stats().applies).toBe(0);
    // The admin routes are not subject to faults.
    expect((await adminGet(sim, '/_sim/stats')).status).toBe(200);
  });

  it('at 0.3 fails some calls and not others', async () => {
    const sim = await startWith({ failRate: 0.3 });
    const client = sims.client(sim);
    const labels: string[] = [];
    for (let index = 0; index < 40; index++) labels.push(await labelOf(client.call('DescribeRegions', {})));
    const failed = labels.filter((l) => l !== 'OK').length;
    expect(failed).toBeGreaterThan(0);
    expect(failed).toBeLessThan(40);
    expect(sim.stats().requests).toBe(40);
  });
});

describe('resetRate', () => {
  it('at 1 destroys every connection; about half of the applies happen before the reset', async () => {
    const sim = await startWith({ resetRate: 1 });
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    const list = await outcome(client.call('ListIpsecServers', { RegionId: server.regionId }));
    expect(list).toMatchObject({ ok: false, code: 'TRANSPORT_RESET' });

    const attempts = 24;
    for (let index = 0; index < attempts; index++) {
      const result = await apply(client, server, { IpsecServerName: `lost${index}` });
      expect(result).toMatchObject({ ok: false, code: 'TRANSPORT_RESET' });
    }
    const history = sim.server(server.ipsecServerId)?.history ?? [];
    expect(history.length).toBeGreaterThan(0);
    expect(history.length).toBeLessThan(attempts);
    expect(sim.stats().applies).toBe(history.length);
    // What was applied is the last applied name: the lost responses are real changes.
    const lastName = history[history.length - 1]?.params.IpsecServerName;
    expect(sim.server(server.ipsecServerId)?.config.IpsecServerName).toBe(lastName);
  });

  it('a retry with the same ClientToken after a lost response replays it instead of applying again', async () => {
    const sim = await startWith({ resetRate: 1, configuringMs: 10_000 });
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    let lostParams: Record<string, string> | undefined;
    for (let attempt = 0; attempt < 40 && !lostParams; attempt++) {
      const params = { IpsecServerName: `retry${attempt}`, ClientToken: `lost-token-${attempt}` };
      const result = await apply(client, server, params);
      expect(result).toMatchObject({ ok: false, code: 'TRANSPORT_RESET' });
      if ((sim.server(server.ipsecServerId)?.history.length ?? 0) > 0) lostParams = params;
    }
    expect(lostParams).toBeDefined();
    const [applied] = sim.server(server.ipsecServerId)?.history ?? [];
    expect(applied?.clientToken).toBe(lostParams?.ClientToken);

    sim.setFaults({ resetRate: 0 });
    const retry = await apply(client, server, lostParams);
    expect(retry).toMatchObject({ ok: true, requestId: applied?.requestId });
    expect(sim.server(server.ipsecServerId)?.history).toHaveLength(1);
    expect(sim.stats()).toMatchObject({ applies: 1, idempotentReplays: 1 });
  });
});

describe('garbleRate', () => {
  it('at 1 processes every call, then answers 200 with a page that is not JSON', async () => {
    const sim = await startWith({ garbleRate: 1 });
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    const result = await apply(client, server, {
      IpsecServerName: 'behind-a-proxy',
      ClientToken: 'garbled-1',
    });
    expect(result).toMatchObject({ ok: false, code: 'HTTP.200.NotJson' });
    const history = sim.server(server.ipsecServerId)?.history ?? [];
    expect(history.map((entry) => entry.clientToken)).toEqual(['garbled-1']);
    expect(sim.server(server.ipsecServerId)?.config.IpsecServerName).toBe('behind-a-proxy');
    expect(sim.stats().byCode.NotJsonAnswer).toBe(1);

    sim.setFaults({ garbleRate: 0 });
    const retry = await apply(client, server, {
      IpsecServerName: 'behind-a-proxy',
      ClientToken: 'garbled-1',
    });
    expect(retry).toMatchObject({ ok: true, requestId: history[0]?.requestId });
    expect(sim.stats()).toMatchObject({ applies: 1, idempotentReplays: 1 });
  });

  it("takes only calls that would have been answered: a seed's failures and resets stay put", async () => {
    const codes = async (faults: SimFaultsPatch) => {
      const sim = await startWith(faults, 23);
      const client = sims.client(sim);
      const seen: string[] = [];
      for (let index = 0; index < 40; index++) {
        seen.push(label(await apply(client, serverAt(sim, index % 4), { IpsecServerName: `n${index}` })));
      }
      return seen;
    };
    const without = await codes({ failRate: 0.3, resetRate: 0.3 });
    expect(new Set(without).size).toBeGreaterThan(2);
    const garbled = await codes({ failRate: 0.3, resetRate: 0.3, garbleRate: 0.3 });
    expect(garbled).toContain('HTTP.200.NotJson');
    garbled.forEach((code, index) => {
      if (code !== 'HTTP.200.NotJson') expect(code).toBe(without[index]);
    });
  });
});

describe('staleReadMs', () => {
  const STALE_MS = 5_000;

  /** A simulator on a clock the test moves, so the stale window is exact, not a race with a timer. */
  async function startOnClock(faults: SimFaultsPatch) {
    const clock = { now: Date.now() };
    const sim = await startSimulator(
      { port: 0, servers: 4, regions: ['cn-shanghai'], seed: 17, faults: { configuringMs: 0, ...faults } },
      { clock: () => clock.now },
    );
    sims.defer(() => sim.close());
    return { sim, clock };
  }

  async function listedNames(client: AliyunClient, server: SimServer, filter: Record<string, string> = {}) {
    const result = await outcome(
      client.call('ListIpsecServers', {
        RegionId: server.regionId,
        'IpsecServerId.1': server.ipsecServerId,
        ...filter,
      }),
    );
    if (!result.ok) throw new Error(`test: ListIpsecServers failed with ${result.code}`);
    return (result.body.IpsecServers as Array<{ IpsecServerName: string }>).map((s) => s.IpsecServerName);
  }

  it('lists the record from before an apply for that long after it; writes and the admin view see the new one', async () => {
    const { sim, clock } = await startOnClock({ staleReadMs: STALE_MS });
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    const other = serverAt(sim, 1);
    const original = server.ipsecServerName;

    expect(label(await apply(client, server, { IpsecServerName: 'renamed' }))).toBe('OK');
    expect(sim.server(server.ipsecServerId)?.config.IpsecServerName).toBe('renamed');
    expect(await listedNames(client, server)).toEqual([original]);
    // Filters see what the listing shows.
    expect(await listedNames(client, server, { IpsecServerName: 'renamed' })).toEqual([]);
    expect(await listedNames(client, server, { IpsecServerName: original })).toEqual([original]);
    // Another server, never applied to, is listed as it is.
    expect(await listedNames(client, other)).toEqual([other.ipsecServerName]);

    clock.now += STALE_MS - 1;
    expect(await listedNames(client, server)).toEqual([original]);
    clock.now += 1;
    expect(await listedNames(client, server)).toEqual(['renamed']);
    expect(sim.stats().applies).toBe(1);
  });

  it('lags each apply by the window: a second apply inside it shows the first one, then itself', async () => {
    const { sim, clock } = await startOnClock({ staleReadMs: STALE_MS });
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    const original = server.ipsecServerName;

    expect(label(await apply(client, server, { IpsecServerName: 'first' }))).toBe('OK');
    clock.now += 2_000;
    expect(label(await apply(client, server, { IpsecServerName: 'second' }))).toBe('OK');
    expect(await listedNames(client, server)).toEqual([original]);
    clock.now += STALE_MS - 2_000;
    expect(await listedNames(client, server)).toEqual(['first']);
    clock.now += 2_000;
    expect(await listedNames(client, server)).toEqual(['second']);
  });

  it('is 0 by default, and can be set at run time (POST /_sim/faults)', async () => {
    const sim = await startWith({});
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    expect(sim.faults().staleReadMs).toBe(0);
    expect(label(await apply(client, server, { IpsecServerName: 'fresh-at-once' }))).toBe('OK');
    expect(await listedNames(client, server)).toEqual(['fresh-at-once']);

    expect((await adminPost(sim, '/_sim/faults', { staleReadMs: -1 })).status).toBe(400);
    const set = await adminPost(sim, '/_sim/faults', { staleReadMs: 60_000 });
    expect(set.status).toBe(200);
    expect(set.json.staleReadMs).toBe(60_000);
    expect(label(await apply(client, server, { IpsecServerName: 'late' }))).toBe('OK');
    expect(await listedNames(client, server)).toEqual(['fresh-at-once']);
  });
});

describe('latency and jitter', () => {
  it('latencyMs delays every answer by at least that much', async () => {
    const sim = await startWith({ latencyMs: 150 });
    const client = sims.client(sim);
    for (let index = 0; index < 3; index++) {
      const elapsed = await timed(() => client.call('DescribeRegions', {}));
      expect(elapsed).toBeGreaterThanOrEqual(140);
    }
  });

  it('jitterMs spreads the delays', async () => {
    const sim = await startWith({ jitterMs: 200 });
    const client = sims.client(sim);
    const delays: number[] = [];
    for (let index = 0; index < 6; index++)
      delays.push(await timed(() => client.call('DescribeRegions', {})));
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(30);
  });
});

describe('the seed', () => {
  const faults: SimFaultsPatch = { failRate: 0.25, busyRate: 0.25, resetRate: 0.2 };

  /** A fixed, sequential mix of reads, dry runs and applies; returns what each call came back with. */
  async function run(sim: Sim, client: AliyunClient): Promise<string[]> {
    const labels: string[] = [];
    for (let index = 0; index < 48; index++) {
      const server = serverAt(sim, index % 2);
      let result: Outcome;
      switch (index % 4) {
        case 0:
          result = await outcome(client.call('ListIpsecServers', { RegionId: server.regionId }));
          break;
        case 1:
          result = await outcome(client.call('DescribeRegions', {}));
          break;
        case 2:
          result = await apply(client, server, { IpsecServerName: `dry${index}`, DryRun: 'true' });
          break;
        default:
          result = await apply(client, server, { IpsecServerName: `seeded${index}` });
      }
      labels.push(label(result));
    }
    return labels;
  }

  it('the same seed gives the same sequence of faults; another seed another one', async () => {
    const first = await startWith(faults, 4242);
    const second = await startWith(faults, 4242);
    const other = await startWith(faults, 4243);
    const firstLabels = await run(first, sims.client(first));
    const secondLabels = await run(second, sims.client(second));
    const otherLabels = await run(other, sims.client(other));

    // The run is worth comparing: it met several kinds of fault.
    expect(new Set(firstLabels).size).toBeGreaterThanOrEqual(4);
    expect(firstLabels).toContain('TRANSPORT_RESET');
    expect(secondLabels).toEqual(firstLabels);
    expect(otherLabels).not.toEqual(firstLabels);

    const historyOf = (sim: Sim) =>
      sim.servers.map((s) =>
        (sim.server(s.ipsecServerId)?.history ?? []).map((entry) => entry.params.IpsecServerName),
      );
    expect(historyOf(second)).toEqual(historyOf(first));
    expect(second.stats().byCode).toEqual(first.stats().byCode);
    expect(second.stats().applies).toBe(first.stats().applies);
  });
});

describe('concurrent updates on one server', () => {
  it('counts an UpdateIpsecServer arriving while another on the same server is in flight', async () => {
    const sim = await startWith({ latencyMs: 300 });
    const client = sims.client(sim);
    const server = serverAt(sim, 0);
    const results = await Promise.all([
      apply(client, server, { IpsecServerName: 'concurrent1', DryRun: 'true' }),
      apply(client, server, { IpsecServerName: 'concurrent2', DryRun: 'true' }),
    ]);
    expect(results.map(label)).toEqual(['DryRunOperation', 'DryRunOperation']);
    expect(sim.stats().concurrentUpdateViolations).toBeGreaterThanOrEqual(1);
    expect(sim.stats().maxConcurrentUpdatesPerServer).toBeGreaterThanOrEqual(2);
  });

  it('counts nothing for sequential updates, updates on different servers, or concurrent reads', async () => {
    const sim = await startWith({ latencyMs: 200 });
    const client = sims.client(sim);
    const [one, two] = [serverAt(sim, 0), serverAt(sim, 1)];
    await apply(client, one, { IpsecServerName: 'seq1', DryRun: 'true' });
    await apply(client, one, { IpsecServerName: 'seq2' });
    await Promise.all([
      apply(client, one, { IpsecServerName: 'par1', DryRun: 'true' }),
      apply(client, two, { IpsecServerName: 'par2', DryRun: 'true' }),
      outcome(client.call('ListIpsecServers', { RegionId: one.regionId })),
      outcome(client.call('ListIpsecServers', { RegionId: one.regionId })),
    ]);
    expect(sim.stats()).toMatchObject({ concurrentUpdateViolations: 0, maxConcurrentUpdatesPerServer: 1 });
  });
});
