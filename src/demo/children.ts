import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../package-info.js';
import { DemoRunError, DemoSetupError } from './redis.js';

/** The built binary every demo process runs, as a user would run it. */
export const cliPath = join(projectRoot, 'dist/src/cli/main.js');

export interface DemoChild {
  name: string;
  process: ChildProcess;
  /** Settles with how the process ended. */
  exited: Promise<string>;
  /** Resolves with the first line on stdout that parses as JSON. */
  firstJson<T>(timeoutMs?: number): Promise<T>;
  /** Resolves once a stderr line contains `text`. */
  logLine(text: string, timeoutMs?: number): Promise<string>;
}

/**
 * The processes the demo runs, each `node dist/src/cli/main.js <command>`. Their stdout and
 * stderr go, line by line and prefixed with the process name, to one log file; nothing of
 * theirs reaches the terminal. A process that dies while the demo still needs it is reported
 * through `onUnexpectedExit`.
 */
export class DemoChildren {
  private readonly children: DemoChild[] = [];
  private readonly log: WriteStream;
  private stopping = false;
  private readonly oneShots = new Set<DemoChild>();

  constructor(
    readonly logPath: string,
    private readonly onUnexpectedExit: (name: string, how: string) => void,
  ) {
    this.log = createWriteStream(logPath, { flags: 'a' });
  }

  /** Appends one line of the demo's own to the log. */
  note(line: string): void {
    this.log.write(`demo | ${new Date().toISOString()} ${line}\n`);
  }

  /** `secretStdout`: the process prints a secret (a token) on stdout, kept out of the log. */
  start(
    name: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    options: { secretStdout?: boolean } = {},
  ): DemoChild {
    if (!existsSync(cliPath)) throw new DemoSetupError(`${cliPath} is missing: run npm run build first`);
    this.note(`starting ${name}: ipsec-fleet ${args.join(' ')}`);
    const child = spawn(process.execPath, [cliPath, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const stdoutLines: string[] = [];
    const stderrLines: string[] = [];
    const stdoutWaiters = new Set<(line: string) => void>();
    const stderrWaiters = new Set<(line: string) => void>();
    const pipeLines = (
      stream: NodeJS.ReadableStream,
      seen: string[],
      waiters: Set<(line: string) => void>,
      secret = false,
    ) => {
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
        this.log.write(`${name} | ${secret ? '(stdout not logged: it holds a secret)' : line}\n`);
        if (seen.length < 200) seen.push(line);
        for (const waiter of waiters) waiter(line);
      });
    };
    if (child.stdout) pipeLines(child.stdout, stdoutLines, stdoutWaiters, options.secretStdout);
    if (child.stderr) pipeLines(child.stderr, stderrLines, stderrWaiters);

    const exited = new Promise<string>((resolve) => {
      child.once('error', (error) => resolve(`could not start: ${error.message}`));
      child.once('exit', (code, signal) =>
        resolve(signal ? `killed by ${signal}` : `exited with code ${code}`),
      );
    });
    void exited.then((how) => {
      this.note(`${name} ${how}`);
      if (!this.stopping && !this.oneShots.has(handle)) this.onUnexpectedExit(name, how);
    });

    const waitFor = <T>(
      waiters: Set<(line: string) => void>,
      seen: string[],
      accept: (line: string) => T | undefined,
      what: string,
      timeoutMs: number,
    ): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        let timer: NodeJS.Timeout | undefined;
        const finish = (fn: () => void) => {
          clearTimeout(timer);
          waiters.delete(onLine);
          fn();
        };
        const onLine = (line: string) => {
          const value = accept(line);
          if (value !== undefined) finish(() => resolve(value));
        };
        for (const line of seen) {
          const value = accept(line);
          if (value !== undefined) return resolve(value);
        }
        waiters.add(onLine);
        timer = setTimeout(
          () =>
            finish(() =>
              reject(new Error(`${name}: no ${what} within ${timeoutMs} ms (see ${this.logPath})`)),
            ),
          timeoutMs,
        );
        void exited.then((how) =>
          finish(() => reject(new Error(`${name} ${how} before its ${what} (see ${this.logPath})`))),
        );
      });

    const handle: DemoChild = {
      name,
      process: child,
      exited,
      firstJson: <T>(timeoutMs = 15_000) =>
        waitFor<T>(
          stdoutWaiters,
          stdoutLines,
          (line) => {
            try {
              const value: unknown = JSON.parse(line);
              return value && typeof value === 'object' ? (value as T) : undefined;
            } catch {
              return undefined;
            }
          },
          'JSON line on stdout',
          timeoutMs,
        ),
      logLine: (text: string, timeoutMs = 15_000) =>
        waitFor(
          stderrWaiters,
          stderrLines,
          (line) => (line.includes(text) ? line : undefined),
          text,
          timeoutMs,
        ),
    };
    this.children.push(handle);
    return handle;
  }

  /** Runs a command to its end; resolves with its stdout (its stderr goes to the log). */
  async run(name: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<string> {
    const child = this.start(name, args, env, { secretStdout: true });
    this.oneShots.add(child);
    let stdout = '';
    child.process.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const timer = setTimeout(() => child.process.kill('SIGKILL'), timeoutMs);
    const how = await child.exited;
    clearTimeout(timer);
    if (how !== 'exited with code 0') {
      throw new DemoRunError(`ipsec-fleet ${args.join(' ')} ${how} (see ${this.logPath})`);
    }
    return stdout;
  }

  /**
   * Stops every process still running, newest first (workers before the API and the simulator):
   * after `settleMs` for those that already got a signal from the terminal, SIGTERM, then SIGKILL
   * after `graceMs`.
   */
  async stopAll(options: { settleMs?: number; graceMs?: number } = {}): Promise<void> {
    this.stopping = true;
    const isRunning = (child: DemoChild) =>
      child.process.pid !== undefined && child.process.exitCode === null && child.process.signalCode === null;
    if (options.settleMs) {
      const running = this.children.filter(isRunning);
      await Promise.race([
        Promise.all(running.map((child) => child.exited)),
        new Promise((resolve) => setTimeout(resolve, options.settleMs)),
      ]);
    }
    for (const child of [...this.children].reverse()) {
      if (!isRunning(child)) continue;
      child.process.kill('SIGTERM');
      const timer = setTimeout(() => child.process.kill('SIGKILL'), options.graceMs ?? 10_000);
      await child.exited;
      clearTimeout(timer);
    }
  }

  /** The long-running processes started (not the one-shot commands). */
  get running(): string[] {
    return this.children.filter((child) => !this.oneShots.has(child)).map((child) => child.name);
  }

  async closeLog(): Promise<void> {
    await new Promise<void>((resolve) => this.log.end(resolve));
  }
}
