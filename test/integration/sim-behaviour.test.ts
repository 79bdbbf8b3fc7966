/**
 * The simulator's business behaviour, driven through our client and src/ipsec/api: the fleet,
 * listing and paging, dry runs, applies and the configuring window, busy gateways, financial
 * locks, ownership, LocalSubnet checks, ClientToken idempotency and throttling.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AliyunClient } from '../../src/aliyun/client.js';
import {
  dryRunUpdateIpsecServer,
  getIpsecServer,
  listIpsecServerPages,
  listIpsecServers,
  updateIpsecServer,
} from '../../src/ipsec/api.js';
import { IpsecServerNotFoundError } from '../../src/ipsec/errors.js';
import type { IpsecServer } from '../../src/ipsec/server.js';
import {
  adminPost,
  keyA,
  keyB,
  label,
  labelOf,
  type Outcome,
  outcome,
  type Sim,
  sleep,
  toMillis,
  useSimulators,
  waitUntilNotConfiguring,
} from '../support/sim-harness.js';

const sims = useSimulators();
const SHANGHAI = 'cn-shanghai';
const HANGZHOU = 'cn-hangzhou';

const MESSAGES = {
  dryRun: 'Request validation has been passed with DryRun flag set.',
  configuring: 'The specified service is configuring.',
  locked: 'The specified service is financial locked.',
  forbidden: 'User not authorized to operate on the specified resource.',
  throttled: 'Request was denied due to user flow control.',
};

async function startFleet(faults: Record<string, unknown> = {}, servers = 8): Promise<Sim> {
  return sims.start({
    servers,
    regions: [SHANGHAI, HANGZHOU],
    accessKeys: [keyA, keyB],
    seed: 5,
    faults: { configuringMs: 0, ...faults },
  });
}

function ownedBy(sim: Sim, key: { accessKeyId: string }, index = 0, region = SHANGHAI) {
  const owned = sim.servers.filter((s) => s.ownerAccessKeyId === key.accessKeyId && s.regionId === region);
  const server = owned[index];
  if (!server) throw new Error(`test setup: no server #${index} of ${key.accessKeyId} in ${region}`);
  return server;
}

function clientFor(sim: Sim, key: typeof keyA): AliyunClient {
  return sims.client(sim, { credentials: key });
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

function update(serverId: string, params: Record<string, string | boolean> = {}) {
  return { RegionId: SHANGHAI, IpsecServerId: serverId, ...params };
}

function expectError(result: Outcome, status: number, code: string, message?: string): void {
  expect(result).toMatchObject({ ok: false, status, code });
  if (message !== undefined && !result.ok) expect(result.message).toBe(message);
}

describe('the fleet', () => {
  it('generates the asked number of servers, spread over every region and key', async () => {
    const sim = await sims.start({
      servers: 12,
      regions: [SHANGHAI, HANGZHOU, 'ap-southeast-1'],
      accessKeys: [keyA, keyB],
      seed: 3,
    });
    expect(sim.servers).toHaveLength(12);
    expect(new Set(sim.servers.map((s) => s.ipsecServerId)).size).toBe(12);
    expect(new Set(sim.servers.map((s) => s.regionId))).toEqual(
      new Set([SHANGHAI, HANGZHOU, 'ap-southeast-1']),
    );
    expect(new Set(sim.servers.map((s) => s.ownerAccessKeyId))).toEqual(
      new Set([keyA.accessKeyId, keyB.accessKeyId]),
    );
    expect(sim.accessKeyId).toBe(keyA.accessKeyId);
    expect(sim.accessKeySecret).toBe(keyA.accessKeySecret);
    expect(sim.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    for (const server of sim.servers) {
      expect(server.vpnGatewayId).toMatch(/\S/);
      expect(server.ipsecServerName).toMatch(/\S/);
      const view = sim.server(server.ipsecServerId);
      expect(view).toMatchObject({
        ipsecServerId: server.ipsecServerId,
        regionId: server.regionId,
        vpnGatewayId: server.vpnGatewayId,
        ownerAccessKeyId: server.ownerAccessKeyId,
        history: [],
      });
      expect(view?.config).toMatchObject({
        IpsecServerId: server.ipsecServerId,
        RegionId: server.regionId,
        VpnGatewayId: server.vpnGatewayId,
        IpsecServerName: server.ipsecServerName,
      });
    }
  });

  it('the same seed gives the same fleet', async () => {
    const first = await sims.start({ servers: 5, seed: 99 });
    const second = await sims.start({ servers: 5, seed: 99 });
    expect(second.servers).toEqual(first.servers);
    expect(first.servers.map((s) => first.server(s.ipsecServerId)?.config)).toEqual(
      second.servers.map((s) => second.server(s.ipsecServerId)?.config),
    );
  });

  it('keeps its fleet in fleetFile across a restart: generated when absent, saved on close, loaded next time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ipsec-fleet-sim-'));
    const fleetFile = join(dir, 'fleet.json');
    try {
      const first = await sims.start({ servers: 4, seed: 61, fleetFile });
      const target = first.servers[0] as (typeof first.servers)[number];
      expect(
        await labelOf(
          sims.client(first).call('UpdateIpsecServer', {
            RegionId: target.regionId,
            IpsecServerId: target.ipsecServerId,
            IpsecServerName: 'kept_across_restart',
          }),
        ),
      ).toBe('OK');
      await first.close();
      expect(JSON.parse(await readFile(fleetFile, 'utf8'))).toBeTypeOf('object');

      // Another seed would generate other servers: these come from the file.
      const second = await sims.start({ servers: 4, seed: 62, fleetFile });
      expect(second.servers.map((s) => s.ipsecServerId)).toEqual(first.servers.map((s) => s.ipsecServerId));
      expect(second.server(target.ipsecServerId)?.config.IpsecServerName).toBe('kept_across_restart');
      const listed = await getIpsecServer(sims.client(second), target.regionId, target.ipsecServerId);
      expect(listed.IpsecServerName).toBe('kept_across_restart');
      await second.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('ListIpsecServers', () => {
  it('lists only the caller’s servers in the region, with the fields the SDK models', async () => {
    const sim = await startFleet();
    const mine = await collect(listIpsecServers(clientFor(sim, keyA), { RegionId: SHANGHAI }));
    const expected = sim.servers.filter(
      (s) => s.regionId === SHANGHAI && s.ownerAccessKeyId === keyA.accessKeyId,
    );
    expect(mine.map((s) => s.IpsecServerId).sort()).toEqual(expected.map((s) => s.ipsecServerId).sort());
    for (const server of mine) {
      expect(server).toMatchObject({ RegionId: SHANGHAI });
      expect(server.LocalSubnet).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+/);
      expect(server.ClientIpPool).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
      expect(server.IkeConfig?.IkeVersion).toMatch(/^ikev[12]$/);
      expect(server.IpsecConfig?.IpsecEncAlg).toEqual(expect.any(String));
      expect(server.PskEnabled).toEqual(expect.any(Boolean));
    }
    const theirs = await collect(listIpsecServers(clientFor(sim, keyB), { RegionId: SHANGHAI }));
    const mineIds = new Set(mine.map((s) => s.IpsecServerId));
    expect(theirs.length).toBeGreaterThan(0);
    expect(theirs.some((s) => mineIds.has(s.IpsecServerId))).toBe(false);
  });

  it('pages by MaxResults (default 10, at most 20) with NextToken', async () => {
    const sim = await sims.start({ servers: 25, regions: [SHANGHAI], seed: 8 });
    const client = sims.client(sim);
    const pages = await collect(listIpsecServerPages(client, { RegionId: SHANGHAI }));
    expect(pages.map((page) => page.IpsecServers.length)).toEqual([10, 10, 5]);
    expect(pages.map((page) => page.TotalCount)).toEqual([25, 25, 25]);
    expect(pages[0]?.MaxResults).toBe(10);
    expect(pages[0]?.NextToken).toEqual(expect.any(String));
    expect(pages[2]?.NextToken ?? '').toBe('');
    const ids = pages.flatMap((page) => page.IpsecServers.map((s) => s.IpsecServerId));
    expect(new Set(ids).size).toBe(25);
    expect(new Set(ids)).toEqual(new Set(sim.servers.map((s) => s.ipsecServerId)));

    const bigPages = await collect(listIpsecServerPages(client, { RegionId: SHANGHAI, MaxResults: 20 }));
    expect(bigPages.map((page) => page.IpsecServers.length)).toEqual([20, 5]);

    for (const bad of ['21', '0', 'ten']) {
      const result = await outcome(client.call('ListIpsecServers', { RegionId: SHANGHAI, MaxResults: bad }));
      expect(result, bad).toMatchObject({ ok: false, status: 400 });
      expect(result.ok ? '' : result.message, bad).toContain('MaxResults');
    }
  });

  it('filters by IpsecServerId.N, VpnGatewayId and IpsecServerName', async () => {
    const sim = await startFleet({}, 12);
    const client = clientFor(sim, keyA);
    const [first, second] = [ownedBy(sim, keyA, 0), ownedBy(sim, keyA, 1)];
    const foreign = ownedBy(sim, keyB, 0);

    const byIds = await collect(
      listIpsecServers(client, {
        RegionId: SHANGHAI,
        IpsecServerId: [first.ipsecServerId, second.ipsecServerId, foreign.ipsecServerId],
      }),
    );
    expect(byIds.map((s) => s.IpsecServerId).sort()).toEqual(
      [first.ipsecServerId, second.ipsecServerId].sort(),
    );

    const byGateway = await collect(
      listIpsecServers(client, { RegionId: SHANGHAI, VpnGatewayId: first.vpnGatewayId }),
    );
    expect(byGateway.length).toBeGreaterThan(0);
    expect(byGateway.every((s) => s.VpnGatewayId === first.vpnGatewayId)).toBe(true);
    expect(byGateway.map((s) => s.IpsecServerId)).toContain(first.ipsecServerId);

    const byName = await collect(
      listIpsecServers(client, { RegionId: SHANGHAI, IpsecServerName: second.ipsecServerName }),
    );
    expect(byName.map((s) => s.IpsecServerId)).toContain(second.ipsecServerId);
    expect(byName.every((s) => s.IpsecServerName === second.ipsecServerName)).toBe(true);

    // Another region's listing does not show this region's servers.
    const elsewhere = await collect(
      listIpsecServers(client, { RegionId: HANGZHOU, IpsecServerId: [first.ipsecServerId] }),
    );
    expect(elsewhere).toEqual([]);
  });

  it('getIpsecServer finds an own server and not someone else’s', async () => {
    const sim = await startFleet();
    const mine = ownedBy(sim, keyA);
    const server = await getIpsecServer(clientFor(sim, keyA), SHANGHAI, mine.ipsecServerId);
    expect(server.IpsecServerId).toBe(mine.ipsecServerId);
    await expect(getIpsecServer(clientFor(sim, keyB), SHANGHAI, mine.ipsecServerId)).rejects.toBeInstanceOf(
      IpsecServerNotFoundError,
    );
  });

  it('DescribeRegions names the configured regions', async () => {
    const sim = await startFleet();
    const result = await outcome(sims.client(sim).call('DescribeRegions', {}));
    expect(label(result)).toBe('OK');
    const text = JSON.stringify(result.ok ? result.body : {});
    expect(text).toContain(`"${SHANGHAI}"`);
    expect(text).toContain(`"${HANGZHOU}"`);
  });
});

describe('UpdateIpsecServer: dry run and apply', () => {
  const fullChange = {
    LocalSubnet: '192.168.10.0/24,192.168.20.0/24',
    ClientIpPool: '10.50.0.0/16',
    IpsecServerName: 'changed_name-1',
    EffectImmediately: true,
    IkeConfig: {
      IkeVersion: 'ikev1' as const,
      IkeMode: 'aggressive' as const,
      IkeEncAlg: 'aes256' as const,
      IkeAuthAlg: 'sha256' as const,
      IkePfs: 'group14' as const,
      IkeLifetime: 3600,
      LocalId: 'vpn.example.com',
      RemoteId: 'client.example.com',
    },
    IpsecConfig: {
      IpsecEncAlg: 'aes192' as const,
      IpsecAuthAlg: 'sha512' as const,
      IpsecPfs: 'disabled' as const,
      IpsecLifetime: 7200,
    },
    PskEnabled: true as const,
    Psk: 'new-psk-0123',
  };

  it('a dry run answers DryRunOperation and changes nothing', async () => {
    const sim = await startFleet({ configuringMs: 5_000 });
    const target = ownedBy(sim, keyA);
    const before = sim.server(target.ipsecServerId)?.config;
    const client = clientFor(sim, keyA);
    const result = await dryRunUpdateIpsecServer(client, {
      RegionId: SHANGHAI,
      IpsecServerId: target.ipsecServerId,
      ...fullChange,
    });
    expect(result.RequestId).toEqual(expect.any(String));
    const raw = await outcome(
      client.call(
        'UpdateIpsecServer',
        update(target.ipsecServerId, { IpsecServerName: 'x-y', DryRun: true }),
      ),
    );
    expectError(raw, 400, 'DryRunOperation', MESSAGES.dryRun);

    const view = sim.server(target.ipsecServerId);
    expect(view?.config).toEqual(before);
    expect(view?.history).toEqual([]);
    expect(view?.configuringUntil ?? undefined).toBeUndefined();
    expect(sim.stats()).toMatchObject({ dryRuns: 2, applies: 0 });
    // No configuring window after a dry run: an apply goes straight through.
    expect(
      await labelOf(
        client.call('UpdateIpsecServer', update(target.ipsecServerId, { IpsecServerName: 'x-y' })),
      ),
    ).toBe('OK');
  });

  it('an apply changes exactly the given fields, and ListIpsecServers shows them', async () => {
    const sim = await startFleet();
    const target = ownedBy(sim, keyA);
    const bystander = ownedBy(sim, keyA, 1);
    const client = clientFor(sim, keyA);
    const before = await getIpsecServer(client, SHANGHAI, target.ipsecServerId);
    const bystanderBefore = sim.server(bystander.ipsecServerId)?.config;

    const response = await updateIpsecServer(client, {
      RegionId: SHANGHAI,
      IpsecServerId: target.ipsecServerId,
      ...fullChange,
    });
    const after: IpsecServer = await getIpsecServer(client, SHANGHAI, target.ipsecServerId);
    expect(after).toMatchObject({
      IpsecServerId: target.ipsecServerId,
      LocalSubnet: fullChange.LocalSubnet,
      ClientIpPool: fullChange.ClientIpPool,
      IpsecServerName: fullChange.IpsecServerName,
      EffectImmediately: true,
      IkeConfig: fullChange.IkeConfig,
      IpsecConfig: fullChange.IpsecConfig,
      PskEnabled: true,
      Psk: fullChange.Psk,
      // Untouched fields stay as they were.
      VpnGatewayId: before.VpnGatewayId,
      InternetIp: before.InternetIp,
      CreationTime: before.CreationTime,
      RegionId: SHANGHAI,
    });
    expect(sim.server(bystander.ipsecServerId)?.config).toEqual(bystanderBefore);

    const view = sim.server(target.ipsecServerId);
    expect(view?.history).toHaveLength(1);
    expect(view?.history[0]?.requestId).toBe(response.RequestId);
    expect(view?.history[0]?.params).toMatchObject({ IpsecServerName: fullChange.IpsecServerName });
    expect(sim.stats()).toMatchObject({ applies: 1, dryRuns: 0 });
  });

  it('an apply changing only the name keeps the rest of the configuration', async () => {
    const sim = await startFleet();
    const target = ownedBy(sim, keyA);
    const before = sim.server(target.ipsecServerId)?.config;
    const client = clientFor(sim, keyA);
    expect(
      await labelOf(
        client.call('UpdateIpsecServer', update(target.ipsecServerId, { IpsecServerName: 'only_name' })),
      ),
    ).toBe('OK');
    expect(sim.server(target.ipsecServerId)?.config).toEqual({ ...before, IpsecServerName: 'only_name' });
  });
});

describe('the configuring window after an apply', () => {
  it('answers VpnGateway.Configuring to applies and dry runs on that server, not to others or reads', async () => {
    // A long window, so that no amount of slowness lets it pass during the test.
    const configuringMs = 10_000;
    const sim = await startFleet({ configuringMs });
    const target = ownedBy(sim, keyA);
    const other = ownedBy(sim, keyA, 1);
    const client = clientFor(sim, keyA);
    const call = (id: string, params: Record<string, string>) =>
      labelOf(client.call('UpdateIpsecServer', update(id, params)));

    const appliedAt = Date.now();
    expect(await call(target.ipsecServerId, { IpsecServerName: 'first' })).toBe('OK');
    const until = sim.server(target.ipsecServerId)?.configuringUntil;
    expect(until).toBeDefined();
    expect(toMillis(until)).toBeGreaterThanOrEqual(appliedAt + configuringMs - 1_000);
    expect(toMillis(until)).toBeLessThanOrEqual(Date.now() + configuringMs + 1_000);

    const apply = await outcome(
      client.call('UpdateIpsecServer', update(target.ipsecServerId, { IpsecServerName: 'second' })),
    );
    expectError(apply, 400, 'VpnGateway.Configuring', MESSAGES.configuring);
    const dryRun = await outcome(
      client.call(
        'UpdateIpsecServer',
        update(target.ipsecServerId, { IpsecServerName: 'second', DryRun: 'true' }),
      ),
    );
    expectError(dryRun, 400, 'VpnGateway.Configuring', MESSAGES.configuring);
    expect(await call(other.ipsecServerId, { IpsecServerName: 'other', DryRun: 'true' })).toBe(
      'DryRunOperation',
    );
    expect(await labelOf(client.call('ListIpsecServers', { RegionId: SHANGHAI }))).toBe('OK');

    expect(sim.server(target.ipsecServerId)?.config.IpsecServerName).toBe('first');
    expect(sim.server(target.ipsecServerId)?.history).toHaveLength(1);
    expect(sim.stats().byCode['VpnGateway.Configuring']).toBe(2);
  });

  it('ends the window after configuringMs', async () => {
    const sim = await startFleet({ configuringMs: 300 });
    const target = ownedBy(sim, keyA);
    const client = clientFor(sim, keyA);
    const call = (name: string) =>
      labelOf(client.call('UpdateIpsecServer', update(target.ipsecServerId, { IpsecServerName: name })));

    expect(await call('first')).toBe('OK');
    expect(await call('refused')).toBe('VpnGateway.Configuring');
    await waitUntilNotConfiguring(sim, target.ipsecServerId);
    expect(sim.server(target.ipsecServerId)?.configuringUntil).toBeUndefined();
    expect(await call('second')).toBe('OK');
    expect(sim.server(target.ipsecServerId)?.history.map((entry) => entry.params.IpsecServerName)).toEqual([
      'first',
      'second',
    ]);
  });

  it('a refused apply starts no configuring window', async () => {
    const sim = await startFleet({ configuringMs: 5_000 });
    const target = ownedBy(sim, keyA);
    const client = clientFor(sim, keyA);
    const pool = sim.server(target.ipsecServerId)?.config.ClientIpPool as string;
    expect(
      await labelOf(client.call('UpdateIpsecServer', update(target.ipsecServerId, { LocalSubnet: pool }))),
    ).toBe('IllegalParam.LocalSubnet');
    expect(sim.server(target.ipsecServerId)?.configuringUntil ?? undefined).toBeUndefined();
    expect(
      await labelOf(
        client.call('UpdateIpsecServer', update(target.ipsecServerId, { IpsecServerName: 'fine' })),
      ),
    ).toBe('OK');
  });

  it('busyRate 1 makes every UpdateIpsecServer busy, reads untouched; 0.5 makes some busy', async () => {
    const sim = await startFleet({ busyRate: 1 });
    const target = ownedBy(sim, keyA);
    const client = clientFor(sim, keyA);
    for (const DryRun of ['true', 'false']) {
      const result = await outcome(
        client.call('UpdateIpsecServer', update(target.ipsecServerId, { IpsecServerName: 'busy', DryRun })),
      );
      expectError(result, 400, 'VpnGateway.Configuring');
    }
    expect(await labelOf(client.call('ListIpsecServers', { RegionId: SHANGHAI }))).toBe('OK');
    expect(sim.server(target.ipsecServerId)?.history).toEqual([]);

    sim.setFaults({ busyRate: 0.5 });
    const labels: string[] = [];
    for (let index = 0; index < 30; index++) {
      labels.push(
        await labelOf(
          client.call(
            'UpdateIpsecServer',
            update(target.ipsecServerId, { IpsecServerName: 'half', DryRun: 'true' }),
          ),
        ),
      );
    }
    expect(labels).toContain('VpnGateway.Configuring');
    expect(labels).toContain('DryRunOperation');
    expect(new Set(labels)).toEqual(new Set(['VpnGateway.Configuring', 'DryRunOperation']));
  });
});

describe('financial lock', () => {
  it('locks a server given at start, for dry runs and applies, leaving others and reads alone', async () => {
    // The same seed gives the same fleet, so a first simulator tells which id to lock in the second.
    const probe = await startFleet();
    const lockedId = ownedBy(probe, keyA).ipsecServerId;
    const sim = await startFleet({ financialLocked: [lockedId] });
    const client = clientFor(sim, keyA);
    for (const DryRun of ['true', 'false']) {
      const result = await outcome(
        client.call('UpdateIpsecServer', update(lockedId, { IpsecServerName: 'locked', DryRun })),
      );
      expectError(result, 400, 'VpnGateway.FinancialLocked', MESSAGES.locked);
    }
    expect(sim.server(lockedId)?.history).toEqual([]);
    const free = ownedBy(sim, keyA, 1);
    expect(
      await labelOf(
        client.call('UpdateIpsecServer', update(free.ipsecServerId, { IpsecServerName: 'free' })),
      ),
    ).toBe('OK');
    expect(await labelOf(client.call('ListIpsecServers', { RegionId: SHANGHAI }))).toBe('OK');
  });

  it('locks and unlocks servers and whole accounts at run time', async () => {
    const sim = await startFleet();
    const a0 = ownedBy(sim, keyA, 0);
    const a1 = ownedBy(sim, keyA, 1);
    const b0 = ownedBy(sim, keyB, 0);
    const a = clientFor(sim, keyA);
    const b = clientFor(sim, keyB);
    const dry = (client: AliyunClient, id: string) =>
      outcome(
        client.call('UpdateIpsecServer', update(id, { IpsecServerName: 'probe', DryRun: 'true' })),
      ).then(label);

    sim.setFaults({ financialLocked: [a0.ipsecServerId] });
    expect([await dry(a, a0.ipsecServerId), await dry(a, a1.ipsecServerId)]).toEqual([
      'VpnGateway.FinancialLocked',
      'DryRunOperation',
    ]);

    const byRoute = await adminPost(sim, '/_sim/faults', {
      financialLocked: [`account:${keyA.accessKeyId}`],
    });
    expect(byRoute.status).toBe(200);
    expect([
      await dry(a, a0.ipsecServerId),
      await dry(a, a1.ipsecServerId),
      await dry(b, b0.ipsecServerId),
    ]).toEqual(['VpnGateway.FinancialLocked', 'VpnGateway.FinancialLocked', 'DryRunOperation']);

    expect((await adminPost(sim, '/_sim/faults', { financialLocked: [] })).status).toBe(200);
    expect([await dry(a, a0.ipsecServerId), await dry(a, a1.ipsecServerId)]).toEqual([
      'DryRunOperation',
      'DryRunOperation',
    ]);
  });
});

describe('ownership', () => {
  it('another key’s server is 403 Forbidden for dry runs and applies, and stays unchanged', async () => {
    const sim = await startFleet();
    const target = ownedBy(sim, keyA);
    const before = sim.server(target.ipsecServerId)?.config;
    const intruder = clientFor(sim, keyB);
    for (const DryRun of ['true', 'false']) {
      const result = await outcome(
        intruder.call(
          'UpdateIpsecServer',
          update(target.ipsecServerId, { IpsecServerName: 'taken', DryRun }),
        ),
      );
      expectError(result, 403, 'Forbidden', MESSAGES.forbidden);
    }
    expect(sim.server(target.ipsecServerId)?.config).toEqual(before);
    expect(sim.server(target.ipsecServerId)?.history).toEqual([]);
    expect(sim.stats().applies).toBe(0);
  });
});

describe('IllegalParam.LocalSubnet', () => {
  const invalid = (value: string) => `The specified "LocalSubnet" (${value}) is invalid.`;

  it('refuses a LocalSubnet overlapping the new ClientIpPool, in dry runs too', async () => {
    const sim = await startFleet();
    const target = ownedBy(sim, keyA);
    const before = sim.server(target.ipsecServerId)?.config;
    const client = clientFor(sim, keyA);
    for (const DryRun of ['true', 'false']) {
      const result = await outcome(
        client.call(
          'UpdateIpsecServer',
          update(target.ipsecServerId, {
            LocalSubnet: '10.200.8.0/24',
            ClientIpPool: '10.200.0.0/16',
            DryRun,
          }),
        ),
      );
      expectError(result, 400, 'IllegalParam.LocalSubnet', invalid('10.200.8.0/24'));
    }
    // The pool inside the subnet overlaps as well.
    const wider = await outcome(
      client.call(
        'UpdateIpsecServer',
        update(target.ipsecServerId, { LocalSubnet: '10.0.0.0/8', ClientIpPool: '10.200.0.0/16' }),
      ),
    );
    expectError(wider, 400, 'IllegalParam.LocalSubnet', invalid('10.0.0.0/8'));
    expect(sim.server(target.ipsecServerId)?.config).toEqual(before);
    expect(sim.server(target.ipsecServerId)?.history).toEqual([]);

    // Adjacent blocks do not overlap.
    expect(
      await labelOf(
        client.call(
          'UpdateIpsecServer',
          update(target.ipsecServerId, { LocalSubnet: '10.201.0.0/16', ClientIpPool: '10.200.0.0/16' }),
        ),
      ),
    ).toBe('OK');
  });

  it('refuses a LocalSubnet overlapping the current ClientIpPool, also as one entry of a list', async () => {
    const sim = await startFleet();
    const target = ownedBy(sim, keyA);
    const client = clientFor(sim, keyA);
    const pool = sim.server(target.ipsecServerId)?.config.ClientIpPool;
    expect(pool).toMatch(/^\d+\.\d+\.\d+\.\d+\/\d+$/);
    const alone = await outcome(
      client.call('UpdateIpsecServer', update(target.ipsecServerId, { LocalSubnet: pool as string })),
    );
    expectError(alone, 400, 'IllegalParam.LocalSubnet', invalid(pool as string));

    const list = `192.168.231.0/24,${pool}`;
    const inList = await outcome(
      client.call('UpdateIpsecServer', update(target.ipsecServerId, { LocalSubnet: list })),
    );
    expect(inList).toMatchObject({ ok: false, status: 400, code: 'IllegalParam.LocalSubnet' });
    expect(inList.ok ? '' : inList.message).toMatch(/^The specified "LocalSubnet" \(.+\) is invalid\.$/);
    expect(inList.ok ? '' : inList.message).toContain(pool as string);
    expect(sim.server(target.ipsecServerId)?.history).toEqual([]);
  });
});

describe('ClientToken idempotency', () => {
  it('replays the first response for the same token and parameters, and applies once', async () => {
    // A long configuring window: a retried apply must be answered with its replay, not Configuring.
    const sim = await startFleet({ configuringMs: 10_000 });
    const target = ownedBy(sim, keyA);
    const client = clientFor(sim, keyA);
    const params = update(target.ipsecServerId, {
      IpsecServerName: 'once_only',
      ClientToken: 'tok-replay-1',
    });

    const first = await outcome(client.call('UpdateIpsecServer', params));
    expect(label(first)).toBe('OK');
    const second = await outcome(client.call('UpdateIpsecServer', params));
    const third = await outcome(
      sims.client(sim, { credentials: keyA, signatureVersion: 'v1' }).call('UpdateIpsecServer', params),
    );
    expect(second).toEqual(first);
    expect(label(third)).toBe('OK');
    expect(third.requestId).toBe(first.requestId);

    const view = sim.server(target.ipsecServerId);
    expect(view?.history).toHaveLength(1);
    expect(view?.history[0]).toMatchObject({ clientToken: 'tok-replay-1', requestId: first.requestId });
    expect(sim.stats()).toMatchObject({ applies: 1, idempotentReplays: 2 });

    // A new token is a new request: the gateway is configuring.
    const fresh = await outcome(client.call('UpdateIpsecServer', { ...params, ClientToken: 'tok-replay-2' }));
    expectError(fresh, 400, 'VpnGateway.Configuring');
  });

  it('answers IdempotentParameterMismatch for the same token with other parameters', async () => {
    const sim = await startFleet();
    const target = ownedBy(sim, keyA);
    const client = clientFor(sim, keyA);
    const params = update(target.ipsecServerId, {
      IpsecServerName: 'first_value',
      ClientToken: 'tok-mismatch',
    });
    expect(await labelOf(client.call('UpdateIpsecServer', params))).toBe('OK');
    await waitUntilNotConfiguring(sim, target.ipsecServerId);

    const other = await outcome(
      client.call('UpdateIpsecServer', { ...params, IpsecServerName: 'second_value' }),
    );
    expectError(other, 400, 'IdempotentParameterMismatch');
    const extra = await outcome(client.call('UpdateIpsecServer', { ...params, EffectImmediately: 'true' }));
    expectError(extra, 400, 'IdempotentParameterMismatch');
    expect(sim.server(target.ipsecServerId)?.config.IpsecServerName).toBe('first_value');
    expect(sim.server(target.ipsecServerId)?.history).toHaveLength(1);
    expect(sim.stats()).toMatchObject({ applies: 1, idempotentReplays: 0 });
  });

  it('compares a reused token’s parameters as sent: the same values written otherwise are a mismatch', async () => {
    const sim = await startFleet();
    const target = ownedBy(sim, keyA);
    const client = clientFor(sim, keyA);
    const params = update(target.ipsecServerId, {
      LocalSubnet: '192.168.10.0/24,192.168.11.0/24',
      IkeConfig: '{"IkeVersion":"ikev2","IkeMode":"main"}',
      ClientToken: 'tok-as-sent',
    });
    const first = await outcome(client.call('UpdateIpsecServer', params));
    expect(label(first)).toBe('OK');

    // Byte for byte the same business parameters: a replay, whatever envelope carries them
    // (another signature version, an explicit DryRun=false).
    const retry = await outcome(client.call('UpdateIpsecServer', params));
    expect(retry).toEqual(first);
    const v1 = sims.client(sim, { credentials: keyA, signatureVersion: 'v1' });
    expect((await outcome(v1.call('UpdateIpsecServer', params))).requestId).toBe(first.requestId);
    const explicit = await outcome(client.call('UpdateIpsecServer', { ...params, DryRun: 'false' }));
    expect(explicit.requestId).toBe(first.requestId);

    // Equal once parsed, different as sent: the cloud compares what it received.
    const reordered = await outcome(
      client.call('UpdateIpsecServer', { ...params, IkeConfig: '{"IkeMode":"main","IkeVersion":"ikev2"}' }),
    );
    expectError(reordered, 400, 'IdempotentParameterMismatch');
    const spaced = await outcome(
      client.call('UpdateIpsecServer', { ...params, LocalSubnet: '192.168.10.0/24, 192.168.11.0/24' }),
    );
    expectError(spaced, 400, 'IdempotentParameterMismatch');

    expect(sim.server(target.ipsecServerId)?.history).toHaveLength(1);
    expect(sim.stats()).toMatchObject({ applies: 1, idempotentReplays: 3 });
  });

  it('keeps tokens per access key', async () => {
    const sim = await startFleet();
    const a = ownedBy(sim, keyA);
    const b = ownedBy(sim, keyB);
    const token = 'tok-shared-by-two-keys';
    expect(
      await labelOf(
        clientFor(sim, keyA).call(
          'UpdateIpsecServer',
          update(a.ipsecServerId, { IpsecServerName: 'by_a', ClientToken: token }),
        ),
      ),
    ).toBe('OK');
    expect(
      await labelOf(
        clientFor(sim, keyB).call(
          'UpdateIpsecServer',
          update(b.ipsecServerId, { IpsecServerName: 'by_b', ClientToken: token }),
        ),
      ),
    ).toBe('OK');
    expect(sim.server(b.ipsecServerId)?.config.IpsecServerName).toBe('by_b');
    expect(sim.stats()).toMatchObject({ applies: 2, idempotentReplays: 0 });
  });
});

describe('throttling', () => {
  it('limits calls per key and action with Throttling.User, and recovers', async () => {
    const sim = await startFleet({ qps: 2 });
    const a = clientFor(sim, keyA);
    const burst: Outcome[] = [];
    const started = performance.now();
    for (let index = 0; index < 10; index++)
      burst.push(await outcome(a.call('ListIpsecServers', { RegionId: SHANGHAI })));
    const elapsedSeconds = (performance.now() - started) / 1000;
    const labels = burst.map(label);
    expect(labels[0]).toBe('OK');
    const throttled = burst.filter((result) => label(result) === 'Throttling.User');
    expect(throttled.length).toBeGreaterThanOrEqual(1);
    // At most a full bucket (qps) plus what refilled while the burst ran, however slow the machine.
    const admitted = labels.filter((l) => l === 'OK').length;
    expect(admitted).toBeLessThanOrEqual(2 + Math.ceil(elapsedSeconds * 2));
    expect(new Set(labels)).toEqual(new Set(['OK', 'Throttling.User']));
    expectError(throttled[0] as Outcome, 400, 'Throttling.User', MESSAGES.throttled);
    expect(sim.stats().byCode['Throttling.User']).toBe(throttled.length);

    // Another action of the same key, and the same action of another key, have their own buckets.
    expect(await labelOf(a.call('DescribeRegions', {}))).toBe('OK');
    expect(await labelOf(clientFor(sim, keyB).call('ListIpsecServers', { RegionId: SHANGHAI }))).toBe('OK');

    await sleep(1_100);
    expect(await labelOf(a.call('ListIpsecServers', { RegionId: SHANGHAI }))).toBe('OK');
  });

  it('a throttled apply applies nothing', async () => {
    const sim = await startFleet({ qps: 1 });
    const client = clientFor(sim, keyA);
    const servers = [ownedBy(sim, keyA, 0), ownedBy(sim, keyA, 1)];
    const results: string[] = [];
    for (let round = 0; round < 3; round++) {
      for (const server of servers) {
        results.push(
          await labelOf(
            client.call('UpdateIpsecServer', update(server.ipsecServerId, { IpsecServerName: `r${round}` })),
          ),
        );
      }
    }
    expect(results[0]).toBe('OK');
    expect(results).toContain('Throttling.User');
    const historyLength = servers.reduce(
      (sum, s) => sum + (sim.server(s.ipsecServerId)?.history.length ?? 0),
      0,
    );
    expect(historyLength).toBe(results.filter((r) => r === 'OK').length);
    expect(sim.stats().applies).toBe(historyLength);
  });
});
