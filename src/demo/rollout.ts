import { estimateRemainingMs } from '../cli/rollout-watch.js';
import { cell, formatDuration } from '../cli/table.js';
import type { PlanKind, RolloutView, TargetPlan } from '../rollouts/rollout.js';
import type { RolloutSpecInput } from '../rollouts/rollout-spec.js';
import { type DemoHttp, DemoHttpError } from './http.js';
import { describeCounts, progressBar } from './progress.js';
import { type DemoServer, IKE_UPGRADE } from './scenario.js';
import { formatTable } from './summary.js';

/**
 * The demo's second part: one fleet rollout over the HTTP API. An IKE upgrade for every server,
 * planned (a read and a dry run of each), approved by a second identity (the submitter's own
 * approval is refused), then run in batches of 1, 25% and the rest with no error allowed, drawn
 * as a live progress bar until it completes.
 */

/** The end state the demo's rollout must reach. */
export const ROLLOUT_EXPECTED = 'completed';

export const ROLLOUT_BATCHES: Array<number | string> = [1, '25%', '100%'];

const PLAN_KINDS: readonly PlanKind[] = ['would-change', 'no-op', 'rejected', 'blocked', 'unknown'];
const WAITING = new Set(['planning', 'approved', 'running', 'paused']);
const POLL_MS = 250;

export interface RolloutOutcome {
  id: string | undefined;
  targets: number;
  plan: Partial<Record<PlanKind, number>> | undefined;
  expected: typeof ROLLOUT_EXPECTED;
  actual: string;
  succeeded: number;
  errors: number;
  batches: number | undefined;
  /** From the approval to the end. */
  elapsedMs: number;
  /** The submitter's own approval was refused (403 APPROVER_IS_SUBMITTER). */
  selfApprovalRefused: boolean;
  approver: string;
  /** Why it did not end as expected, when it did not. */
  problem: string | undefined;
}

export interface RolloutPartOptions {
  http: DemoHttp;
  servers: readonly DemoServer[];
  submitter: string;
  submitterToken: string;
  approver: string;
  approverToken: string;
  idempotencyKey: string;
  deadlineMs: number;
  out: NodeJS.WriteStream;
  /** The promise, unless the demo is interrupted or one of its processes dies first. */
  guard: <T>(promise: Promise<T>) => Promise<T>;
  tty?: boolean;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

export function rolloutSpec(servers: readonly DemoServer[]): RolloutSpecInput {
  return {
    targets: servers.map(({ ipsecServerId, regionId }) => ({ ipsecServerId, regionId })),
    params: structuredClone(IKE_UPGRADE),
    strategy: { batches: ROLLOUT_BATCHES },
    maxErrors: 0,
    approvals: { required: 1, expiresMs: 600_000 },
    note: 'demo: IKE upgrade for the whole fleet',
  };
}

/** `would-change 40 · no-op 10 · rejected 0 · blocked 0` (unknown only when there is one). */
export function describePlanCounts(plan: Partial<Record<PlanKind, number>> | undefined): string {
  if (!plan) return 'no plan';
  return PLAN_KINDS.filter((kind) => kind !== 'unknown' || (plan[kind] ?? 0) > 0)
    .map((kind) => `${kind} ${plan[kind] ?? 0}`)
    .join(' · ');
}

/** The targets the plan will not run, with the cloud's code: at most `limit` of them. */
function planExceptions(plan: readonly TargetPlan[], limit = 3): string[] {
  const odd = plan.filter((target) => target.kind !== 'would-change' && target.kind !== 'no-op');
  const lines = odd
    .slice(0, limit)
    .map(
      (target) =>
        `    ${target.ipsecServerId}: ${target.kind}${target.code ? ` (${target.code}${target.message ? `: ${target.message}` : ''})` : ''}`,
    );
  if (odd.length > limit) lines.push(`    … and ${odd.length - limit} more`);
  return lines;
}

/** Two lines: the bar (percent, done, batch, ETA), then the rollout's changes by state. */
export function rolloutLines(view: RolloutView, startedAt: number, now: number): [string, string] {
  const { progress } = view;
  const done = progress.succeeded + progress.errors;
  const eta = estimateRemainingMs(done, progress.total, startedAt, now);
  const parts = [
    `${progressBar(done, progress.total)} ${progress.percent}%`,
    `${done}/${progress.total} done`,
    progress.batchCount ? `batch ${progress.currentBatch}/${progress.batchCount}` : undefined,
    eta === undefined ? undefined : `ETA ${formatDuration(eta)}`,
  ];
  const counts = describeCounts({ total: progress.total, byState: progress.byState });
  return [
    `  ${parts.filter(Boolean).join('  ')}`,
    `  ${view.state} ${seconds(now - startedAt)} · changes: ${counts}`,
  ];
}

/** Redrawn in place on a terminal; elsewhere one plain line on each new batch and every 2 s. */
class RolloutBar {
  private drawn = 0;
  private lastPlain = 0;
  private lastBatch = -1;
  private last: RolloutView | undefined;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly tty: boolean,
    private readonly startedAt: number,
  ) {}

