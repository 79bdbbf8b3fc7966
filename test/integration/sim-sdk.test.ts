/**
 * The acceptance matrix: the official V3 SDK (@alicloud/vpc20160428), the official V1 client
 * (@alicloud/pop-core, GET and POST) and our own client each list, dry-run, apply, meet the
 * configuring window, a financial lock, Forbidden, IllegalParam.LocalSubnet, ClientToken replay
 * and mismatch, throttling and the signature errors they can produce, against a real simulator.
 */
import { createRequire } from 'node:module';
import { Config as OpenApiConfig } from '@alicloud/openapi-client';
import RPCClient from '@alicloud/pop-core';
import type VpcSdkModule from '@alicloud/vpc20160428';
import { describe, expect, it } from 'vitest';
import type { Credentials } from '../../src/aliyun/types.js';
import {
  API_VERSION,
  keyA,
  keyB,
  label,
  type Outcome,
  outcome,
  outcomeOfError,
  type Sim,
  type SimServer,
  useSimulators,
} from '../support/sim-harness.js';

// CommonJS with `exports.default = Client`; see aliyun-client.test.ts.
const vpcSdk = createRequire(import.meta.url)('@alicloud/vpc20160428') as typeof VpcSdkModule;
const {
  default: VpcClient,
  UpdateIpsecServerRequest,
  ListIpsecServersRequest,
  DescribeRegionsRequest,
} = vpcSdk;

const sims = useSimulators();
const REGION = 'cn-shanghai';
const STS_TOKEN = 'CAIS+bravo/sts==';

type Params = Record<string, string | string[]>;

interface Caller {
  call(action: string, params: Params): Promise<Outcome>;
}

interface Driver {
  name: string;
  /** Whether the HTTP status reaches the caller (pop-core keeps only the body). */
  reportsStatus: boolean;
  make(sim: Sim, credentials: Credentials): Caller;
}

const BOOLEAN_FIELDS = new Set(['DryRun', 'EffectImmediately', 'PskEnabled']);

/** Wire-style PascalCase parameters → the SDK model's camelCase fields and types. */
function toModelFields(params: Params): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(params)) {
    const field = name.charAt(0).toLowerCase() + name.slice(1);
    if (BOOLEAN_FIELDS.has(name)) fields[field] = value === 'true';
    else if (name === 'MaxResults') fields[field] = Number(value);
    else fields[field] = value;
  }
  return fields;
}

function officialVpcClient(sim: Sim, credentials: Credentials) {
  return new VpcClient(
    new OpenApiConfig({
      accessKeyId: credentials.accessKeyId,
      accessKeySecret: credentials.accessKeySecret,
      securityToken: credentials.securityToken,
      endpoint: new URL(sim.endpoint).host,
      protocol: 'http',
      regionId: REGION,
    }) as never,
  );
}

/** The SDK resolves with `{ body: Model }`; its toMap() gives the wire names back. */
async function sdkOutcome(
  promise: Promise<{ body?: { toMap(): Record<string, unknown> } }>,
): Promise<Outcome> {
  try {
    const response = await promise;
    return outcome(Promise.resolve(response.body?.toMap()));
  } catch (error) {
    return outcomeOfError(error);
  }
}

const officialV3: Driver = {
  name: 'official V3 SDK @alicloud/vpc20160428',
  reportsStatus: true,
  make(sim, credentials) {
    const client = officialVpcClient(sim, credentials);
    return {
      call(action, params) {
        const fields = toModelFields(params);
        switch (action) {
          case 'UpdateIpsecServer':
            return sdkOutcome(client.updateIpsecServer(new UpdateIpsecServerRequest(fields)));
          case 'ListIpsecServers':
            return sdkOutcome(client.listIpsecServers(new ListIpsecServersRequest(fields)));
          case 'DescribeRegions':
            return sdkOutcome(client.describeRegions(new DescribeRegionsRequest(fields)));
          default:
            throw new Error(`test: the SDK driver has no ${action}`);
        }
      },
    };
  },
};

