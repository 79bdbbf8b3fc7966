import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../src/package-info.js';

export const cliPath = join(projectRoot, 'dist/src/cli/main.js');

/**
 * How long a spawned CLI process may take to say it started before it counts as hung. A hang guard
 * only: on a loaded machine loading the CLI alone takes seconds, and no test is about its speed.
 * A test that starts processes needs a timeout above this (plus its own deadlines).
 */
export const PROCESS_START_TIMEOUT_MS = 60_000;

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** True when `killAfterMs` passed first and the process was killed. */
  timedOut: boolean;
}

/**
 * Runs the built `ipsec-fleet` binary as a user would (`npm test` builds it first), with `input`
 * on its stdin if given (none otherwise). With `killAfterMs`, a process still running then is killed, so a hang shows as a failed assertion
 * (code null, timedOut) instead of a test that never ends.
 */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  options: { killAfterMs?: number; input?: string; cwd?: string } = {},
): Promise<CliResult> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run npm run build`);
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH, ...env },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  if (options.input !== undefined) child.stdin?.end(options.input);
  let timedOut = false;
  const timer =
    options.killAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.killAfterMs);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  return { code, stdout, stderr, timedOut };
}
