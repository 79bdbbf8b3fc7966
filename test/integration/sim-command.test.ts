/**
 * `ipsec-fleet sim` as a process (start line, a call, SIGTERM, bad flags) and `ipsec-fleet api`
 * against the real simulator.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

async function spawnSim(args: string[], env: NodeJS.ProcessEnv = {}): Promise<SimProcess> {
  const proc = await startSimProcess(args, undefined, env);
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

  it('exits 2 on a --fleet file it cannot use: unreadable, not JSON, or breaking the schema', {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipf-sim-fleet-'));
    try {
      const notJson = join(dir, 'not-json.json');
      writeFileSync(notJson, '{"Psk": Pk7Q}');
      const badSchema = join(dir, 'bad-schema.json');
      writeFileSync(badSchema, JSON.stringify({ version: 2, servers: [] }));
      const results = await Promise.all(
        [notJson, dir, badSchema].map((path) => runCli(['sim', '--fleet', path])),
      );
      for (const result of results) {
        expect(result.code, result.stderr).toBe(2);
        expect(result.stdout).toBe('');
      }
      expect(results[0]?.stderr).toContain('is not JSON');
      // JSON.parse's own message would quote the Psk next to the error.
      expect(results[0]?.stderr).not.toContain('Pk7Q');
      expect(results[1]?.stderr).toContain('cannot read fleet file');
      expect(results[2]?.stderr).toContain('version');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 naming --port when the port is taken', { timeout: 60_000 }, async () => {
    const first = await spawnSim(['--port', '0', '--servers', '1']);
    const port = new URL(first.info.endpoint).port;
    const second = await runCli(['sim', '--port', port, '--servers', '1']);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`--port: ${port} is in use by another process on this address`);
  });

  it('takes its own key from IPSEC_FLEET_SIM_* variables, never its secret from a flag, nor prints it', {
    timeout: 60_000,
  }, async () => {
    const secret = 'Sim-Own-Secret-4Z';
    const sim = await spawnSim(
      ['--port', '0', '--servers', '2', '--seed', '7', '--access-key-id', 'LTAI5tOwnKey'],
      {
        IPSEC_FLEET_SIM_ACCESS_KEY_SECRET: secret,
      },
    );
    expect(sim.info.accessKeyId).toBe('LTAI5tOwnKey');
    expect(sim.stdout()).not.toContain(secret);
    expect(sim.info).not.toHaveProperty('accessKeySecret');
    const first = serversOf(sim)[0] as SimServer;
    const client = new AliyunClient({
      credentials: { accessKeyId: 'LTAI5tOwnKey', accessKeySecret: secret },
      endpoint: sim.info.endpoint,
      timeoutMs: 5_000,
    });
    try {
      expect(label(await outcome(client.call('ListIpsecServers', { RegionId: first.regionId })))).toBe('OK');
    } finally {
      await client.close();
    }
    expect(await sim.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(sim.stdout() + sim.stderr()).not.toContain(secret);

    const [secretFlag, tokenFlag, halfKey] = await Promise.all([
      runCli(['sim', '--access-key-id', 'LTAI5tOwnKey', '--access-key-secret', secret]),
      runCli(['sim', '--security-token', secret], {
        IPSEC_FLEET_SIM_ACCESS_KEY_ID: 'LTAI5tOwnKey',
        IPSEC_FLEET_SIM_ACCESS_KEY_SECRET: 'x',
      }),
      runCli(['sim', '--access-key-id', 'LTAI5tOwnKey']),
    ]);
    expect(secretFlag.code).toBe(2);
    expect(secretFlag.stderr).toContain('--access-key-secret: is not accepted');
    expect(secretFlag.stderr).toContain('IPSEC_FLEET_SIM_ACCESS_KEY_SECRET');
    expect(tokenFlag.code).toBe(2);
    expect(tokenFlag.stderr).toContain('IPSEC_FLEET_SIM_SECURITY_TOKEN');
    for (const result of [secretFlag, tokenFlag]) expect(result.stdout + result.stderr).not.toContain(secret);
    expect(halfKey.code).toBe(2);
    expect(halfKey.stderr).toContain('IPSEC_FLEET_SIM_ACCESS_KEY_SECRET: is required with --access-key-id');
  });

  it.each([
    [['--fail-rate', '2'], 'fail-rate'],
    [['--servers', 'many'], 'servers'],
    [['--port', '70000'], 'port'],
    [['--host', '999.1.1.1'], '--host: must be an IP address or a host name'],
    // TEST-NET-1: an address no machine of ours has.
    [['--host', '192.0.2.1'], '--host: 192.0.2.1 is not an address of this machine'],
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
    const result = await runCli(
      apiArgs(server, sim.endpoint, ['--signature', 'v1', '--psk-file', '-']),
      { ALIBABA_CLOUD_ACCESS_KEY_ID: sim.accessKeyId, ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'a-rotated-secret' },
      { input: psk },
    );
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
