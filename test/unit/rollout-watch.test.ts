import { describe, expect, it } from 'vitest';
import type { RolloutProgressFrame } from '../../src/cli/rollout-client.js';
import { createWatcher, estimateRemainingMs, formatProgress } from '../../src/cli/rollout-watch.js';

function frame(state: string, succeeded: number, errors = 0, total = 4): RolloutProgressFrame {
  return {
    id: 'rol-1',
    state: state as RolloutProgressFrame['state'],
    reason: undefined,
    plan: undefined,
    progress: {
      total,
      submitted: succeeded + errors + 1,
      inFlight: 1,
      succeeded,
      errors,
      byState: { succeeded, running: 1, queued: 0 },
      percent: Math.floor(((succeeded + errors) * 100) / total),
      currentBatch: 1,
      batchCount: 2,
    },
    createdAt: 1,
    updatedAt: 2,
    finishedAt: undefined,
  };
}

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return {
    chunks,
    out: { isTTY, write: (text: string) => chunks.push(text) } as unknown as NodeJS.WriteStream,
  };
}

describe('rollout --watch drawing', () => {
  it('draws a bar, counts by state and an ETA from the pace so far', () => {
    const line = formatProgress(frame('running', 1), 1_000, 11_000);
    expect(line).toBe(
      'running  [######..................]  25%  1/4  ok=1 err=0 inflight=1  batch 1/2  running=1 succeeded=1  ETA 30s',
    );
    expect(estimateRemainingMs(0, 4, 0, 10)).toBeUndefined();
    expect(estimateRemainingMs(2, 4, 0, 10_000)).toBe(10_000);
  });

  it('redraws in place on a TTY and writes plain lines otherwise', () => {
    let now = 0;
    const tty = sink(true);
    const watcher = createWatcher(tty.out, { json: false, tty: true, now: () => now });
    watcher.take({ kind: 'progress', frame: frame('running', 0) });
    now = 5_000;
    watcher.take({ kind: 'progress', frame: frame('running', 2) });
    watcher.finish();
    expect(tty.chunks.slice(0, 2).every((chunk) => chunk.startsWith('\r\u001b[2K'))).toBe(true);
    expect(tty.chunks.at(-1)).toBe('\n');

    const plain = sink(false);
    const lines = createWatcher(plain.out, { json: false, tty: false });
    lines.take({ kind: 'progress', frame: frame('running', 1) });
    lines.take({ kind: 'progress', frame: frame('completed', 4) });
    lines.finish();
    expect(plain.chunks).toHaveLength(2);
    expect(plain.chunks.every((chunk) => chunk.endsWith('\n') && !chunk.includes('\u001b'))).toBe(true);
    expect(lines.last?.state).toBe('completed');
  });

  it('--json: one JSON line per stream item', () => {
    const json = sink(false);
    const watcher = createWatcher(json.out, { json: true, tty: true });
    watcher.take({ kind: 'progress', frame: frame('running', 1) });
    expect(JSON.parse(json.chunks[0] as string).progress.id).toBe('rol-1');
  });
});