function popCore(method: 'GET' | 'POST'): Driver {
  return {
    name: `official V1 client @alicloud/pop-core ${method}`,
    reportsStatus: false,
    make(sim, credentials) {
      const client = new RPCClient({
        accessKeyId: credentials.accessKeyId,
        accessKeySecret: credentials.accessKeySecret,
        securityToken: credentials.securityToken,
        endpoint: sim.endpoint,
        apiVersion: API_VERSION,
      } as RPCClient.Config);
      // Its keep-alive agent would hold sockets open past the test.
      sims.defer(() =>
        (client as unknown as { keepAliveAgent: { destroy(): void } }).keepAliveAgent.destroy(),
      );
      return {
        call: (action, params) => outcome(client.request(action, params, { method, timeout: 5_000 })),
      };
    },
  };
}

function ourClient(version: 'v3' | 'v1'): Driver {
  return {
    name: `our AliyunClient ${version}`,
    reportsStatus: true,
    make(sim, credentials) {
      const client = sims.client(sim, { credentials, signatureVersion: version });
      return {
        call(action, params) {
          const wire: Record<string, string> = {};
          for (const [name, value] of Object.entries(params)) {
            if (!Array.isArray(value)) wire[name] = value;
            else for (const [index, item] of value.entries()) wire[`${name}.${index + 1}`] = item;
          }
          return outcome(client.call(action, wire));
        },
      };
    },
  };
}

const drivers: Driver[] = [officialV3, popCore('GET'), popCore('POST'), ourClient('v3'), ourClient('v1')];

async function startFleet(faults: Record<string, unknown> = {}): Promise<Sim> {
  return sims.start({
    servers: 6,
    regions: [REGION, 'cn-hangzhou'],
    accessKeys: [keyA, { ...keyB, securityToken: STS_TOKEN }],
    seed: 23,
    faults: { configuringMs: 0, ...faults },
  });
}

function ownedBy(sim: Sim, key: Credentials, index = 0): SimServer {
  const server = sim.servers.filter((s) => s.ownerAccessKeyId === key.accessKeyId && s.regionId === REGION)[
    index
  ];
  if (!server) throw new Error(`test setup: no server #${index} of ${key.accessKeyId}`);
  return server;
}

function idsOf(result: Outcome): string[] {
  if (!result.ok) throw new Error(`test: expected a success, got ${label(result)}: ${result.message}`);
  return (result.body.IpsecServers as Array<{ IpsecServerId: string }>).map((s) => s.IpsecServerId).sort();
}

