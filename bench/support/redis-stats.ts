import type { Redis } from 'ioredis';

export interface CommandStat {
  calls: number;
  usec: number;
  failedCalls: number;
}

/**
 * The bench's own bookkeeping on its admin connection (CONFIG RESETSTAT and the INFO that reads
 * the counters), left out of every sum so that a phase counts only what the code under test sent.
 */
const BOOKKEEPING = new Set(['info', 'config|resetstat']);

/** Zeroes INFO commandstats (and errorstats, cpu is cumulative): the start of a counted phase. */
export async function resetStats(admin: Redis): Promise<void> {
  await admin.config('RESETSTAT');
}

/** INFO commandstats as a map of command (lower case, `cmd|sub` for subcommands) to counters. */
export async function commandStats(admin: Redis): Promise<Map<string, CommandStat>> {
  const text = await admin.info('commandstats');
  const stats = new Map<string, CommandStat>();
  for (const line of text.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):(.*)$/.exec(line);
    if (!match) continue;
    const [, name, rest] = match as unknown as [string, string, string];
    if (BOOKKEEPING.has(name)) continue;
    const fields = Object.fromEntries(
      rest.split(',').map((pair) => {
        const [key, value] = pair.split('=') as [string, string];
        return [key, Number(value)];
      }),
    ) as Record<string, number>;
    stats.set(name, {
      calls: fields.calls ?? 0,
      usec: fields.usec ?? 0,
      failedCalls: fields.failed_calls ?? 0,
    });
  }
  return stats;
}

export function totalCalls(stats: Map<string, CommandStat>): number {
  let total = 0;
  for (const stat of stats.values()) total += stat.calls;
  return total;
}

export function totalUsec(stats: Map<string, CommandStat>): number {
  let total = 0;
  for (const stat of stats.values()) total += stat.usec;
  return total;
}

/** Calls per unit (change or job) by command, largest first, rounded to 2 decimals. */
export function callsPer(stats: Map<string, CommandStat>, units: number): Record<string, number> {
  return Object.fromEntries(
    [...stats.entries()]
      .filter(([, stat]) => stat.calls > 0)
      .sort(([, a], [, b]) => b.calls - a.calls)
      .map(([name, stat]) => [name, round(stat.calls / units, 2)]),
  );
}

/** Redis CPU seconds (main thread and children, user + system) so far. */
export async function redisCpuSeconds(admin: Redis): Promise<number> {
  const text = await admin.info('cpu');
  let total = 0;
  for (const key of ['used_cpu_sys', 'used_cpu_user']) {
    const match = new RegExp(`^${key}:([\\d.]+)`, 'm').exec(text);
    if (match) total += Number(match[1]);
  }
  return total;
}

export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
