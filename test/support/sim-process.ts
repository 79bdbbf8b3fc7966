/** Runs `ipsec-fleet sim` as a child process and reads the JSON line it prints when it listens. */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cliPath, PROCESS_START_TIMEOUT_MS } from './cli.js';

export interface SimProcessInfo {
  endpoint: string;
  accessKeyId: string;
  /** Only for the built-in test key. */
  accessKeySecret: string;
  servers: unknown;
}

export interface SimProcess {
  child: ChildProcessWithoutNullStreams;
  info: SimProcessInfo;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Sends `signal` and resolves with the exit code and signal once the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function exited(child: ChildProcessWithoutNullStreams) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/**
 * Starts `node dist/src/cli/main.js sim ...args`. Rejects (after killing the child) when no
 * complete first line arrives within `timeoutMs` (a hang guard), or when the process exits first.
 */
export async function startSimProcess(
  args: string[],
  timeoutMs = PROCESS_START_TIMEOUT_MS,
  env: NodeJS.ProcessEnv = {},
): Promise<SimProcess> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run npm run build`);
  const child = spawn(process.execPath, [cliPath, 'sim', ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = exited(child);
  const firstLine = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sim printed no line within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const newline = stdout.indexOf('\n');
      if (newline >= 0) {
        clearTimeout(timer);
        resolve(stdout.slice(0, newline));
      }
    });
    void done.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`sim exited (code ${code}, signal ${signal}) before printing; stderr: ${stderr}`));
    });
  });
  let info: SimProcessInfo;
  try {
    info = JSON.parse(firstLine) as SimProcessInfo;
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`sim's first line is not JSON: ${firstLine}`, { cause: error });
  }
  return {
    child,
    info,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      try {
        return await done;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
