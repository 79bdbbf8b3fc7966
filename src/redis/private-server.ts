import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IpsecFleetError } from '../errors.js';

export class RedisServerStartError extends IpsecFleetError {
  constructor(message: string, options?: ErrorOptions) {
    super('REDIS_SERVER_START_FAILED', message, options);
  }
}

export interface PrivateRedisOptions {
  /** Keep an append-only file so a restart on the same dir recovers every write (DESIGN invariant 8). */
  appendOnly?: boolean;
  /** Data directory; a fresh temporary one when omitted (removed by stop()). */
  dir?: string;
  port?: number;
  executable?: string;
  /**
   * Its own process group, so a Ctrl-C in the terminal reaches only the caller, which then stops
   * the processes that use this Redis before stopping it (the demo).
   */
  detached?: boolean;
}

export interface PrivateRedis {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  /** SIGTERM and wait; removes the data dir only if this module created it. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
  /** SIGKILL: a crash, for recovery tests. */
  kill(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new RedisServerStartError('could not allocate a free port'));
      });
    });
  });
}

/**
 * Starts a redis-server from PATH that belongs to the caller alone: tests and the demo use it so
 * they never touch (let alone flush) a Redis somebody else runs.
 */
export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'ipsec-fleet-redis-')));
  const port = options.port ?? (await freePort());
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
    // notice is the lowest level that prints the ready line this function waits for.
    '--loglevel',
    'notice',
  ];
  const child = spawn(options.executable ?? 'redis-server', args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(
      () => fail(new RedisServerStartError(`redis-server did not start within 10 s: ${output}`)),
      10_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Ready to accept connections')) done();
    };
    const onError = (error: NodeJS.ErrnoException) =>
      fail(
        new RedisServerStartError(
          error.code === 'ENOENT'
            ? 'redis-server is not on PATH: install it (apt-get install redis-server, brew install redis) or set REDIS_URL'
            : `redis-server failed to start: ${error.message}`,
          { cause: error },
        ),
      );
    const onExit = (code: number | null) =>
      fail(new RedisServerStartError(`redis-server exited with ${code}: ${output}`));
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('error', onError);
      child.off('exit', onExit);
    }
    function done() {
      cleanup();
      resolve();
    }
    function fail(error: Error) {
      cleanup();
      child.kill('SIGKILL');
      reject(error);
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', onError);
    child.once('exit', onExit);
  });
  child.stdout?.resume();
  child.stderr?.resume();

  const terminate = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    process: child,
    async stop(stopOptions = {}) {
      await terminate('SIGTERM');
      if (ownsDir && !stopOptions.keepDir) await rm(dir, { recursive: true, force: true });
    },
    kill: () => terminate('SIGKILL'),
  };
}
