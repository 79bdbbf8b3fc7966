import type { ChangeView } from '../orchestrator/change.js';
import type { ChangeKind, ExpectedState, PlannedChange } from './scenario.js';

export interface SummaryRow {
  change: string;
  server: string;
  kind: ChangeKind;
  expected: ExpectedState;
  actual: string;
  attempts: number;
  lastCode: string;
}

export const SUMMARY_COLUMNS = ['change', 'server', 'kind', 'expected', 'actual', 'attempts', 'last code'];

/** One row per planned change, in plan order; `actual` is `missing` when the API never showed it. */
export function summaryRows(
  planned: readonly PlannedChange[],
  submittedIds: ReadonlyMap<number, string>,
  latest: ReadonlyMap<string, ChangeView>,
): SummaryRow[] {
  return planned.map((plan) => {
    const id = submittedIds.get(plan.seq);
    const change = id ? latest.get(id) : undefined;
    return {
      change: id ?? '(not submitted)',
      server: plan.ipsecServerId,
      kind: plan.kind,
      expected: plan.expected,
      actual: change?.state ?? (id ? 'missing' : 'not-submitted'),
      attempts: change?.runs ?? 0,
      lastCode: change?.lastCode ?? '-',
    };
  });
}

/** A plain, aligned text table (no box drawing: it must read well in a CI log too). */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

export function formatSummary(rows: readonly SummaryRow[]): string {
  return formatTable(
    SUMMARY_COLUMNS,
    rows.map((row) => [
      row.change,
      row.server,
      row.kind,
      row.expected,
      row.actual,
      String(row.attempts),
      row.lastCode,
    ]),
  );
}
