/**
 * `ipsec-fleet api` (the built CLI) against the real simulator over HTTP: the simulator verifies
 * every signature, so a passed dry run proves the CLI signed the call correctly.
 */
import { describe, expect, it } from 'vitest';
import { percentEncode } from '../../src/aliyun/percent-encode.js';
import { freePort } from '../../src/redis/private-server.js';
import { simPskLabel } from '../../src/sim/psk-label.js';
import { runCli } from '../support/cli.js';
import { sendJson, startHttpServer } from '../support/http-server.js';
import {
  credentialsEnvOf,
  dryRunCliArgs,
  type Sim,
  type SimServer,
  useSimulators,
} from '../support/sim-harness.js';

const credentialsEnv = credentialsEnvOf;

const dryRunArgs = dryRunCliArgs;

describe('ipsec-fleet api', () => {
  const sims = useSimulators();

  async function startSim(): Promise<{ sim: Sim; server: SimServer }> {
    const sim = await sims.start({ servers: 2, seed: 7, faults: { configuringMs: 0 } });
    return { sim, server: sim.servers[0] as SimServer };
  }

  it.each([
    ['V3 (the default)', []],
    ['--signature v1', ['--signature', 'v1']],
  ])('exits 0 on a dry run the simulator verified and passed, signed %s', async (_label, extra) => {
    const { sim, server } = await startSim();
    const result = await runCli(dryRunArgs(server, sim.endpoint, extra), credentialsEnv(sim));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      HttpStatus: 400,
      Code: 'DryRunOperation',
      Message: 'Request validation has been passed with DryRun flag set.',
      RequestId: expect.any(String),
    });
    // Counted as a passed dry run: the signature verified and the server was found in its region.
    expect(sim.stats()).toMatchObject({
      requests: 1,
      byAction: { UpdateIpsecServer: 1 },
      byCode: { DryRunOperation: 1 },
      dryRuns: 1,
      applies: 0,
    });
    expect(sim.server(server.ipsecServerId)?.history).toEqual([]);
  });

  it('prints an API error and exits 3', async () => {
    const { sim, server } = await startSim();
    sim.setFaults({ busyRate: 1 });
    const result = await runCli(dryRunArgs(server, sim.endpoint), credentialsEnv(sim));
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout)).toEqual({
      HttpStatus: 400,
      Code: 'VpnGateway.Configuring',
      Message: 'The specified service is configuring.',
      RequestId: expect.any(String),
    });
    expect(sim.stats()).toMatchObject({ requests: 1, byCode: { 'VpnGateway.Configuring': 1 }, dryRuns: 0 });
  });

  it('rejects a bad UpdateIpsecServer parameter with exit 2, naming it, and sends nothing', async () => {
    const { sim, server } = await startSim();
    const before = sim.stats().requests;
    const result = await runCli(
      dryRunArgs(server, sim.endpoint, ['--LocalSubnet', '10.0.0.5/24']),
      credentialsEnv(sim),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('LocalSubnet');
    expect(result.stderr).toContain('network address');
    expect(sim.stats().requests).toBe(before);
  });

  it('names the missing credential variable with exit 2, and sends nothing', async () => {
    const { sim, server } = await startSim();
    const before = sim.stats().requests;
    const result = await runCli(dryRunArgs(server, sim.endpoint), {});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('ALIBABA_CLOUD_ACCESS_KEY_ID');
    expect(sim.stats().requests).toBe(before);
  });

  it('rejects a bad flag value with exit 2, naming the flag', async () => {
    const { sim, server } = await startSim();
    const before = sim.stats().requests;
    const result = await runCli(dryRunArgs(server, sim.endpoint, ['--signature', 'v2']), credentialsEnv(sim));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('signature');
    expect(sim.stats().requests).toBe(before);
  });

  it('refuses an action name that is not one with exit 2, naming it, and sends nothing', {
    timeout: 60_000,
  }, async () => {
    const { sim, server } = await startSim();
    const results = await Promise.all(
      ['Bogus$Action', 'describeRegions'].map((action) =>
        runCli(
          ['api', action, '--RegionId', server.regionId, '--endpoint', sim.endpoint],
          credentialsEnv(sim),
        ),
      ),
    );
    for (const result of results) {
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('Action: must be an API action name');
    }
    expect(sim.stats().requests).toBe(0);
  });

  it('passes other actions through as given', async () => {
    const { sim, server } = await startSim();
    const result = await runCli(
      ['api', 'DescribeRegions', '--RegionId', server.regionId, '--endpoint', sim.endpoint],
      credentialsEnv(sim),
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ RequestId: expect.any(String) });
    expect(sim.stats()).toMatchObject({ requests: 1, byAction: { DescribeRegions: 1 }, byCode: { OK: 1 } });
  });

  it('prints the Psks ListIpsecServers answers as labels, in clear only with --show-secrets', {
    timeout: 60_000,
  }, async () => {
    const { sim } = await startSim();
    const list = ['api', 'ListIpsecServers', '--RegionId', 'cn-shanghai', '--endpoint', sim.endpoint];
    const shown = await runCli([...list, '--show-secrets'], credentialsEnv(sim));
    expect(shown.code, shown.stderr).toBe(0);
    const psks = (JSON.parse(shown.stdout) as { IpsecServers: Array<{ Psk: string }> }).IpsecServers.map(
      (server) => server.Psk,
    );
    expect(psks.length).toBeGreaterThan(0);

    const hidden = await runCli(list, credentialsEnv(sim));
    expect(hidden.code, hidden.stderr).toBe(0);
    const listed = (JSON.parse(hidden.stdout) as { IpsecServers: Array<{ Psk: string }> }).IpsecServers;
    expect(listed.map((server) => server.Psk)).toEqual(
      psks.map(() => expect.stringMatching(/^hmac:[0-9a-f]{16}$/)),
    );
    for (const psk of psks) expect(hidden.stdout + hidden.stderr).not.toContain(psk);

    const help = await runCli(['api', '--help']);
    expect(help.stdout).toContain('--show-secrets');
  });

  it('never takes a Psk from a flag: --Psk is refused (exit 2, nothing sent), --psk-file reads a file or stdin', {
    timeout: 60_000,
  }, async () => {
    const { sim, server } = await startSim();
    const psk = 'Argv-Psk-Never-Shown-9';
    const refused = await Promise.all(
      [['--Psk', psk], [`--Psk=${psk}`], [`--psk=${psk}`]].map((extra) =>
        runCli(dryRunArgs(server, sim.endpoint, extra), credentialsEnv(sim)),
      ),
    );
    for (const result of refused) {
      expect(result.code).toBe(2);
      expect(result.stdout + result.stderr).not.toContain(psk);
    }
    expect(refused[0]?.stderr).toContain('Psk: is never taken from a flag');
    expect(refused[0]?.stderr).toContain('--psk-file');
    expect(sim.stats().requests).toBe(0);

    const fromStdin = await runCli(
      dryRunArgs(server, sim.endpoint, ['--psk-file', '-']),
      credentialsEnv(sim),
      {
        input: `${psk}\n`,
      },
    );
    expect(fromStdin.stderr).toBe('');
    expect(fromStdin.code).toBe(0);
    expect(JSON.parse(fromStdin.stdout)).toMatchObject({ Code: 'DryRunOperation' });
    // The key as written, its line ending stripped (the simulator keeps its label).
    expect(sim.server(server.ipsecServerId)?.dryRuns.at(-1)?.params).toMatchObject({ Psk: simPskLabel(psk) });
    const tooShort = await runCli(
      dryRunArgs(server, sim.endpoint, ['--psk-file', '-']),
      credentialsEnv(sim),
      {
        input: '',
      },
    );
    expect(tooShort.code).toBe(2);
    expect(tooShort.stderr).toContain('Psk');
  });

  it('omits a Psk the cloud quotes in its refusal, unless --show-secrets', async () => {
    const { server } = await startSim();
    const psk = 'Quoted-Psk (never shown)!';
    const cloud = await startHttpServer((_request, response) =>
      sendJson(response, 400, {
        Code: 'InvalidParameter.Psk',
        Message: `Psk "${psk}" refused; sent as ${percentEncode(psk)}`,
        RequestId: 'req-quoted',
      }),
    );
    try {
      const env = {
        ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI5tQuoting',
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'unused-secret',
      };
      const [omitted, shown] = await Promise.all(
        [[], ['--show-secrets']].map((extra) =>
          runCli(dryRunArgs(server, cloud.origin, ['--psk-file', '-', ...extra]), env, { input: psk }),
        ),
      );
      expect(omitted?.code).toBe(3);
      expect(JSON.parse(omitted?.stdout ?? '')).toMatchObject({
        Code: 'InvalidParameter.Psk',
        Message: 'Psk "[omitted]" refused; sent as [omitted]',
        RequestId: 'req-quoted',
      });
      expect(`${omitted?.stdout}${omitted?.stderr}`).not.toContain(psk);
      expect(shown?.code).toBe(3);
      expect(JSON.parse(shown?.stdout ?? '').Message).toContain(psk);
    } finally {
      await cloud.close();
    }
  });

  it('exits 4 with TRANSPORT_REFUSED when nothing listens', async () => {
    const port = await freePort();
    const result = await runCli(
      ['api', 'DescribeRegions', '--endpoint', `http://127.0.0.1:${port}`, '--timeout', '2000'],
      {
        ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI5tNobodyListens',
        ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'unused-secret',
      },
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('TRANSPORT_REFUSED');
  });

  it('never prints the secret, on a passed dry run or an API error', async () => {
    const { sim, server } = await startSim();
    const passed = await runCli(dryRunArgs(server, sim.endpoint), credentialsEnv(sim));
    expect(passed.code).toBe(0);
    sim.setFaults({ busyRate: 1 });
    const refused = await runCli(dryRunArgs(server, sim.endpoint), credentialsEnv(sim));
    expect(refused.code).toBe(3);
    for (const result of [passed, refused]) {
      expect(result.stdout + result.stderr).not.toContain(sim.accessKeySecret);
    }
  });
});
