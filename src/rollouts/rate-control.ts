import type { CountOrPercent, Strategy } from './rollout.js';

/**
 * Rate control, as pure arithmetic over the number of targets the rollout runs. Percentages are
 * of that number: batch and concurrency sizes round up (never below 1), the error threshold
 * rounds down (10% of 5 targets tolerates no error, as OOS counts it).
 */

function share(value: CountOrPercent | string, total: number, round: (n: number) => number): number {
  if (typeof value === 'number') return value;
  return round((Number(value.slice(0, -1)) * total) / 100);
}

/** Batches as [start, end) ranges over the targets, in order; the last size repeats. */
export function batchRanges(sizes: readonly CountOrPercent[], total: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let start = 0;
  let index = 0;
  while (start < total) {
    const size = Math.max(
      1,
      share(sizes[Math.min(index, sizes.length - 1)] as CountOrPercent, total, Math.ceil),
    );
    const end = Math.min(total, start + size);
    ranges.push([start, end]);
    start = end;
    index++;
  }
  return ranges;
}

export function concurrencyLimit(value: CountOrPercent, total: number): number {
  return Math.max(1, share(value, total, Math.ceil));
}

/** SSM's ramp: 1 in flight, then 2 once one finished, 4 once three did, ... up to the limit. */
export function rampedConcurrency(limit: number, finished: number): number {
  return Math.min(limit, 2 ** Math.floor(Math.log2(finished + 1)));
}

export function errorThreshold(value: number | string, total: number): number {
  return Math.max(0, share(value, total, Math.floor));
}

export function batchCount(strategy: Strategy, total: number): number | undefined {
  return 'batches' in strategy ? batchRanges(strategy.batches, total).length : undefined;
}

/**
 * `maxChangesPerMinute` as a sliding window over the times changes were started: the starts still
 * inside the window, how many more may start now, and when the oldest leaves it (so a controller
 * knows how long to wait when none may).
 */
export function startWindow(
  starts: readonly number[],
  limit: number,
  windowMs: number,
  now: number,
): { recent: number[]; allowed: number; freesAt: number | undefined } {
  const recent = starts.filter((at) => at > now - windowMs);
  const allowed = Math.max(0, limit - recent.length);
  const oldest = recent.length > 0 ? Math.min(...recent) : undefined;
  return { recent, allowed, freesAt: oldest === undefined ? undefined : oldest + windowMs };
}
