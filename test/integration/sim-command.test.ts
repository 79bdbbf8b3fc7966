/**
 * `ipsec-fleet sim` as a process (start line, a call, SIGTERM, bad flags) and `ipsec-fleet api`
 * against the real simulator.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AliyunClient } from '../../src/aliyun/client.js';
import { PROCESS_START_TIMEOUT_MS, runCli } from '../support/cli.js';
import {
  credentialsEnvOf,
  dryRunCliArgs,
  label,
  outcome,
  type SimServer,
  useSimulators,
} from '../support/sim-harness.js';
import { type SimProcess, startSimProcess } from '../support/sim-process.js';

const running: SimProcess[] = [];

afterEach(async () => {
  await Promise.all(running.splice(0).map((proc) => proc.stop('SIGKILL')));
});

async function spawnSim(args: string[]): Promise<SimProcess> {
  const proc = await startSimProcess(args);
  running.push(proc);
  return proc;
}

function serversOf(proc: SimProcess): SimServer[] {
  const { servers } = proc.info;
  if (!Array.isArray(servers)) throw new Error(`test: servers is not a list: ${JSON.stringify(servers)}`);
  return servers as SimServer[];
}

// Covers a process start (a hang guard of PROCESS_START_TIMEOUT_MS) and what the test does after.
describe('ipsec-fleet sim', { timeout: PROCESS_START_TIMEOUT_MS + 30_000 }, () => {
  it('prints one JSON line to connect with, serves signed calls, and exits 0 on SIGTERM', async () => {
    const sim = await spawnSim(['--port', '0', '--servers', '3', '--seed', '7']);
    expect(sim.info).toMatchObject({
      endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/),
      accessKeyId: expect.any(String),
      accessKeySecret: expect.any(String),
    });
    const servers = serversOf(sim);
    expect(servers).toHaveLength(3);
    for (const server of servers) {
      expect(server).toMatchObject({
        ipsecServerId: expect.any(String),
        regionId: expect.any(String),
        vpnGatewayId: expect.any(String),
      });
    }

    const first = servers[0] as SimServer;
    const client = new AliyunClient({
      credentials: { accessKeyId: sim.info.accessKeyId, accessKeySecret: sim.info.accessKeySecret },
      endpoint: sim.info.endpoint,
      timeoutMs: 5_000,
    });
    try {
      const result = await outcome(client.call('ListIpsecServers', { RegionId: first.regionId }));
      expect(label(result)).toBe('OK');
      const ids = result.ok
        ? (result.body.IpsecServers as Array<{ IpsecServerId: string }>).map((s) => s.IpsecServerId)
        : [];
      expect(ids).toContain(first.ipsecServerId);
    } finally {
      await client.close();
    }

    const exit = await sim.stop('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(sim.stdout().trim().split('\n')).toHaveLength(1);
    expect(sim.stdout() + sim.stderr()).not.toMatch(/Error|at .*\.js:\d+/);
  });

  it('the same --seed gives the same servers', async () => {
    const [one, two] = await Promise.all([
      spawnSim(['--port', '0', '--servers', '3', '--seed', '7']),
      spawnSim(['--port', '0', '--servers', '3', '--seed', '7']),
    ]);
    expect(serversOf(two)).toEqual(serversOf(one));
    expect(two.info.endpoint).not.toBe(one.info.endpoint);
  });

  it.each([
    [['--fail-rate', '2'], 'fail-rate'],
    [['--servers', 'many'], 'servers'],
    [['--port', '70000'], 'port'],
  ])('exits 2 on a bad flag (%j), naming it', async (args, flag) => {
    const result = await runCli(['sim', ...args]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(flag);
    expect(result.stdout).toBe('');
  });
});

describe('ipsec-fleet api against the simulator', () => {
  const sims = useSimulators();

  // One server's dry run with a real change in it, so the simulator checks it.
  const apiArgs = (server: SimServer, endpoint: string, extra: string[] = []) =>
    dryRunCliArgs(server, endpoint, ['--LocalSubnet', '192.168.60.0/24', ...extra]);

  it.each([
    ['V3', []],
    ['V1 POST', ['--signature', 'v1']],
    ['V1 GET', ['--signature', 'v1', '--method', 'GET']],
  ])('a passed dry run exits 0 (%s)', async (_label, extra) => {
    const sim = await sims.start({ servers: 2, seed: 7, faults: { configuringMs: 0 } });
    const server = sim.servers[0] as SimServer;
    const result = await runCli(apiArgs(server, sim.endpoint, extra), credentialsEnvOf(sim));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ HttpStatus: 400, Code: 'DryRunOperation' });
    expect(sim.stats()).toMatchObject({ dryRuns: 1, applies: 0 });
    expect(sim.server(server.ipsecServerId)?.history).toEqual([]);
  });

  it('a signature refused under V1 prints the error without the signed parameters (a Psk among them)', async () => {
    const sim = await sims.start({ servers: 2, seed: 7 });
    const server = sim.servers[0] as SimServer;
    const psk = 'V1Psk-Never-Printed';
    const result = await runCli(apiArgs(server, sim.endpoint, ['--signature', 'v1', '--Psk', psk]), {
      ALIBABA_CLOUD_ACCESS_KEY_ID: sim.accessKeyId,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'a-rotated-secret',
    });
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({ Code: 'SignatureDoesNotMatch' });
    expect(result.stdout).toContain('server string to sign is: [omitted]');
    for (const form of [psk, encodeURIComponent(psk), encodeURIComponent(encodeURIComponent(psk))])
      expect(result.stdout + result.stderr).not.toContain(form);
  });

  it('a refused call exits 3 and prints the cloud error', async () => {
    const sim = await sims.start({ servers: 2, seed: 7 });
    const server = sim.servers[0] as SimServer;
    sim.setFaults({ financialLocked: [server.ipsecServerId] });
    const result = await runCli(apiArgs(server, sim.endpoint), credentialsEnvOf(sim));
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({ HttpStatus: 400, Code: 'VpnGateway.FinancialLocked' });
  });
});
