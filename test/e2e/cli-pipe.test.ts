import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type Api, startApi } from '../api/api-harness.js';
import { cliPath, PROCESS_START_TIMEOUT_MS } from '../support/cli.js';

/**
 * A reader that stops early (`ipsec-fleet --help | head -1`, `ipsec-fleet audit --jsonl | head`)
 * closes the pipe under the CLI: it must end quietly, as a command killed by SIGPIPE does, and not
 * with a stack trace of an unhandled EPIPE. Each run is killed after a hang guard, so a CLI that
 * never ends shows as a failed assertion; the guard says nothing about speed.
 */
const HANG_GUARD_MS = PROCESS_START_TIMEOUT_MS;
const TEST_TIMEOUT_MS = HANG_GUARD_MS + 30_000;

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** What reached the pipe that stayed open (stderr, or stdout when stderr was closed). */
  other: string;
  /** Bytes read from the closed pipe before it was closed. */
  read: number;
  timedOut: boolean;
}

/**
 * Runs the CLI and closes one of its pipes: `at-once` before the CLI can have written anything (so
 * its first write meets a closed pipe), `after-first-chunk` once some output arrived (so a large
 * output meets it half-way).
 */
function runClosing(
  args: string[],
  env: NodeJS.ProcessEnv,
  pipe: 'stdout' | 'stderr',
  when: 'at-once' | 'after-first-chunk',
): Promise<Ended> {
  const child = spawn(process.execPath, [cliPath, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const closing = pipe === 'stdout' ? child.stdout : child.stderr;
  const open = pipe === 'stdout' ? child.stderr : child.stdout;
  let other = '';
  open.on('data', (chunk: Buffer) => {
    other += chunk.toString();
  });
  let read = 0;
  if (when === 'at-once') closing.destroy();
  else
    closing.once('data', (chunk: Buffer) => {
      read = chunk.length;
      closing.destroy();
    });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, HANG_GUARD_MS);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, other, read, timedOut });
    });
  });
}

function expectQuietEnd(result: Ended, code: number) {
  expect(result.timedOut).toBe(false);
  expect(result.signal).toBeNull();
  expect(result.code, result.other).toBe(code);
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ipf-pipe-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('a pipe closed by its reader', { timeout: TEST_TIMEOUT_MS }, () => {
  it('ends help and version quietly, exit 0, when stdout is gone', async () => {
    const cases = [['--help'], ['audit', '--help'], ['rollout', 'create', '--help'], ['--version']];
    const results = await Promise.all(
      cases.map((args) => runClosing(args, { HOME: dir }, 'stdout', 'at-once')),
    );
    results.forEach((result, index) => {
      expectQuietEnd(result, 0);
      expect(result.other, cases[index]?.join(' ')).toBe('');
    });
  });

  it('keeps the exit code of an error it could not report when stderr is gone', async () => {
    const result = await runClosing(
      ['token', 'create', '--name', 'x', '--roles', 'root', '--file', join(dir, 'tokens.json')],
      { HOME: dir },
      'stderr',
      'at-once',
    );
    expectQuietEnd(result, 2);
    expect(result.other).toBe('');
  });
});

describe('a large audit export piped into a reader that stops early', { timeout: TEST_TIMEOUT_MS }, () => {
  let api: Api;
  let url: string;

  beforeAll(async () => {
    api = await startApi({ sim: { servers: 4 }, workers: 0 });
    // Well over a pipe's buffer (64 KiB on Linux): the CLI is still writing when the reader leaves.
    const note = 'n'.repeat(1000);
    for (let i = 0; i < 120; i++) {
      await api.harness.orchestrator.changes.submit({
        ...api.target(i % 4),
        params: { IpsecServerName: `pipe-${i}` },
        note,
        actor: 'setup',
      });
    }
    url = await api.app.listen({ port: 0, host: '127.0.0.1' });
  }, 60_000);
  afterAll(() => api?.close());

  it('ends quietly with exit 0 in every format', async () => {
    const env = { HOME: dir, IPSEC_FLEET_TOKEN: api.tokens.viewer };
    const formats = [['--jsonl'], ['--json', '--limit', '10000'], []];
    const results = await Promise.all(
      formats.map((format) =>
        runClosing(['audit', ...format, '--api', url], env, 'stdout', 'after-first-chunk'),
      ),
    );
    results.forEach((result, index) => {
      const name = `audit ${formats[index]?.join(' ')}`;
      expect(result.read, name).toBeGreaterThan(0);
      expectQuietEnd(result, 0);
      expect(result.other, name).toBe('');
    });
  });
});

describe('the demo piped into a reader that stops early', { timeout: TEST_TIMEOUT_MS + 60_000 }, () => {
  it('stops as if interrupted: its children stopped, its keys deleted', async () => {
    const redisUrl = inject('redisUrl');
    const child = spawn(process.execPath, [cliPath, 'demo', '--short'], {
      env: { PATH: process.env.PATH, HOME: dir, REDIS_URL: redisUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let prefix: string | undefined;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    // The reader leaves once the demo has said where its keys are.
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      prefix = /keys under \{(demo-[0-9a-f]+)\}/.exec(stdout)?.[1];
      if (prefix) child.stdout.destroy();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), HANG_GUARD_MS + 60_000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (...ended) => resolve(ended)),
    );
    clearTimeout(timer);
    expect(prefix, stdout).toBeDefined();
    expect(signal, stderr).toBeNull();
    expect(code, stderr).not.toBe(0);
    expect(stderr).not.toMatch(/EPIPE|ERR_STREAM_DESTROYED/);

    const redis = new Redis(redisUrl);
    try {
      // Its children (API, workers, simulator) are gone too: none of them writes a key any more.
      const left = await redis.keys(`{${prefix}}*`);
      expect(left).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});
