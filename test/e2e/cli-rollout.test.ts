import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiApp, buildApp } from '../../src/api/app.js';
import { generateToken, hashToken, TokenStore } from '../../src/api/auth/tokens.js';
import { type CliResult, runCli } from '../support/cli.js';
import { type RolloutHarness, startRolloutHarness } from '../support/rollout-harness.js';

/**
 * The rollout verbs of the built binary against a running API (buildApp with the rollouts library
 * over real Redis, the simulator, change and rollout workers in-process).
 */

let h: RolloutHarness;
let app: ApiApp;
let api: string;
let home: string;
const submitterToken = generateToken();
const approverToken = generateToken();

function cli(args: string[], token = submitterToken): Promise<CliResult> {
  return runCli([...args, '--api', api], { HOME: home, IPSEC_FLEET_TOKEN: token });
}

function file(name: string, text: string): string {
  const path = join(home, name);
  writeFileSync(path, text);
  return path;
}

function targetsYaml(count: number): string {
  return h.sim.servers
    .slice(0, count)
    .map((server) => `  - { ipsecServerId: ${server.ipsecServerId}, regionId: ${server.regionId} }`)
    .join('\n');
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'ipf-rollout-cli-'));
  h = await startRolloutHarness({ sim: { servers: 4, faults: { configuringMs: 0 } } });
  const tokens = new TokenStore([
    { name: 'sam', roles: ['submitter'], sha256: hashToken(submitterToken) },
    { name: 'abe', roles: ['approver'], sha256: hashToken(approverToken) },
  ]);
  app = buildApp({ orchestrator: h.orchestrator, tokens, rollouts: h.rollouts });
  api = await app.listen({ port: 0, host: '127.0.0.1' });
}, 30_000);

afterAll(async () => {
  await app?.close();
  await h?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('ipsec-fleet rollout', () => {
  it('plan -f prints the plan report of a YAML file', async () => {
    const path = file(
      'plan.yaml',
      `targets:\n${targetsYaml(2)}\nparams:\n  IpsecServerName: planned_name\nnote: just looking\n`,
    );
    const result = await cli(['rollout', 'plan', '-f', path]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/rollout rol-\S+ planned plan: would-change=2/);
    expect(result.stdout).toMatch(/IpsecServerName: .* -> planned_name/);

    const json = await cli(['rollout', 'plan', '-f', path, '--json']);
    expect(json.code).toBe(0);
    const detail = JSON.parse(json.stdout);
    expect(detail.rollout.state).toBe('planned');
    expect(detail.plan).toHaveLength(2);
  }, 30_000);

  it('create --watch draws progress until the rollout completes (approved meanwhile)', async () => {
    const path = file(
      'create.json',
      JSON.stringify({
        targets: h.sim.servers
          .slice(0, 3)
          .map(({ ipsecServerId, regionId }) => ({ ipsecServerId, regionId })),
        params: { IpsecServerName: 'cli_rollout' },
        strategy: { batches: [1, '100%'] },
      }),
    );
    const running = cli(['rollout', 'create', '-f', path, '--watch']);
    // Approve it as someone else, through the CLI, once it awaits approval.
    let id: string | undefined;
    for (let i = 0; i < 300 && !id; i++) {
      const page = await h.rollouts.list({ limit: 5 });
      id = page.rollouts.find((r) => r.state === 'awaiting_approval' && r.actor === 'sam')?.id;
      if (!id) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(id).toBeDefined();
    const self = await cli(['rollout', 'approve', id as string]);
    expect(self.code).toBe(3);
    expect(self.stderr).toMatch(/403|submitter/);
    const approve = await cli(['rollout', 'approve', id as string], approverToken);
    expect(approve.stderr).toBe('');
    expect(approve.code).toBe(0);

    const result = await running;
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    // Not a TTY: plain lines, no cursor movement; the last one shows everything done.
    expect(result.stdout).not.toContain('\u001b[');
    expect(result.stdout).toMatch(/awaiting_approval\s+\[\.{24}\]\s+0%\s+0\/3/);
    expect(result.stdout).toMatch(/\[#{24}\] 100%\s+3\/3\s+ok=3 err=0/);
    expect(result.stdout).toMatch(new RegExp(`rollout ${id} completed`));

    const status = await cli(['rollout', 'status', id as string, '--json']);
    expect(JSON.parse(status.stdout).rollout).toMatchObject({
      state: 'completed',
      progress: { succeeded: 3 },
    });
  }, 90_000);

  it('a YAML warning names the place, never the text', async () => {
    // The yaml library prints its warnings itself, quoting the line: here the one with the Psk (a
    // tag such as !secret is what other tools' YAML files use for secrets).
    const path = file(
      'tagged.yaml',
      `targets:\n${targetsYaml(1)}\nparams:\n  Psk: !secret RolloutYamlSecret4\nplanOnly: true\n`,
    );
    const result = await cli(['rollout', 'plan', '-f', path, '--json']);
    expect(result.code).toBe(0);
    expect(result.stdout + result.stderr).not.toContain('RolloutYamlSecret4');
    expect(result.stderr).toMatch(/warning: -f .*tagged\.yaml: TAG_RESOLVE_FAILED at line 4, column 8/);
    expect(JSON.parse(result.stdout).rollout.state).toBe('planned');
  }, 30_000);

  it('a bad file exits 2 naming the field, and nothing is sent', async () => {
    const before = (await h.rollouts.list({ limit: 500 })).rollouts.length;
    const path = file(
      'bad.yaml',
      `targets:\n${targetsYaml(1)}\nparams:\n  IpsecServerName: x\nmaxErrors: -3\nstrategy: { batches: [0] }\n`,
    );
    const result = await cli(['rollout', 'create', '-f', path]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/maxErrors/);
    expect(result.stdout).toBe('');
    const garbled = await cli(['rollout', 'create', '-f', file('garbled.yaml', 'targets: [\n')]);
    expect(garbled.code).toBe(2);
    expect(garbled.stderr).toMatch(/-f/);
    // A syntax error names the place, never the text: the yaml library's own message would quote
    // the Psk on the offending line.
    const misindented = await cli([
      'rollout',
      'create',
      '-f',
      file('misindented.yaml', 'params:\n  Psk: RolloutYamlSecret3\n   LocalSubnet: 10.0.0.0/24\n'),
    ]);
    expect(misindented.code).toBe(2);
    expect(misindented.stderr).toMatch(/line 2, column 8/);
    expect(misindented.stderr).not.toContain('RolloutYamlSecret3');
    const reject = await runCli(['rollout', 'reject', 'rol-x', '--api', api], {
      HOME: home,
      IPSEC_FLEET_TOKEN: approverToken,
    });
    expect(reject.code).not.toBe(0);
    expect((await h.rollouts.list({ limit: 500 })).rollouts.length).toBe(before);
  }, 60_000);
});
