/**
 * Runs `ipsec-fleet worker` (the built binary) as a child process, as production does, so that
 * tests can kill it with real signals. Every process started here is remembered until it exits;
 * `killWorkerProcesses()` (in an afterEach) SIGKILLs the ones a failed test left behind.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { PipelinePolicyInput } from '../../src/orchestrator/policy.js';
import { cliPath, PROCESS_START_TIMEOUT_MS } from './cli.js';

export interface WorkerProcessOptions {
  redisUrl: string;
  prefix: string;
  /** The simulator's endpoint (IPSEC_FLEET_ENDPOINT). */
  endpoint: string;
  accessKeyId: string;
  accessKeySecret: string;
  policy?: PipelinePolicyInput | undefined;
  concurrency?: number | undefined;
  secretKey?: string | undefined;
  /** Worker log level; `info` at least, as the start is detected from the `worker started` line. */
  logLevel?: 'info' | 'debug' | 'trace' | undefined;
  /** Deadline of one cloud call (IPSEC_FLEET_HTTP_TIMEOUT_MS). */
  httpTimeoutMs?: number | undefined;
}

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface WorkerProcess {
  pid: number;
  /** As the worker names itself in leases and audit events (`worker:<host>:<pid>`). */
  workerId: string;
  child: ChildProcessWithoutNullStreams;
  /** Everything the process wrote so far: stdout, then stderr (its pino JSON log lines). */
  output(): string;
  /** Settles when the process has exited. */
  exited: Promise<WorkerExit>;
  /** Sends `signal` (when still running) and waits for the exit. */
  signal(signal: NodeJS.Signals): Promise<WorkerExit>;
}

const running = new Set<WorkerProcess>();

function exitOf(child: ChildProcessWithoutNullStreams): Promise<WorkerExit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Starts `node dist/src/cli/main.js worker` and resolves once it logged `worker started`. */
export async function startWorkerProcess(
  options: WorkerProcessOptions,
  timeoutMs = PROCESS_START_TIMEOUT_MS,
): Promise<WorkerProcess> {
  if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run npm run build`);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    REDIS_URL: options.redisUrl,
    IPSEC_FLEET_PREFIX: options.prefix,
    IPSEC_FLEET_ENDPOINT: options.endpoint,
    ALIBABA_CLOUD_ACCESS_KEY_ID: options.accessKeyId,
    ALIBABA_CLOUD_ACCESS_KEY_SECRET: options.accessKeySecret,
    LOG_LEVEL: options.logLevel ?? 'info',
  };
  if (options.policy) env.IPSEC_FLEET_POLICY = JSON.stringify(options.policy);
  if (options.secretKey) env.IPSEC_FLEET_SECRET_KEY = options.secretKey;
  if (options.httpTimeoutMs) env.IPSEC_FLEET_HTTP_TIMEOUT_MS = String(options.httpTimeoutMs);
  const child = spawn(
    process.execPath,
    [cliPath, 'worker', '--concurrency', String(options.concurrency ?? 10)],
    { env, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = exitOf(child);
  const handle: WorkerProcess = {
    pid: child.pid as number,
    workerId: '',
    child,
    output: () => stdout + stderr,
    exited,
    async signal(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  running.add(handle);
  void exited.then(() => running.delete(handle));

  handle.workerId = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker did not start within ${timeoutMs} ms: ${handle.output()}`));
    }, timeoutMs);
    // The worker logs (pino JSON) to stderr; stdout stays for command output.
    const onData = () => {
      for (const line of stderr.split('\n')) {
        if (!line.includes('"worker started"')) continue;
        clearTimeout(timer);
        child.stderr.off('data', onData);
        resolve((JSON.parse(line) as { workerId: string }).workerId);
        return;
      }
    };
    child.stderr.on('data', onData);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (code ${code}, signal ${signal}) before starting: ${handle.output()}`));
    });
  });
  return handle;
}

export function startWorkerProcesses(count: number, options: WorkerProcessOptions): Promise<WorkerProcess[]> {
  return Promise.all(Array.from({ length: count }, () => startWorkerProcess(options)));
}

/** SIGKILLs every worker process started here that is still running, and waits for them. */
export async function killWorkerProcesses(): Promise<void> {
  await Promise.all([...running].map((worker) => worker.signal('SIGKILL')));
}

/** Polls `probe` until it returns a value other than undefined, or throws with `describe()`. */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => string | Promise<string> } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const what = options.describe ? await options.describe() : 'condition';
      throw new Error(`timed out waiting: ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
}
