import type { RolloutProgressFrame, RolloutStreamItem } from './rollout-client.js';
import { cell, formatDuration } from './table.js';

/** Drawing a rollout's progress: a bar, counts by state and an ETA, redrawn in place on a TTY. */

const BAR_WIDTH = 24;

/** Remaining time from the pace so far; undefined until something finished. */
export function estimateRemainingMs(
  done: number,
  total: number,
  startedAt: number | undefined,
  now: number,
): number | undefined {
  if (startedAt === undefined || done <= 0 || total <= done) return undefined;
  const elapsed = Math.max(0, now - startedAt);
  return Math.round((elapsed / done) * (total - done));
}

export function formatProgress(
  frame: RolloutProgressFrame,
  startedAt: number | undefined,
  now: number,
): string {
  const { progress } = frame;
  const done = progress.succeeded + progress.errors;
  const total = progress.total;
  const filled = total === 0 ? 0 : Math.min(BAR_WIDTH, Math.floor((done * BAR_WIDTH) / total));
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
  const states = Object.entries(progress.byState)
    .filter(([, count]) => count > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([state, count]) => `${cell(state)}=${count}`)
    .join(' ');
  const eta = estimateRemainingMs(done, total, startedAt, now);
  const parts = [
    `${cell(frame.state)}`,
    `${bar} ${String(progress.percent).padStart(3)}%`,
    `${done}/${total}`,
    `ok=${progress.succeeded} err=${progress.errors} inflight=${progress.inFlight}`,
  ];
  if (progress.batchCount) parts.push(`batch ${progress.currentBatch}/${progress.batchCount}`);
  if (states) parts.push(states);
  if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
  if (frame.reason) parts.push(`(${cell(frame.reason)})`);
  return parts.join('  ');
}

export interface Watcher {
  /** Takes one stream item; returns the last progress frame seen. */
  take(item: RolloutStreamItem): void;
  /** Ends the in-place line (a TTY) so what follows starts on a line of its own. */
  finish(): void;
  readonly last: RolloutProgressFrame | undefined;
}

/**
 * Writes progress to `out`: in place (`\r`, erase line) on a TTY, a new line per change
 * otherwise; with `json`, each stream item as one JSON line.
 */
export function createWatcher(
  out: NodeJS.WriteStream,
  options: { json: boolean; tty: boolean; silent?: boolean; now?: () => number },
): Watcher {
  const now = options.now ?? Date.now;
  let last: RolloutProgressFrame | undefined;
  let startedAt: number | undefined;
  let lastLine = '';
  let inPlace = false;
  return {
    get last() {
      return last;
    },
    take(item) {
      if (options.json && !options.silent) {
        out.write(
          `${JSON.stringify(item.kind === 'audit' ? { audit: item.event } : { progress: item.frame })}\n`,
        );
      }
      if (item.kind === 'audit') {
        if (item.event.type === 'rollout_started' || item.event.type === 'rollout_approved')
          startedAt ??= item.event.ts;
        return;
      }
      last = item.frame;
      if (item.frame.state === 'running') startedAt ??= now();
      if (options.json || options.silent) return;
      const line = formatProgress(item.frame, startedAt, now());
      if (line === lastLine) return;
      lastLine = line;
      if (options.tty) {
        out.write(`\r\x1b[2K${line}`);
        inPlace = true;
      } else {
        out.write(`${line}\n`);
      }
    },
    finish() {
      if (inPlace) out.write('\n');
      inPlace = false;
    },
  };
}
