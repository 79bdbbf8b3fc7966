import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiApp, buildApp } from '../../src/api/app.js';
import { generateToken, hashToken, TokenStore } from '../../src/api/auth/tokens.js';
import type { AuditEvent } from '../../src/audit/event.js';
import { PSK_FINGERPRINT_PATTERN } from '../../src/ipsec/psk.js';
import { simPskLabel } from '../../src/sim/psk-label.js';
import { type CliResult, runCli } from '../support/cli.js';
import { startHttpServer } from '../support/http-server.js';
import { type Harness, startHarness } from '../support/orchestrator-harness.js';

/**
 * The API verbs of the built binary against a running API (buildApp over real Redis, the
 * simulator and in-process workers): what a user or a CI job sees, exit codes included.
 */

let harness: Harness;
let app: ApiApp;
let api: string;
let home: string;
const viewerToken = generateToken();
const submitterToken = generateToken();
const SECRET_PSK = 'Sup3r-Secret-Psk-7Q';

function server(index: number) {
  const target = harness.sim.servers[index];
  if (!target) throw new Error(`the simulator has no server ${index}`);
  return target;
}

/** A token in a file only its owner can read, as --token-file wants it. */
function tokenFile(token: string): string {
  const path = join(home, `token-${token.slice(-8)}`);
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  return path;
}

/** Every run gets a HOME of its own, so a developer's real config file never leaks in. */
function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runCli(args, { HOME: home, ...env });
}

const asSubmitter = (args: string[]) => cli([...args, '--api', api], { IPSEC_FLEET_TOKEN: submitterToken });
const asViewer = (args: string[]) => cli([...args, '--api', api], { IPSEC_FLEET_TOKEN: viewerToken });

const runCliWithInput = (args: string[], input: string, env: NodeJS.ProcessEnv) =>
  runCli(args, { HOME: home, ...env }, { input });

function jsonLines(text: string): AuditEvent[] {
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as AuditEvent);
}

async function changesOf(ipsecServerId: string) {
  return (await harness.orchestrator.changes.list({ server: ipsecServerId })).changes;
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'ipf-cli-'));
  harness = await startHarness({ sim: { servers: 8, faults: { configuringMs: 50 } }, workers: 0 });
  const tokens = new TokenStore([
    { name: 'vera', roles: ['viewer'], sha256: hashToken(viewerToken) },
    { name: 'sam', roles: ['submitter'], sha256: hashToken(submitterToken) },
  ]);
  app = buildApp({ orchestrator: harness.orchestrator, tokens });
  api = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await app?.close();
  await harness?.close();
  rmSync(home, { recursive: true, force: true });
});

