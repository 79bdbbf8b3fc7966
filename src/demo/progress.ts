import { CHANGE_STATES, type ChangeState, TERMINAL_STATES } from '../orchestrator/change.js';

export interface ProgressCounts {
  total: number;
  byState: Partial<Record<ChangeState, number>>;
}

export function countStates(states: readonly string[], total: number): ProgressCounts {
  const byState: Partial<Record<ChangeState, number>> = {};
  for (const state of states) byState[state as ChangeState] = (byState[state as ChangeState] ?? 0) + 1;
  return { total, byState };
}

export function doneCount(counts: ProgressCounts): number {
  let done = 0;
  for (const [state, count] of Object.entries(counts.byState)) {
    if (TERMINAL_STATES.has(state as ChangeState)) done += count ?? 0;
  }
  return done;
}

/** `succeeded 30 · rejected 1 · backing_off 4 · queued 2`, in the order of the state machine. */
export function describeCounts(counts: ProgressCounts): string {
  const parts = [...CHANGE_STATES]
    .sort((a, b) => Number(TERMINAL_STATES.has(b)) - Number(TERMINAL_STATES.has(a)))
    .filter((state) => (counts.byState[state] ?? 0) > 0)
    .map((state) => `${state} ${counts.byState[state]}`);
  return parts.length > 0 ? parts.join(' · ') : 'nothing listed yet';
}

export function progressBar(done: number, total: number, width = 30): string {
  const share = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Live progress: on a terminal two lines redrawn in place (a bar, then the counts by state), with
 * notes printed above them; elsewhere (a log, a CI job, a test) a plain line now and then.
 */
export class ProgressView {
  private drawn = 0;
  private lastPlain = 0;
  private last: ProgressCounts | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly startedAt: number,
    private readonly tty: boolean = Boolean(out.isTTY),
    private readonly plainEveryMs = 2_000,
  ) {}

  private lines(counts: ProgressCounts): string[] {
    const done = doneCount(counts);
    const percent = counts.total === 0 ? 100 : Math.floor((done / counts.total) * 100);
    return [
      `  ${progressBar(done, counts.total)} ${done}/${counts.total} done  ${percent}%  ${seconds(Date.now() - this.startedAt)}`,
      `  ${describeCounts(counts)}`,
    ];
  }

  private erase(): void {
    if (!this.tty || this.drawn === 0) return;
    // Up to the first drawn line, to its start, then clear from there to the end of the screen.
    this.out.write(`\x1b[${this.drawn}A\r\x1b[0J`);
    this.drawn = 0;
  }

  update(counts: ProgressCounts): void {
    this.last = counts;
    if (this.tty) {
      this.erase();
      // A line wider than the terminal would wrap and spoil the count of lines to redraw.
      const width = Math.max(20, (this.out.columns || 80) - 1);
      const lines = this.lines(counts).map((line) => line.slice(0, width));
      this.out.write(`${lines.join('\n')}\n`);
      this.drawn = lines.length;
      return;
    }
    const now = Date.now();
    if (now - this.lastPlain < this.plainEveryMs) return;
    this.lastPlain = now;
    this.out.write(`${this.plainLine(counts)}\n`);
  }

  private plainLine(counts: ProgressCounts): string {
    return this.lines(counts)
      .map((line) => line.trim())
      .join(' | ');
  }

  /** A line above the progress (a fault lifted, a stage reached). */
  note(line: string): void {
    const stamp = `[${seconds(Date.now() - this.startedAt).padStart(7)}]`;
    this.erase();
    this.out.write(`${stamp} ${line}\n`);
    if (this.tty && this.last) this.update(this.last);
  }

  /** The last state, drawn once more and left on screen. */
  finish(): void {
    if (!this.last) return;
    if (this.tty) {
      this.update(this.last);
      this.drawn = 0;
    } else {
      this.out.write(`${this.plainLine(this.last)}\n`);
    }
  }
}
