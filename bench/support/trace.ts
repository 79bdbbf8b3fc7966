import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { round } from './redis-stats.js';

/**
 * Diagnostics for where a change's time and Redis commands go. Not part of the headline figures:
 * both tools cost time (wrappers, MONITOR), so they run in trials of their own.
 */

type AnyFunction = (...args: unknown[]) => unknown;

/** Wall-clock latency of chosen methods, wrapped on their prototypes for one trial. */
export class LatencyTrace {
  private readonly samples = new Map<string, number[]>();
  private readonly restores: Array<() => void> = [];

  wrap(prototype: object, method: string, label: (args: unknown[]) => string): void {
    const target = prototype as Record<string, AnyFunction>;
    const original = target[method];
    if (typeof original !== 'function') throw new TypeError(`no method ${method} to trace`);
    const record = (name: string, started: bigint) => this.record(name, started);
    target[method] = function traced(this: unknown, ...args: unknown[]) {
      const started = process.hrtime.bigint();
      const name = label(args);
      const result = original.apply(this, args);
      if (result instanceof Promise) {
        return result.finally(() => record(name, started));
      }
      record(name, started);
      return result;
    };
    this.restores.push(() => {
      target[method] = original;
    });
  }

  record(name: string, started: bigint): void {
    this.add(name, Number(process.hrtime.bigint() - started) / 1e6);
  }

  add(name: string, ms: number): void {
    let list = this.samples.get(name);
    if (!list) {
      list = [];
      this.samples.set(name, list);
    }
    list.push(ms);
  }

  restore(): void {
    for (const restore of this.restores.splice(0).reverse()) restore();
  }

  /** Per label: calls per change, mean/p50/p99 latency, and summed ms per change. */
  summary(units: number): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [name, list] of this.samples) {
      const sorted = [...list].sort((a, b) => a - b);
      const sum = sorted.reduce((acc, value) => acc + value, 0);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      out[name] = {
        perChange: round(list.length / units, 2),
        meanMs: round(sum / list.length, 2),
        p50Ms: round(at(0.5), 2),
        p99Ms: round(at(0.99), 2),
        msPerChange: round(sum / units, 2),
      };
    }
    return out;
  }
}

interface CallerTally {
  calls: number;
  inner: Map<string, number>;
}

/**
 * Attributes every command Redis runs to the top-level command that caused it, from MONITOR:
 * Redis feeds a script's own line to monitors before the lines of the calls it makes (source
 * `lua`), and runs one command at a time, so each `lua` line belongs to the last other line.
 */
export class MonitorTally {
  private readonly callers = new Map<string, CallerTally>();
  private current: CallerTally | undefined;
  private readonly marks = new Map<string, () => void>();
  private counting = false;

  constructor(
    private readonly shaNames: Map<string, string>,
    private readonly ignore: ReadonlySet<string> = new Set(['info', 'config', 'monitor', 'client']),
  ) {}

  static async attach(url: string, shaNames: Map<string, string>, RedisClass: typeof Redis) {
    const tally = new MonitorTally(shaNames);
    const client = new RedisClass(url);
    const monitor = await client.monitor();
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      tally.onLine(args, source);
    });
    return {
      tally,
      close: () => {
        monitor.disconnect();
        client.disconnect();
      },
    };
  }

  /** Forgets what was counted so far. */
  reset(): void {
    this.callers.clear();
    this.current = undefined;
  }

  /** Starts counting exactly at this point of Redis's command stream (an ECHO seen by MONITOR). */
  begin(admin: Redis): Promise<void> {
    return this.mark(admin, 'bench:begin');
  }

  /** Stops counting exactly here; resolves once every line before it has been tallied. */
  end(admin: Redis): Promise<void> {
    return this.mark(admin, 'bench:end');
  }

  private async mark(admin: Redis, token: string): Promise<void> {
    const seen = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`MONITOR never showed ${token}`)), 10_000);
      this.marks.set(token, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await admin.echo(token);
    await seen;
  }

  onLine(args: string[], source: string): void {
    const command = (args[0] ?? '').toLowerCase();
    if (command === 'echo' && source !== 'lua') {
      const token = args[1] ?? '';
      const resolve = this.marks.get(token);
      if (resolve) {
        this.counting = token === 'bench:begin';
        this.current = undefined;
        this.marks.delete(token);
        resolve();
        return;
      }
    }
    if (source === 'lua') {
      if (!this.counting || !this.current) return;
      this.current.inner.set(command, (this.current.inner.get(command) ?? 0) + 1);
      return;
    }
    if (this.ignore.has(command)) {
      this.current = undefined;
      return;
    }
    let name = command;
    if (command === 'evalsha') name = `evalsha ${this.shaNames.get(args[1] ?? '') ?? args[1]?.slice(0, 8)}`;
    else if (command === 'eval') name = 'eval (script load on NOSCRIPT)';
    if (!this.counting) {
      this.current = undefined;
      return;
    }
    let tally = this.callers.get(name);
    if (!tally) {
      tally = { calls: 0, inner: new Map() };
      this.callers.set(name, tally);
    }
    tally.calls++;
    this.current = tally;
  }

  /**
   * Per top-level command (scripts by name): calls per change, and the commands run inside it per
   * change; `total` counts the command itself plus its inner ones, as INFO commandstats does.
   */
  summary(units: number): {
    totalPerChange: number;
    byCaller: Record<string, { perChange: number; totalPerChange: number; inner?: Record<string, number> }>;
  } {
    const rows = [...this.callers.entries()].map(([name, tally]) => {
      let inner = 0;
      for (const count of tally.inner.values()) inner += count;
      return { name, tally, total: tally.calls + inner };
    });
    rows.sort((a, b) => b.total - a.total);
    const byCaller: Record<
      string,
      { perChange: number; totalPerChange: number; inner?: Record<string, number> }
    > = {};
    let total = 0;
    for (const { name, tally, total: rowTotal } of rows) {
      total += rowTotal;
      const entry: { perChange: number; totalPerChange: number; inner?: Record<string, number> } = {
        perChange: round(tally.calls / units, 2),
        totalPerChange: round(rowTotal / units, 2),
      };
      if (tally.inner.size > 0) {
        entry.inner = Object.fromEntries(
          [...tally.inner.entries()]
            .sort(([, a], [, b]) => b - a)
            .map(([command, count]) => [command, round(count / units, 2)]),
        );
      }
      byCaller[name] = entry;
    }
    return { totalPerChange: round(total / units, 2), byCaller };
  }
}

/** sha1 → script name for every script defined on these ioredis connections (ours and BullMQ's). */
export function scriptNames(connections: readonly unknown[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const connection of connections) {
    const set = (connection as { scriptsSet?: Record<string, { sha?: string; lua?: string }> }).scriptsSet;
    if (!set) continue;
    for (const [name, script] of Object.entries(set)) {
      const sha =
        script.sha ?? (script.lua ? createHash('sha1').update(script.lua).digest('hex') : undefined);
      if (sha) names.set(sha, name.replace(/:[\d.]+$/, ''));
    }
  }
  return names;
}