describe.each(drivers)('$name', (driver) => {
  function expectCode(result: Outcome, code: string, status: number, message?: string): void {
    expect(label(result)).toBe(code);
    if (result.ok) return;
    if (driver.reportsStatus) expect(result.status).toBe(status);
    if (message !== undefined) expect(result.message).toBe(message);
    expect(result.requestId).toEqual(expect.any(String));
  }

  function updateOf(server: SimServer, params: Params = {}): Params {
    return { RegionId: server.regionId, IpsecServerId: server.ipsecServerId, ...params };
  }

  it('lists the caller’s servers, by region and by id, and describes regions', async () => {
    const sim = await startFleet();
    const caller = driver.make(sim, keyA);
    const mine = sim.servers.filter((s) => s.ownerAccessKeyId === keyA.accessKeyId && s.regionId === REGION);
    expect(idsOf(await caller.call('ListIpsecServers', { RegionId: REGION }))).toEqual(
      mine.map((s) => s.ipsecServerId).sort(),
    );
    const one = mine[0] as SimServer;
    expect(
      idsOf(await caller.call('ListIpsecServers', { RegionId: REGION, IpsecServerId: [one.ipsecServerId] })),
    ).toEqual([one.ipsecServerId]);
    const regions = await caller.call('DescribeRegions', {});
    expect(label(regions)).toBe('OK');
    expect(JSON.stringify(regions.ok ? regions.body : {})).toContain('"cn-hangzhou"');
  });

  it('dry-runs without changing anything, applies, and then meets VpnGateway.Configuring', async () => {
    const sim = await startFleet({ configuringMs: 10_000 });
    const caller = driver.make(sim, keyA);
    const server = ownedBy(sim, keyA);
    const before = sim.server(server.ipsecServerId)?.config;

    const dryRun = await caller.call(
      'UpdateIpsecServer',
      updateOf(server, { IpsecServerName: 'sdk_name', DryRun: 'true' }),
    );
    expectCode(dryRun, 'DryRunOperation', 400, 'Request validation has been passed with DryRun flag set.');
    expect(sim.server(server.ipsecServerId)?.config).toEqual(before);

    const applied = await caller.call(
      'UpdateIpsecServer',
      updateOf(server, { IpsecServerName: 'sdk_name', LocalSubnet: '192.168.99.0/24' }),
    );
    expect(label(applied)).toBe('OK');
    expect(applied.requestId).toBe(sim.server(server.ipsecServerId)?.history[0]?.requestId);
    const listed = await caller.call('ListIpsecServers', {
      RegionId: REGION,
      IpsecServerId: [server.ipsecServerId],
    });
    expect(listed.ok && listed.body.IpsecServers).toMatchObject([
      { IpsecServerId: server.ipsecServerId, IpsecServerName: 'sdk_name', LocalSubnet: '192.168.99.0/24' },
    ]);

    for (const DryRun of ['true', 'false']) {
      const busy = await caller.call(
        'UpdateIpsecServer',
        updateOf(server, { IpsecServerName: 'again', DryRun }),
      );
      expectCode(busy, 'VpnGateway.Configuring', 400, 'The specified service is configuring.');
    }
    expect(sim.server(server.ipsecServerId)?.history).toHaveLength(1);
  });

  it('meets VpnGateway.FinancialLocked, Forbidden and IllegalParam.LocalSubnet', async () => {
    const sim = await startFleet();
    const caller = driver.make(sim, keyA);
    const [locked, free] = [ownedBy(sim, keyA, 0), ownedBy(sim, keyA, 1)];
    sim.setFaults({ financialLocked: [locked.ipsecServerId] });
    expectCode(
      await caller.call(
        'UpdateIpsecServer',
        updateOf(locked, { IpsecServerName: 'x_locked', DryRun: 'true' }),
      ),
      'VpnGateway.FinancialLocked',
      400,
      'The specified service is financial locked.',
    );

    const foreign = ownedBy(sim, { ...keyB }, 0);
    expectCode(
      await caller.call('UpdateIpsecServer', updateOf(foreign, { IpsecServerName: 'x_taken' })),
      'Forbidden',
      403,
      'User not authorized to operate on the specified resource.',
    );

    expectCode(
      await caller.call(
        'UpdateIpsecServer',
        updateOf(free, { LocalSubnet: '172.20.4.0/24', ClientIpPool: '172.20.0.0/16' }),
      ),
      'IllegalParam.LocalSubnet',
      400,
      'The specified "LocalSubnet" (172.20.4.0/24) is invalid.',
    );
    expect(sim.stats().applies).toBe(0);
  });

  it('replays a ClientToken with the same parameters and refuses it with others', async () => {
    const sim = await startFleet({ configuringMs: 10_000 });
    const caller = driver.make(sim, keyA);
    const server = ownedBy(sim, keyA);
    const params = updateOf(server, { IpsecServerName: 'token_name', ClientToken: 'tok-sdk-1' });
    const first = await caller.call('UpdateIpsecServer', params);
    expect(label(first)).toBe('OK');
    const replay = await caller.call('UpdateIpsecServer', params);
    expect(label(replay)).toBe('OK');
    expect(replay.requestId).toBe(first.requestId);
    expect(sim.server(server.ipsecServerId)?.history).toHaveLength(1);
    expect(sim.stats().idempotentReplays).toBe(1);

    expectCode(
      await caller.call('UpdateIpsecServer', { ...params, IpsecServerName: 'other_name' }),
      'IdempotentParameterMismatch',
      400,
    );
    expect(sim.server(server.ipsecServerId)?.config.IpsecServerName).toBe('token_name');
  });

  it('is throttled with Throttling.User beyond qps', async () => {
    const sim = await startFleet({ qps: 1 });
    const caller = driver.make(sim, keyA);
    const results: Outcome[] = [];
    for (let index = 0; index < 6; index++)
      results.push(await caller.call('ListIpsecServers', { RegionId: REGION }));
    expect(label(results[0] as Outcome)).toBe('OK');
    const throttled = results.find((result) => label(result) === 'Throttling.User');
    expect(throttled).toBeDefined();
    expectCode(throttled as Outcome, 'Throttling.User', 400, 'Request was denied due to user flow control.');
  });

  it('gets SignatureDoesNotMatch for a wrong secret and InvalidAccessKeyId.NotFound for an unknown key', async () => {
    const sim = await startFleet();
    const wrongSecret = driver.make(sim, {
      accessKeyId: keyA.accessKeyId,
      accessKeySecret: 'not-the-secret',
    });
    expectCode(
      await wrongSecret.call('ListIpsecServers', { RegionId: REGION }),
      'SignatureDoesNotMatch',
      400,
    );
    const unknownKey = driver.make(sim, {
      accessKeyId: 'LTAI5tUnknown000',
      accessKeySecret: keyA.accessKeySecret,
    });
    expectCode(
      await unknownKey.call('ListIpsecServers', { RegionId: REGION }),
      'InvalidAccessKeyId.NotFound',
      404,
    );
  });

  it('is accepted with the STS token configured for its key', async () => {
    const sim = await startFleet();
    const caller = driver.make(sim, { ...keyB, securityToken: STS_TOKEN });
    const mine = sim.servers.filter((s) => s.ownerAccessKeyId === keyB.accessKeyId && s.regionId === REGION);
    expect(idsOf(await caller.call('ListIpsecServers', { RegionId: REGION }))).toEqual(
      mine.map((s) => s.ipsecServerId).sort(),
    );
  });
});