// Each test spawns the binary several times (about half a second each, more on a loaded machine).
describe('without workers: validation, lanes, cancel, auth, configuration', { timeout: 90_000 }, () => {
  it('rejects a bad --set with exit 2 naming the field, and enqueues nothing', async () => {
    const target = server(0);
    const result = await asSubmitter([
      'submit',
      '--server',
      target.ipsecServerId,
      '--region',
      target.regionId,
      '--set',
      'LocalSubnet=10.0.0.5/24',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('LocalSubnet');
    expect(result.stderr).toContain('network address');
    expect(result.stdout).toBe('');
    expect(await changesOf(target.ipsecServerId)).toHaveLength(0);
  });

  it('names every other local mistake with exit 2 and sends nothing', async () => {
    const target = server(0);
    const base = ['submit', '--server', target.ipsecServerId, '--region', target.regionId];
    const cases: Array<[string[], string]> = [
      [['--set', 'EffectImmediately=yes', '--set', 'LocalSubnet=10.9.0.0/24'], 'EffectImmediately'],
      [['--set', 'PskEnabled=false'], 'PskEnabled'],
      [['--set', 'localsubnet=10.9.0.0/24'], 'did you mean LocalSubnet'],
      [['--set', 'IkeConfig={}'], '--ike-config'],
      [['--set', 'LocalSubnet'], 'Name=Value'],
      [['--set', 'LocalSubnet=10.9.0.0/24', '--set', 'LocalSubnet=10.8.0.0/24'], 'more than once'],
      [[], 'must set at least one of'],
      [['--set', 'LocalSubnet=10.9.0.0/24', '--ike-config', join(home, 'missing.json')], '--ike-config'],
    ];
    const results = await Promise.all(cases.map(([extra]) => asSubmitter([...base, ...extra])));
    cases.forEach(([extra, expected], index) => {
      expect(results[index]?.code, extra.join(' ')).toBe(2);
      expect(results[index]?.stderr, extra.join(' ')).toContain(expected);
    });
    const both = await asSubmitter([...base, '--set', 'EffectImmediately=maybe', '--set', 'Foo=1']);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('Foo: unknown field');
    expect(both.stderr).toContain('EffectImmediately: must be true or false');

    const noServer = await asSubmitter([
      'submit',
      '--region',
      'cn-shanghai',
      '--set',
      'LocalSubnet=10.9.0.0/24',
    ]);
    expect(noServer.code).toBe(2);
    expect(noServer.stderr).toContain('--server: is required');

    const badIke = join(home, 'ike.json');
    writeFileSync(badIke, JSON.stringify({ IkeVersion: 'ikev9', IkeLifetime: 999_999 }));
    const ike = await asSubmitter([...base, '--ike-config', badIke]);
    expect(ike.code).toBe(2);
    expect(ike.stderr).toContain('IkeConfig.IkeVersion');
    expect(ike.stderr).toContain('IkeConfig.IkeLifetime');
    expect(await changesOf(target.ipsecServerId)).toHaveLength(0);
  });

  it('names a --set of an Object.prototype name (constructor, __proto__) as an unknown field', async () => {
    const target = server(0);
    const base = ['submit', '--server', target.ipsecServerId, '--region', target.regionId];
    const names = ['constructor', '__proto__', 'toString', 'hasOwnProperty'];
    const results = await Promise.all(
      names.map((name) => asSubmitter([...base, '--set', `${name}=x`, '--json'])),
    );
    names.forEach((name, index) => {
      const result = results[index] as CliResult;
      expect(result.code, name).toBe(2);
      expect(result.stdout, name).toBe('');
      const problem = JSON.parse(result.stderr) as { errors: Array<{ field: string; rule?: string }> };
      expect(problem.errors, name).toEqual([
        { field: name, rule: expect.stringMatching(/^unknown field; --set takes LocalSubnet, /) },
      ]);
    });
    expect(await changesOf(target.ipsecServerId)).toHaveLength(0);
  });

  it('refuses a single-value flag given twice with exit 2, and enqueues nothing', async () => {
    const [first, second] = [server(0), server(3)];
    const submit = await asSubmitter([
      'submit',
      '--server',
      first.ipsecServerId,
      '--server',
      second.ipsecServerId,
      '--region',
      first.regionId,
      '--set',
      'LocalSubnet=10.77.0.0/24',
    ]);
    expect(submit.code).toBe(2);
    expect(submit.stderr).toContain('--server: is given more than once');
    expect(submit.stdout).toBe('');
    expect(await changesOf(first.ipsecServerId)).toHaveLength(0);
    expect(await changesOf(second.ipsecServerId)).toHaveLength(0);

    const list = await asViewer(['list', '--limit', '10', '--limit', '20']);
    expect(list.code).toBe(2);
    expect(list.stderr).toContain('--limit: is given more than once');
    expect(list.stdout).toBe('');
    // A repeatable flag stays repeatable: two --set pairs pass this check (and fail later, on their value).
    const sets = await asSubmitter([
      'submit',
      '--server',
      first.ipsecServerId,
      '--region',
      first.regionId,
      '--set',
      'LocalSubnet=10.77.0.5/24',
      '--set',
      'IpsecServerName=renamed',
    ]);
    expect(sets.code).toBe(2);
    expect(sets.stderr).toContain('LocalSubnet');
    expect(sets.stderr).not.toContain('more than once');
    expect(await changesOf(first.ipsecServerId)).toHaveLength(0);
  });

  it('with --json, reports a flag given twice as the problem JSON of any other bad input', async () => {
    const [first, second] = [server(0), server(3)];
    const twice = ['--server', first.ipsecServerId, '--server', second.ipsecServerId];
    const rest = ['--region', first.regionId, '--set', 'LocalSubnet=10.77.0.0/24'];
    // --json after the repeat as well as before it: the report must not depend on where it stands.
    const [after, before, list, other] = await Promise.all([
      asSubmitter(['submit', ...twice, ...rest, '--json']),
      asSubmitter(['submit', '--json', ...twice, ...rest]),
      asViewer(['list', '--limit', '10', '--limit', '20', '--json']),
      asViewer(['list', '--limit', '0', '--json']),
    ]);
    for (const [result, flag] of [
      [after, '--server'],
      [before, '--server'],
      [list, '--limit'],
    ] as const) {
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(JSON.parse(result.stderr)).toEqual({
        code: 'INVALID_INPUT',
        detail: `invalid options: ${flag}: is given more than once`,
        errors: [{ field: flag, rule: 'is given more than once' }],
      });
      // The values may be secrets; the message names the flag only.
      expect(result.stderr).not.toContain(second.ipsecServerId);
    }
    // The same shape as a value that breaks its rule.
    expect(other.code).toBe(2);
    expect(Object.keys(JSON.parse(other.stderr)).sort()).toEqual(['code', 'detail', 'errors']);
    expect(await changesOf(first.ipsecServerId)).toHaveLength(0);
    expect(await changesOf(second.ipsecServerId)).toHaveLength(0);
  });

  it("with --json, reports commander's own usage mistakes as problem JSON, not as text and help", async () => {
    const target = server(0);
    const submit = ['submit', '--server', target.ipsecServerId, '--region', target.regionId];
    const [unknown, unknownBefore, missingValue, missingArgument, extra, text] = await Promise.all([
      asSubmitter([...submit, '--set', 'LocalSubnet=10.78.0.0/24', '--json', '--Psk=Us4ge-Secret-1']),
      asSubmitter([
        '--Psk=Us4ge-Secret-1',
        ...submit.slice(1),
        '--set',
        'LocalSubnet=10.78.0.0/24',
        '--json',
      ]),
      // Last on the line: commander takes the next word, even a flag, as a flag's value.
      cli(['list', '--api', api, '--json', '--limit'], { IPSEC_FLEET_TOKEN: viewerToken }),
      asViewer(['get', '--json']),
      asViewer(['get', 'chg-a', 'chg-b', '--json']),
      asSubmitter([...submit, '--set', 'LocalSubnet=10.78.0.0/24', '--Psk=Us4ge-Secret-1']),
    ]);
    for (const [result, field] of [
      [unknown, '--Psk'],
      [missingValue, '--limit'],
      [missingArgument, 'id'],
      [extra, 'arguments'],
    ] as const) {
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      const problem = JSON.parse(result.stderr);
      expect(problem.code).toBe('INVALID_INPUT');
      expect(problem.errors).toHaveLength(1);
      expect(problem.errors[0].field).toBe(field);
      expect(problem.errors[0].rule).toMatch(/\S/);
    }
    expect(unknown.stderr).not.toContain('Us4ge-Secret-1');
    // Before the command's name, the flag is the program's: it has no --json, so commander's text.
    expect(unknownBefore.code).toBe(2);
    expect(unknownBefore.stderr).toContain("error: unknown option '--Psk'");
    expect(unknownBefore.stderr).not.toContain('Us4ge-Secret-1');
    // Without --json, commander's text and the help, for a person.
    expect(text.code).toBe(2);
    expect(text.stderr).toContain("error: unknown option '--Psk'");
    expect(text.stderr).toContain('Usage: ipsec-fleet submit');
    expect(text.stderr).not.toContain('Us4ge-Secret-1');
    expect(await changesOf(target.ipsecServerId)).toHaveLength(0);
  });

  it('never takes a Psk from a flag, and never echoes it', async () => {
    const target = server(0);
    const result = await asSubmitter([
      'submit',
      '--server',
      target.ipsecServerId,
      '--region',
      target.regionId,
      '--set',
      `Psk=${SECRET_PSK}`,
      '--json',
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--psk-file');
    expect(result.stdout + result.stderr).not.toContain(SECRET_PSK);
    const problem = JSON.parse(result.stderr) as { code: string; errors: Array<{ field: string }> };
    expect(problem.code).toBe('INVALID_INPUT');
    expect(problem.errors[0]?.field).toBe('Psk');

    const help = await cli(['submit', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('never from a flag');
    expect(help.stdout).toContain('Exit codes:');
    expect(help.stdout).toContain('5  submit --wait');
  });

  it('shows a lane head first, lists and cancels a waiting change', async () => {
    const target = server(1);
    const ids: string[] = [];
    for (const subnet of ['10.201.0.0/24', '10.202.0.0/24']) {
      const result = await asSubmitter([
        'submit',
        '--server',
        target.ipsecServerId,
        '--region',
        target.regionId,
        '--set',
        `LocalSubnet=${subnet}`,
        '--note',
        'widen the subnet',
        '--json',
      ]);
      expect(result.code, result.stderr).toBe(0);
      const body = JSON.parse(result.stdout) as { change: { id: string; state: string }; created: boolean };
      expect(body.created).toBe(true);
      expect(body.change.state).toBe('queued');
      ids.push(body.change.id);
    }

    const lane = await asViewer(['lane', target.ipsecServerId, '--json']);
    expect(lane.code, lane.stderr).toBe(0);
    const laneBody = JSON.parse(lane.stdout) as {
      ipsecServerId: string;
      lane: Array<{ id: string; position: number }>;
    };
    expect(laneBody.ipsecServerId).toBe(target.ipsecServerId);
    expect(laneBody.lane.map((entry) => entry.id)).toEqual(ids);
    const laneText = await asViewer(['lane', target.ipsecServerId]);
    expect(laneText.stdout.split('\n')[0]).toMatch(/^POS\s+ID\s+STATE\s+STEP\s+ACTOR\s+CREATED$/);
    expect(laneText.stdout).toContain(ids[1]);

    const list = await asViewer(['list', '--server', target.ipsecServerId, '--state', 'queued', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const listBody = JSON.parse(list.stdout) as { changes: Array<{ id: string }>; nextCursor?: string };
    expect(listBody.changes.map((change) => change.id).sort()).toEqual([...ids].sort());

    const page = await asViewer(['list', '--server', target.ipsecServerId, '--limit', '1', '--json']);
    const first = JSON.parse(page.stdout) as { changes: Array<{ id: string }>; nextCursor?: string };
    expect(first.changes).toHaveLength(1);
    expect(first.nextCursor).toBeDefined();
    const next = await asViewer([
      'list',
      '--server',
      target.ipsecServerId,
      '--limit',
      '1',
      '--cursor',
      first.nextCursor!,
    ]);
    expect(next.code, next.stderr).toBe(0);
    expect(next.stdout).toContain('STATE');
    expect(next.stdout).not.toContain(first.changes[0]!.id);

    const badState = await asViewer(['list', '--state', 'sleeping']);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain('--state');

    const cancel = await asSubmitter(['cancel', ids[1]!, '--json']);
    expect(cancel.code, cancel.stderr).toBe(0);
    expect((JSON.parse(cancel.stdout) as { change: { state: string } }).change.state).toBe('cancelled');
    const again = await asSubmitter(['cancel', ids[1]!]);
    expect(again.code).toBe(3);
    expect(again.stderr).toContain('CHANGE_STATE_CONFLICT');

    const got = await asViewer(['get', ids[1]!]);
    expect(got.code, got.stderr).toBe(0);
    expect(got.stdout).toMatch(/state:\s+cancelled/);
    expect(got.stdout).toContain('widen the subnet');
    expect(got.stdout).toMatch(/Timeline:\n.*submitted.*\n.*cancelled/);
  });

  it('answers a viewer that submits with 403, exit 3, and a bad token with 401, exit 3', async () => {
    const target = server(2);
    const forbidden = await asViewer([
      'submit',
      '--server',
      target.ipsecServerId,
      '--region',
      target.regionId,
      '--set',
      'LocalSubnet=10.203.0.0/24',
    ]);
    expect(forbidden.code).toBe(3);
    expect(forbidden.stderr).toContain('FORBIDDEN');

    const badToken = generateToken();
    const unauthorized = await cli(['list', '--api', api], { IPSEC_FLEET_TOKEN: badToken });
    expect(unauthorized.code).toBe(3);
    expect(unauthorized.stderr).toContain('UNAUTHORIZED');
    expect(unauthorized.stderr).toContain('401');
    expect(unauthorized.stdout).toBe('');

    const asJson = await cli(['list', '--api', api, '--json'], { IPSEC_FLEET_TOKEN: badToken });
    expect(asJson.code).toBe(3);
    expect(asJson.stdout).toBe('');
    expect(JSON.parse(asJson.stderr)).toMatchObject({ status: 401, code: 'UNAUTHORIZED' });

    const noToken = await cli(['list', '--api', api]);
    expect(noToken.code).toBe(3);
    expect(noToken.stderr).toContain('hint: give a token');

    const missing = await asViewer(['get', 'chg-doesnotexist', '--json']);
    expect(missing.code).toBe(3);
    expect(JSON.parse(missing.stderr)).toMatchObject({ status: 404, code: 'CHANGE_NOT_FOUND' });
  });

  it('exits 4 when the API does not answer', async () => {
    const closed = await startHttpServer();
    const dead = closed.origin;
    await closed.close();
    const result = await cli(['list', '--api', dead], { IPSEC_FLEET_TOKEN: viewerToken });
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('API_UNREACHABLE');
    expect(result.stderr).toContain('connection refused');

    const json = await cli(['lane', 'iss-x', '--api', dead, '--json'], { IPSEC_FLEET_TOKEN: viewerToken });
    expect(json.code).toBe(4);
    expect(JSON.parse(json.stderr)).toMatchObject({ code: 'API_UNREACHABLE' });
  });

  it('exits 4 when the API accepts the connection but never answers in time', async () => {
    const silent = await startHttpServer(() => new Promise(() => undefined));
    try {
      const result = await cli(['list', '--api', silent.origin, '--timeout', '300'], {
        IPSEC_FLEET_TOKEN: viewerToken,
      });
      expect(result.code).toBe(4);
      expect(result.stderr).toContain('API_TIMEOUT');
    } finally {
      await silent.close();
    }
  });

  it('never takes the token from a flag: --token is refused, --token-file reads a file or stdin', async () => {
    const refused = await cli(['list', '--api', api, '--token', viewerToken]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--token: is not accepted');
    expect(refused.stderr).toContain('--token-file FILE');
    expect(refused.stderr).toContain('IPSEC_FLEET_TOKEN');
    expect(refused.stdout + refused.stderr).not.toContain(viewerToken);
    const refusedAsJson = await cli(['list', '--api', api, `--token=${viewerToken}`, '--json']);
    expect(refusedAsJson.code).toBe(2);
    expect(JSON.parse(refusedAsJson.stderr)).toMatchObject({ code: 'INVALID_INPUT' });
    expect(refusedAsJson.stderr).not.toContain(viewerToken);

    const fromFile = await cli(['list', '--api', api, '--token-file', tokenFile(viewerToken), '--json']);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stderr).toBe('');
    const fromStdin = await runCliWithInput(
      ['list', '--api', api, '--token-file', '-', '--json'],
      `${viewerToken}\n`,
      {},
    );
    expect(fromStdin.code, fromStdin.stderr).toBe(0);

    const loosePath = tokenFile(viewerToken);
    chmodSync(loosePath, 0o644);
    const loose = await cli(['list', '--api', api, '--token-file', loosePath]);
    expect(loose.code, loose.stderr).toBe(0);
    expect(loose.stderr).toContain(`chmod 600 ${loosePath}`);

    const [missing, malformed] = await Promise.all([
      cli(['list', '--api', api, '--token-file', join(home, 'no-such-token')]),
      runCliWithInput(['list', '--api', api, '--token-file', '-'], 'two words\n', {}),
    ]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--token-file: cannot read');
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('--token-file: must be printable ASCII without spaces');
    expect(malformed.stderr).not.toContain('two words');

    // One stdin for two secrets: refused, and nothing submitted.
    const target = server(4);
    const both = await runCliWithInput(
      [
        'submit',
        '--server',
        target.ipsecServerId,
        '--region',
        target.regionId,
        '--api',
        api,
        '--token-file',
        '-',
        '--psk-file',
        '-',
      ],
      `${submitterToken}\n`,
      {},
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--psk-file: cannot read stdin too');
    expect(await changesOf(target.ipsecServerId)).toHaveLength(0);

    const help = await cli(['list', '--help']);
    expect(help.stdout).toContain('--token-file');
    expect(help.stdout).not.toMatch(/--token </);
  });

  it('takes flags over the environment over the config file', async () => {
    const closed = await startHttpServer();
    const dead = closed.origin;
    await closed.close();
    const wrongToken = generateToken();
    const configPath = join(home, 'precedence.json');
    const writeConfig = (config: unknown) => {
      writeFileSync(configPath, JSON.stringify(config));
      chmodSync(configPath, 0o600);
    };

    // The file alone is enough.
    writeConfig({ api, token: viewerToken });
    const fromFile = await cli(['list', '--json'], { IPSEC_FLEET_CONFIG: configPath });
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stderr).toBe('');

    // With a dead API and a wrong token in the file, independent runs side by side:
    writeConfig({ api: dead, token: wrongToken });
    const [envOverFile, fileApi, fileToken, flagOverEnv, badFlag] = await Promise.all([
      // the environment beats the file;
      cli(['list', '--json'], {
        IPSEC_FLEET_CONFIG: configPath,
        IPSEC_FLEET_API: api,
        IPSEC_FLEET_TOKEN: viewerToken,
      }),
      // each half on its own: the file's api with the env's token, and the other way round;
      cli(['list'], { IPSEC_FLEET_CONFIG: configPath, IPSEC_FLEET_TOKEN: viewerToken }),
      cli(['list'], { IPSEC_FLEET_CONFIG: configPath, IPSEC_FLEET_API: api }),
      // flags beat the environment, both ways.
      cli(['list', '--api', api, '--token-file', tokenFile(viewerToken)], {
        IPSEC_FLEET_CONFIG: configPath,
        IPSEC_FLEET_API: dead,
        IPSEC_FLEET_TOKEN: wrongToken,
      }),
      cli(['list', '--token-file', tokenFile(wrongToken)], {
        IPSEC_FLEET_API: api,
        IPSEC_FLEET_TOKEN: viewerToken,
      }),
    ]);
    expect(envOverFile.code, envOverFile.stderr).toBe(0);
    expect(fileApi.code, fileApi.stderr).toBe(4);
    expect(fileToken.code, fileToken.stderr).toBe(3);
    expect(flagOverEnv.code, flagOverEnv.stderr).toBe(0);
    expect(badFlag.code, badFlag.stderr).toBe(3);

    // The default file, ~/.config/ipsec-fleet/config.json, is read when IPSEC_FLEET_CONFIG is unset.
    const otherHome = mkdtempSync(join(tmpdir(), 'ipf-home-'));
    try {
      mkdirSync(join(otherHome, '.config', 'ipsec-fleet'), { recursive: true });
      const defaultPath = join(otherHome, '.config', 'ipsec-fleet', 'config.json');
      writeFileSync(defaultPath, JSON.stringify({ api, token: viewerToken }), { mode: 0o600 });
      const fromDefault = await cli(['lane', server(0).ipsecServerId], { HOME: otherHome });
      expect(fromDefault.code, fromDefault.stderr).toBe(0);
      expect(fromDefault.stdout).toContain('is empty');

      // A token in a file others can read earns a warning, and still works.
      chmodSync(defaultPath, 0o644);
      const loose = await cli(['lane', server(0).ipsecServerId], { HOME: otherHome });
      expect(loose.code).toBe(0);
      expect(loose.stderr).toContain('chmod 600');
    } finally {
      rmSync(otherHome, { recursive: true, force: true });
    }
  });

  it('rejects a bad config file, a missing named one and bad variables with exit 2, naming them', async () => {
    const badPath = join(home, 'bad.json');
    writeFileSync(badPath, JSON.stringify({ api: 'ftp://example.com', tokn: 'x' }), { mode: 0o600 });
    const notJsonPath = join(home, 'not-json.json');
    // Unquoted: JSON.parse's own message would quote the token around the error.
    writeFileSync(notJsonPath, '{"token": Tok3nX}', { mode: 0o600 });
    const [bad, notJson, missing, badEnv, badFlag, badTimeout] = await Promise.all([
      cli(['list'], { IPSEC_FLEET_CONFIG: badPath }),
      cli(['list'], { IPSEC_FLEET_CONFIG: notJsonPath }),
      cli(['list'], { IPSEC_FLEET_CONFIG: join(home, 'nope.json') }),
      cli(['list'], { IPSEC_FLEET_API: 'not a url' }),
      cli(['list', '--api', 'localhost:8080']),
      cli(['list', '--timeout', 'soon']),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(badPath);
    expect(bad.stderr).toContain('api: must be an http:// or https:// URL');
    expect(bad.stderr).toContain('tokn');
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toContain('not valid JSON');
    expect(notJson.stderr).not.toContain('Tok3nX');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('does not exist');
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain('IPSEC_FLEET_API');
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--api');
    expect(badTimeout.code).toBe(2);
    expect(badTimeout.stderr).toContain('--timeout');
  });
});

describe('with a worker: waiting, following, the audit trail', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    await harness.startWorker();
  });

  let succeededId: string;

  it('submit --wait prints the timeline as it happens and exits 0 on success', async () => {
    const target = server(3);
    const result = await asSubmitter([
      'submit',
      '--server',
      target.ipsecServerId,
      '--region',
      target.regionId,
      '--set',
      'LocalSubnet=10.210.0.0/24,10.211.0.0/24',
      '--set',
      'EffectImmediately=true',
      '--note',
      'ticket NET-42',
      '--wait',
    ]);
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.trim().split('\n');
    const match = /change (\S+) on/.exec(lines[0] ?? '');
    expect(match, result.stdout).not.toBeNull();
    succeededId = match![1]!;
    const types = lines.slice(1, -1).map((line) => line.split(/\s+/)[1]);
    expect(types).toEqual(['submitted', 'running', 'dry_run_passed', 'applied', 'succeeded']);
    expect(lines.at(-1)).toBe(`change ${succeededId} succeeded`);
    expect(result.stdout).toContain('ticket NET-42');
    expect(harness.sim.server(target.ipsecServerId)?.config.LocalSubnet).toBe('10.210.0.0/24,10.211.0.0/24');
  });

  it('submit --wait --json prints each event as one JSON line; a rejected change exits 5', async () => {
    const target = server(4);
    // Overlaps the server's client pool (10.N.0.0/16): the dry run says no.
    const result = await asSubmitter([
      'submit',
      '--server',
      target.ipsecServerId,
      '--region',
      target.regionId,
      '--set',
      'LocalSubnet=10.0.0.0/8',
      '--wait',
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(5);
    const events = jsonLines(result.stdout);
    expect(events[0]?.type).toBe('submitted');
    expect(events.at(-1)).toMatchObject({ type: 'rejected', code: 'IllegalParam.LocalSubnet' });
  });

  it('submit is idempotent with --idempotency-key, and takes a Psk from a file or stdin only', async () => {
    const target = server(5);
    const pskFile = join(home, 'psk.txt');
    writeFileSync(pskFile, `${SECRET_PSK}\n`, { mode: 0o600 });
    const args = [
      'submit',
      '--server',
      target.ipsecServerId,
      '--region',
      target.regionId,
      '--psk-file',
      pskFile,
      '--idempotency-key',
      'rotate-2025-06',
      '--json',
    ];
    const first = await asSubmitter(args);
    expect(first.code, first.stderr).toBe(0);
    const second = await asSubmitter(args);
    expect(second.code, second.stderr).toBe(0);
    const a = JSON.parse(first.stdout) as {
      change: { id: string; params: { Psk: string } };
      created: boolean;
    };
    const b = JSON.parse(second.stdout) as { change: { id: string }; created: boolean };
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, change: { id: a.change.id } });
    expect(a.change.params.Psk).toMatch(PSK_FINGERPRINT_PATTERN);
    expect(first.stdout + first.stderr + second.stdout).not.toContain(SECRET_PSK);

    const waited = await runCliWithInput(
      ['submit', '--server', target.ipsecServerId, '--region', target.regionId, '--psk-file', '-', '--wait'],
      `${SECRET_PSK}-2\n`,
      { IPSEC_FLEET_API: api, IPSEC_FLEET_TOKEN: submitterToken },
    );
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).not.toContain(SECRET_PSK);
    expect(harness.sim.server(target.ipsecServerId)?.config.Psk).toBe(simPskLabel(`${SECRET_PSK}-2`));
  });

  it('get --json parses, with the diff and the timeline', async () => {
    const result = await asViewer(['get', succeededId, '--json']);
    expect(result.code, result.stderr).toBe(0);
    const body = JSON.parse(result.stdout) as {
      change: { state: string; note: string };
      timeline: AuditEvent[];
      diff: Array<{ field: string }>;
    };
    expect(body.change).toMatchObject({ state: 'succeeded', note: 'ticket NET-42' });
    expect(body.timeline.map((event) => event.type)).toEqual([
      'submitted',
      'running',
      'dry_run_passed',
      'applied',
      'succeeded',
    ]);
    expect(body.diff.map((entry) => entry.field)).toContain('LocalSubnet');

    const text = await asViewer(['get', succeededId]);
    expect(text.stdout).toMatch(/Diff \(server before -> params\):\n\s+FIELD\s+FROM\s+TO\n\s+LocalSubnet/);
  });

  it('audit --jsonl streams JSON lines; audit --follow replays an ended change and exits 0', async () => {
    const jsonl = await asViewer(['audit', '--change', succeededId, '--jsonl']);
    expect(jsonl.code, jsonl.stderr).toBe(0);
    const events = jsonLines(jsonl.stdout);
    expect(events.map((event) => event.type)).toEqual([
      'submitted',
      'running',
      'dry_run_passed',
      'applied',
      'succeeded',
    ]);
    expect(events.every((event) => event.changeId === succeededId)).toBe(true);

    const json = await asViewer(['audit', '--server', server(3).ipsecServerId, '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect((JSON.parse(json.stdout) as { events: AuditEvent[] }).events).toHaveLength(5);

    const text = await asViewer(['audit', '--server', server(3).ipsecServerId, '--from', '2020-01-01']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout.trim().split('\n')).toHaveLength(5);
    expect(text.stdout).toContain(succeededId);

    const future = await asViewer(['audit', '--server', server(3).ipsecServerId, '--from', '2999-01-01']);
    expect(future.stdout).toBe('no events\n');

    const follow = await asViewer(['audit', '--change', succeededId, '--follow', '--jsonl']);
    expect(follow.code, follow.stderr).toBe(0);
    expect(jsonLines(follow.stdout).at(-1)?.type).toBe('succeeded');

    const noChange = await asViewer(['audit', '--follow']);
    expect(noChange.code).toBe(2);
    expect(noChange.stderr).toContain('--follow: needs --change');
    const badTime = await asViewer(['audit', '--from', 'yesterday']);
    expect(badTime.code).toBe(2);
    expect(badTime.stderr).toContain('--from');
  });

  it('audit --follow prints events live as a change runs', async () => {
    const target = server(6);
    const submitted = await asSubmitter([
      'submit',
      '--server',
      target.ipsecServerId,
      '--region',
      target.regionId,
      '--set',
      'IpsecServerName=edge-vpn-7',
      '--json',
    ]);
    expect(submitted.code, submitted.stderr).toBe(0);
    const { change } = JSON.parse(submitted.stdout) as { change: { id: string } };
    const follow = await asViewer(['audit', '--change', change.id, '--follow']);
    expect(follow.code, follow.stderr).toBe(0);
    const types = follow.stdout
      .trim()
      .split('\n')
      .map((line) => line.split(/\s+/)[1]);
    expect(types[0]).toBe('submitted');
    expect(types.at(-1)).toBe('succeeded');
  });
});
