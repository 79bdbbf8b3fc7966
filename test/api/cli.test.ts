import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { hashToken, TOKEN_PATTERN } from '../../src/api/auth/tokens.js';
import { cliPath, PROCESS_START_TIMEOUT_MS, runCli } from '../support/cli.js';
import { deleteKeys, uniquePrefix } from '../support/orchestrator-harness.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ipf-cli-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('ipsec-fleet token create', () => {
  it('prints the token once, stores its hash in a new 0600 file, refuses a duplicate name', async () => {
    const file = join(dir, 'tokens.json');
    const created = await runCli([
      'token',
      'create',
      '--name',
      'alice',
      '--roles',
      'submitter,viewer',
      '--file',
      file,
    ]);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(TOKEN_PATTERN);
    expect(created.stderr).not.toContain(token);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      tokens: [{ name: 'alice', roles: ['submitter', 'viewer'], sha256: hashToken(token) }],
    });

    const duplicate = await runCli([
      'token',
      'create',
      '--name',
      'alice',
      '--roles',
      'viewer',
      '--file',
      file,
    ]);
    expect(duplicate.code).toBe(2);
    expect(duplicate.stdout).toBe('');
    expect(duplicate.stderr).toMatch(/already exists/);

    // The file comes from IPSEC_FLEET_TOKENS_FILE when --file is not given.
    const fromEnv = await runCli(['token', 'create', '--name', 'bob', '--roles', 'viewer'], {
      IPSEC_FLEET_TOKENS_FILE: file,
    });
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8')).tokens).toHaveLength(2);
  });

  it('exits 2 naming the flag for bad roles, a bad name or no file', async () => {
    const file = join(dir, 'bad.json');
    const badRole = await runCli([
      'token',
      'create',
      '--name',
      'x',
      '--roles',
      'viewer,root',
      '--file',
      file,
    ]);
    expect(badRole.code).toBe(2);
    // Named as typed, with the bad value's place in the list: not zod's path (--roles.1).
    expect(badRole.stderr).toContain(
      '--roles: value 2: must be one of viewer, submitter, approver, admin (got "root")',
    );
    expect(badRole.stderr).not.toMatch(/--roles\.\d/);
    const badName = await runCli(['token', 'create', '--name', 'a b', '--roles', 'viewer', '--file', file]);
    expect(badName.code).toBe(2);
    expect(badName.stderr).toMatch(/name:/);
    const noFile = await runCli(['token', 'create', '--name', 'x', '--roles', 'viewer']);
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toMatch(/--file: is required/);
    await expect(stat(file)).rejects.toThrow();
  });
});

function waitForLine(
  child: ChildProcessByStdio<null, Readable, Readable>,
  output: { stderr: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stderr.on('data', (chunk: Buffer) => {
      output.stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const newline = stdout.indexOf('\n');
      if (newline >= 0) resolve(stdout.slice(0, newline));
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code} before listening: ${output.stderr}`)));
  });
}

describe('ipsec-fleet serve', () => {
  // The test's timeout is the hang guard of the serve process's start (it prints its URL).
  it('prints its URL, answers over HTTP with the tokens file, and exits 0 on SIGTERM', {
    timeout: PROCESS_START_TIMEOUT_MS + 30_000,
  }, async () => {
    const file = join(dir, 'serve-tokens.json');
    const token = (
      await runCli(['token', 'create', '--name', 'ops', '--roles', 'submitter', '--file', file])
    ).stdout.trim();
    const output = { stderr: '' };
    const prefix = uniquePrefix();
    const redisUrl = inject('redisUrl');
    const child = spawn(process.execPath, [cliPath, 'serve', '--port', '0', '--tokens', file], {
      env: {
        PATH: process.env.PATH,
        REDIS_URL: redisUrl,
        IPSEC_FLEET_PREFIX: prefix,
        // The flag wins over the variable.
        IPSEC_FLEET_PORT: '1',
        IPSEC_FLEET_SECRET_KEY: randomBytes(32).toString('hex'),
        LOG_LEVEL: 'debug',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await waitForLine(child, output);
      const { url } = JSON.parse(line) as { url: string };
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);

      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const anonymous = await fetch(`${url}/v1/changes`);
      expect(anonymous.status).toBe(401);
      expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const list = await fetch(`${url}/v1/changes`, { headers: { authorization: `Bearer ${token}` } });
      expect(list.status).toBe(200);
      expect(await list.json()).toEqual({ changes: [] });

      // A token created while serving works after SIGHUP.
      const later = (
        await runCli(['token', 'create', '--name', 'later', '--roles', 'viewer', '--file', file])
      ).stdout.trim();
      const withLater = () => fetch(`${url}/v1/changes`, { headers: { authorization: `Bearer ${later}` } });
      expect((await withLater()).status).toBe(401);
      child.kill('SIGHUP');
      for (let attempt = 0; (await withLater()).status !== 200; attempt++) {
        expect(attempt).toBeLessThan(100);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }

      // A change nobody runs (no worker), and an event stream left open on it.
      const submitted = await fetch(`${url}/v1/changes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          ipsecServerId: 'iss-cli-1',
          regionId: 'cn-shanghai',
          params: { Psk: 'never-logged-psk', IpsecServerName: 'cli' },
        }),
      });
      expect(submitted.status, await submitted.clone().text()).toBe(201);
      const { change } = (await submitted.json()) as { change: { id: string } };
      const events = await fetch(`${url}/v1/changes/${change.id}/events`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(events.status).toBe(200);
      const reader = events.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toContain('event: audit');

      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await reader.cancel().catch(() => undefined);
      expect(output.stderr).toContain('api listening');
      expect(output.stderr).not.toContain(token);
      expect(output.stderr).not.toContain('never-logged-psk');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await deleteKeys(redisUrl, prefix);
    }
  });

  it('exits 2 without a tokens file', { timeout: 60_000 }, async () => {
    const missing = await runCli(['serve', '--port', '0'], { REDIS_URL: inject('redisUrl') });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--tokens: is required/);
    const absent = await runCli(['serve', '--port', '0', '--tokens', join(dir, 'absent.json')]);
    expect(absent.code).toBe(2);
    expect(absent.stderr).toMatch(/does not exist/);
    const badPort = await runCli(['serve', '--port', '99999', '--tokens', join(dir, 'absent.json')]);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/port/);
    const twoPorts = await runCli([
      'serve',
      '--port',
      '0',
      '--port',
      '1',
      '--tokens',
      join(dir, 'absent.json'),
    ]);
    expect(twoPorts.code).toBe(2);
    expect(twoPorts.stderr).toContain('--port: is given more than once');
  });
});
