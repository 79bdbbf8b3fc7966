/**
 * The one-command demo, as a user runs it: the built binary starts the simulator, the API and two
 * workers against the test Redis, submits its changes over HTTP and compares every end state
 * with the expected one. Its keys live under a prefix of its own, deleted when it ends.
 */
import { describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.js';

interface Row {
  change: string;
  server: string;
  kind: string;
  expected: string;
  actual: string;
  attempts: number;
  lastCode: string;
}

/** The summary table: the rows under the `change  server  kind ...` header and its dashes. */
function summaryRows(stdout: string): Row[] {
  const lines = stdout.split('\n');
  const header = lines.findIndex((line) =>
    /^change\s+server\s+kind\s+expected\s+actual\s+attempts\s+last code$/.test(line),
  );
  if (header < 0) return [];
  const rows: Row[] = [];
  for (const line of lines.slice(header + 2)) {
    if (line.trim() === '') break;
    const [change, server, kind, expected, actual, attempts, lastCode] = line.trim().split(/\s+/);
    rows.push({
      change: change ?? '',
      server: server ?? '',
      kind: kind ?? '',
      expected: expected ?? '',
      actual: actual ?? '',
      attempts: Number(attempts),
      lastCode: lastCode ?? '',
    });
  }
  return rows;
}

interface RolloutRow {
  id: string;
  targets: number;
  plan: string;
  expected: string;
  actual: string;
  changed: number;
  errors: number;
}

/** The rollout table's one row, under `rollout  targets  plan ...` and its dashes. */
function rolloutRow(stdout: string): RolloutRow | undefined {
  const lines = stdout.split('\n');
  const header = lines.findIndex((line) =>
    /^rollout\s+targets\s+plan\s+expected\s+actual\s+changed\s+errors\s+batches$/.test(line),
  );
  const row = header < 0 ? undefined : lines[header + 2];
  if (!row) return undefined;
  const [id, targets, plan, expected, actual, changed, errors] = row.trim().split(/\s+/);
  return {
    id: id ?? '',
    targets: Number(targets),
    plan: plan ?? '',
    expected: expected ?? '',
    actual: actual ?? '',
    changed: Number(changed),
    errors: Number(errors),
  };
}

describe('ipsec-fleet demo', () => {
  it('runs --short to the end with every change and the rollout in the state they should reach', {
    timeout: 60_000,
  }, async () => {
    const startedAt = Date.now();
    const result = await runCli(['demo', '--short'], { REDIS_URL: inject('redisUrl') });
    const elapsed = Date.now() - startedAt;
    const context = `exit ${result.code} after ${elapsed} ms\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`;

    expect(result.code, context).toBe(0);
    const rows = summaryRows(result.stdout);
    // 12 servers, one change each, plus the second of the two racing for one server.
    expect(rows, context).toHaveLength(13);
    for (const row of rows) {
      expect(row.change, context).toMatch(/^chg-/);
      expect(row.actual, `${row.change} (${row.kind})\n${context}`).toBe(row.expected);
    }
    expect(new Set(rows.map((row) => row.change)).size).toBe(rows.length);
    expect(rows.filter((row) => row.expected === 'rejected').map((row) => row.kind)).toEqual(['bad-subnet']);
    // Locked when submitted, unlocked seconds later: it backed off at least once before it passed.
    const locked = rows.find((row) => row.kind === 'psk-locked');
    expect(locked?.attempts, context).toBeGreaterThan(1);
    expect(result.stdout, context).toMatch(/^ok: race on iss-/m);
    expect(result.stdout, context).toMatch(/^ok: all 13 changes ended as expected/m);
    // The rollout: planned, refused to its submitter, approved by a second identity, completed.
    expect(result.stdout, context).toMatch(/planned in [\d.]+ s .*: would-change \d+ · no-op \d+/);
    expect(result.stdout, context).toContain('may not approve it: HTTP 403 APPROVER_IS_SUBMITTER');
    expect(result.stdout, context).toMatch(/approved by demo-approver \(1\/1\)/);
    const rollout = rolloutRow(result.stdout);
    expect(rollout, context).toBeDefined();
    expect(rollout?.id, context).toMatch(/^rol-/);
    expect(rollout?.targets, context).toBe(12);
    expect(rollout?.expected, context).toBe('completed');
    expect(rollout?.actual, context).toBe('completed');
    expect(rollout?.errors, context).toBe(0);
    expect(rollout?.changed, context).toBeGreaterThan(0);
    expect(result.stdout, context).toMatch(/^ok: rollout rol-\S+ completed as expected/m);
    expect(result.stdout).toContain('/v1/audit?format=jsonl');
    expect(result.stdout).toMatch(/ipsec-fleet audit --change chg-/);
  });
});