  update(view: RolloutView): void {
    this.last = view;
    const lines = rolloutLines(view, this.startedAt, Date.now());
    if (this.tty) {
      if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A\r\x1b[0J`);
      // A line wider than the terminal would wrap and spoil the count of lines to redraw.
      const width = Math.max(20, (this.out.columns || 80) - 1);
      this.out.write(`${lines.map((line) => line.slice(0, width)).join('\n')}\n`);
      this.drawn = lines.length;
      return;
    }
    const now = Date.now();
    if (view.progress.currentBatch === this.lastBatch && now - this.lastPlain < 2_000) return;
    this.lastPlain = now;
    this.lastBatch = view.progress.currentBatch;
    this.out.write(`${lines.map((line) => line.trim()).join(' | ')}\n`);
  }

  /** The last state, drawn once more and left on screen. */
  finish(): void {
    if (!this.last) return;
    if (this.tty) {
      this.update(this.last);
      this.drawn = 0;
    } else {
      this.lastBatch = -1;
      this.update(this.last);
    }
  }
}

export async function runRolloutPart(options: RolloutPartOptions): Promise<RolloutOutcome> {
  const { servers, out } = options;
  const outcome: RolloutOutcome = {
    id: undefined,
    targets: servers.length,
    plan: undefined,
    expected: ROLLOUT_EXPECTED,
    actual: 'not-created',
    succeeded: 0,
    errors: 0,
    batches: undefined,
    elapsedMs: 0,
    selfApprovalRefused: false,
    approver: options.approver,
    problem: undefined,
  };
  const take = (view: RolloutView) => {
    outcome.actual = view.state;
    outcome.plan = view.plan ?? outcome.plan;
    outcome.succeeded = view.progress.succeeded;
    outcome.errors = view.progress.errors;
    outcome.batches = view.progress.batchCount ?? outcome.batches;
  };

  try {
    return await followRollout(options, outcome, take);
  } catch (error) {
    // The API answered what the demo did not expect: the rollout part fails, the summary still prints.
    if (!(error instanceof DemoHttpError)) throw error;
    outcome.problem = error.message;
    out.write(`  the rollout stopped: ${error.message}\n`);
    return outcome;
  }
}

async function followRollout(
  options: RolloutPartOptions,
  outcome: RolloutOutcome,
  take: (view: RolloutView) => void,
): Promise<RolloutOutcome> {
  const { http, servers, guard, out } = options;
  const say = (line = '') => out.write(`${line}\n`);
  const sleep = (ms: number) => guard(new Promise((resolve) => setTimeout(resolve, ms)));
  const startedAt = Date.now();
  const deadline = startedAt + options.deadlineMs;
  say(
    `rollout: an IKE upgrade (ikev2/aes256/sha256/group14) for all ${servers.length} servers over ` +
      'POST /v1/rollouts: batches of 1, then 25%, then the rest; maxErrors 0; ' +
      `submitted by ${options.submitter}, approved by ${options.approver}.`,
  );
  const created = await guard(http.createRollout(rolloutSpec(servers), options.idempotencyKey));
  outcome.id = created.id;
  take(created);

  // The plan: each server read and dry-run, nothing applied.
  let detail = await guard(http.rollout(created.id));
  while (detail.rollout.state === 'planning' && Date.now() < deadline) {
    await sleep(POLL_MS);
    detail = await guard(http.rollout(created.id));
  }
  take(detail.rollout);
  say(
    `  ${created.id} planned in ${seconds(Date.now() - startedAt)} (a read and a dry run of each server, ` +
      `nothing applied): ${describePlanCounts(detail.rollout.plan)}`,
  );
  const sample = detail.plan.find((target) => target.kind === 'would-change');
  if (sample?.diff?.length) {
    const fields = sample.diff.map((entry) => `${entry.field} ${cell(entry.from)} → ${cell(entry.to)}`);
    const more = fields.length > 3 ? `, and ${fields.length - 3} more` : '';
    say(`    would change, e.g. ${sample.ipsecServerId}: ${fields.slice(0, 3).join(', ')}${more}`);
  }
  if ((detail.rollout.plan?.['no-op'] ?? 0) > 0) say('    no-op: already upgraded (by part one)');
  for (const line of planExceptions(detail.plan)) say(line);
  if (detail.rollout.state !== 'awaiting_approval') {
    outcome.problem = `it is ${detail.rollout.state} after planning, not awaiting_approval`;
    return outcome;
  }

  // Approvals: the submitter's own is refused, the second identity's starts it.
  try {
    await guard(http.approveRollout(created.id, options.submitterToken));
    say(`  ${options.submitter} approved its own rollout: it should have been refused`);
  } catch (error) {
    if (!(error instanceof DemoHttpError)) throw error;
    outcome.selfApprovalRefused = error.status === 403 && error.body.includes('APPROVER_IS_SUBMITTER');
    say(
      `  ${options.submitter} (its submitter) may not approve it: HTTP ${error.status}` +
        `${outcome.selfApprovalRefused ? ' APPROVER_IS_SUBMITTER' : ` ${error.body.slice(0, 200)}`}`,
    );
  }
  const approved = await guard(http.approveRollout(created.id, options.approverToken));
  take(approved);
  const approvedAt = Date.now();
  say(
    `  approved by ${options.approver} (${approved.approvals}/${approved.approvalsRequired}): ${approved.state}`,
  );

  // Live progress until it ends.
  const bar = new RolloutBar(out, options.tty ?? Boolean(out.isTTY), approvedAt);
  let view: RolloutView = approved;
  let failures = 0;
  for (;;) {
    try {
      view = (await guard(http.rollout(created.id))).rollout;
      failures = 0;
    } catch (error) {
      if (error instanceof DemoHttpError || ++failures >= 20) throw error;
    }
    take(view);
    bar.update(view);
    if (!WAITING.has(view.state) && view.state !== 'awaiting_approval') break;
    if (Date.now() > deadline) {
      bar.finish();
      outcome.problem = `still ${view.state} after ${seconds(options.deadlineMs)}`;
      outcome.elapsedMs = Date.now() - approvedAt;
      say(`  gave up waiting for the rollout after ${seconds(options.deadlineMs)}`);
      return outcome;
    }
    await sleep(POLL_MS);
  }
  bar.finish();
  outcome.elapsedMs = (view.finishedAt ?? Date.now()) - approvedAt;
  if (view.state !== ROLLOUT_EXPECTED) {
    outcome.problem = `it ended ${view.state}${view.reason ? ` (${view.reason})` : ''}`;
  } else if (!outcome.selfApprovalRefused) {
    outcome.problem = 'its submitter could approve it';
  }
  return outcome;
}

export function rolloutOk(outcome: RolloutOutcome): boolean {
  return outcome.actual === outcome.expected && outcome.problem === undefined;
}

export const ROLLOUT_COLUMNS = [
  'rollout',
  'targets',
  'plan',
  'expected',
  'actual',
  'changed',
  'errors',
  'batches',
];

export function formatRolloutSummary(outcome: RolloutOutcome): string {
  return formatTable(ROLLOUT_COLUMNS, [
    [
      outcome.id ?? '(not created)',
      String(outcome.targets),
      outcome.plan
        ? PLAN_KINDS.filter((kind) => (outcome.plan?.[kind] ?? 0) > 0)
            .map((kind) => `${kind}=${outcome.plan?.[kind]}`)
            .join(',')
        : '-',
      outcome.expected,
      outcome.actual,
      String(outcome.succeeded),
      String(outcome.errors),
      outcome.batches === undefined ? '-' : String(outcome.batches),
    ],
  ]);
}

/** The verdict line: `ok: rollout rol-… completed as expected: …` or `FAILED: rollout …`. */
export function rolloutVerdict(outcome: RolloutOutcome): string {
  const id = outcome.id ?? '(not created)';
  return rolloutOk(outcome)
    ? `ok: rollout ${id} completed as expected: ${outcome.succeeded} servers upgraded in ` +
        `${outcome.batches ?? '?'} batches in ${seconds(outcome.elapsedMs)} after its approval by ` +
        `${outcome.approver}; its submitter's own approval was refused`
    : `FAILED: rollout ${id} is ${outcome.actual}, expected ${outcome.expected}: ${outcome.problem ?? 'unknown'}`;
}