describe('the official V3 SDK reads the simulator’s answers into its models', () => {
  it('ListIpsecServers: typed servers with nested IkeConfig/IpsecConfig, paging by NextToken', async () => {
    const sim = await sims.start({ servers: 5, regions: [REGION], seed: 31 });
    const client = officialVpcClient(sim, {
      accessKeyId: sim.accessKeyId,
      accessKeySecret: sim.accessKeySecret,
    });
    const seen: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const response = await client.listIpsecServers(
        new ListIpsecServersRequest({ regionId: REGION, maxResults: 2, nextToken }),
      );
      pages++;
      const body = response.body;
      expect(response.statusCode).toBe(200);
      expect(body?.requestId).toEqual(expect.any(String));
      expect(body?.totalCount).toBe(5);
      expect(body?.maxResults).toBe(2);
      for (const server of body?.ipsecServers ?? []) {
        seen.push(server.ipsecServerId as string);
        expect(server.regionId).toBe(REGION);
        expect(server.ikeConfig?.ikeVersion).toMatch(/^ikev[12]$/);
        expect(typeof server.ikeConfig?.ikeLifetime).toBe('number');
        expect(typeof server.ipsecConfig?.ipsecEncAlg).toBe('string');
        expect(typeof server.pskEnabled).toBe('boolean');
        expect(server.localSubnet).toMatch(/\//);
      }
      nextToken = body?.nextToken || undefined;
    } while (nextToken && pages < 10);
    expect(pages).toBe(3);
    expect(seen.sort()).toEqual(sim.servers.map((s) => s.ipsecServerId).sort());
  });

  it('DescribeRegions: Regions.Region[].RegionId', async () => {
    const sim = await sims.start({ servers: 1, regions: [REGION, 'cn-hangzhou', 'ap-southeast-1'] });
    const client = officialVpcClient(sim, {
      accessKeyId: sim.accessKeyId,
      accessKeySecret: sim.accessKeySecret,
    });
    const response = await client.describeRegions(new DescribeRegionsRequest({}));
    const ids = (response.body?.regions?.region ?? []).map((region) => region.regionId);
    expect(ids).toEqual(expect.arrayContaining([REGION, 'cn-hangzhou', 'ap-southeast-1']));
  });

  it('UpdateIpsecServer: a success is a body with the RequestId', async () => {
    const sim = await sims.start({ servers: 1, regions: [REGION] });
    const server = sim.servers[0] as SimServer;
    const client = officialVpcClient(sim, {
      accessKeyId: sim.accessKeyId,
      accessKeySecret: sim.accessKeySecret,
    });
    const response = await client.updateIpsecServer(
      new UpdateIpsecServerRequest({
        regionId: REGION,
        ipsecServerId: server.ipsecServerId,
        ikeConfig: '{"IkeVersion":"ikev2","IkeLifetime":600}',
        effectImmediately: true,
      }),
    );
    expect(response.statusCode).toBe(200);
    expect(response.body?.requestId).toBe(sim.server(server.ipsecServerId)?.history[0]?.requestId);
    expect(sim.server(server.ipsecServerId)?.config).toMatchObject({
      IkeConfig: { IkeVersion: 'ikev2', IkeLifetime: 600 },
      EffectImmediately: true,
    });
  });
});
