import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../src/package-info.js';
import type { SimStats } from '../../src/sim/index.js';

export interface SimBanner {
  endpoint: string;
  accessKeyId: string;
  accessKeySecret: string;
  servers: Array<{ ipsecServerId: string; regionId: string }>;
}

export interface SimProcess {
  child: ChildProcess;
  banner: SimBanner;
  /** GET /_sim/stats (an admin route: not counted in the stats it returns). */
  stats(): Promise<SimStats>;
  /** CPU seconds (user + system) the child has used so far; undefined off Linux. */
  cpuSeconds(): number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts `ipsec-fleet sim` from the build (as users run it) in a child process, so the simulator
 * gets its own core instead of sharing the bench's event loop, and reads its JSON banner.
 */
export function startSimProcess(flags: string[]): Promise<SimProcess> {
  const cli = join(projectRoot, 'dist/src/cli/main.js');
  // BENCH_SIM_NODE_FLAGS (e.g. "--cpu-prof") profiles the simulator apart from the bench.
  const nodeFlags = (process.env.BENCH_SIM_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...nodeFlags, cli, 'sim', '--port', '0', ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const onExit = (code: number | null) =>
      reject(new Error(`the simulator exited (code ${code}) before listening`));
    child.once('exit', onExit);
    lines.once('line', (line) => {
      child.off('exit', onExit);
      lines.close();
      child.stdout?.resume();
      const banner = JSON.parse(line) as SimBanner;
      resolve({
        child,
        banner,
        async stats() {
          const response = await fetch(`${banner.endpoint}/_sim/stats`);
          if (!response.ok) throw new Error(`GET /_sim/stats answered ${response.status}`);
          return (await response.json()) as SimStats;
        },
        cpuSeconds: () => (child.pid === undefined ? undefined : procCpuSeconds(child.pid)),
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
  });
}

/** utime + stime of a process from /proc (Linux), in seconds; undefined where unavailable. */
export function procCpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}
