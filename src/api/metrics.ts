import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditEvent } from '../audit/event.js';
import { CHANGE_STATES, type ChangeState, TERMINAL_STATES } from '../orchestrator/change.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import { withTimeout } from '../with-timeout.js';

// A scrape must answer within Prometheus' default timeout (10 s) even while Redis does not.
const COLLECT_TIMEOUT_MS = 1_000;

/** The state a change is in after an event of this type; other types leave it where it was. */
const STATE_AFTER: Readonly<Record<string, ChangeState>> = {
  submitted: 'queued',
  approved: 'queued',
  running: 'running',
  dry_run_passed: 'running',
  applied: 'running',
  backoff: 'backing_off',
  succeeded: 'succeeded',
  rejected: 'rejected',
  failed: 'failed',
  cancelled: 'cancelled',
  expired: 'expired',
};

export function stateAfter(event: Pick<AuditEvent, 'type'> & { details?: unknown }): ChangeState | undefined {
  // A submission the approval policy caught carries its approval terms and waits for approval.
  if (event.type === 'submitted' && (event.details as { approval?: unknown } | undefined)?.approval) {
    return 'awaiting_approval';
  }
  return Object.hasOwn(STATE_AFTER, event.type) ? STATE_AFTER[event.type] : undefined;
}

export const CLOUD_ACTIONS = {
  update: 'UpdateIpsecServer',
  list: 'ListIpsecServers',
} as const;

/** Which call of a change a failed step was making. */
const ACTION_OF_PHASE: Readonly<Record<string, string>> = {
  read: CLOUD_ACTIONS.list,
  verify: CLOUD_ACTIONS.list,
  'dry-run': CLOUD_ACTIONS.update,
  apply: CLOUD_ACTIONS.update,
};

/**
 * Codes of failures that happen without a cloud call answering them: the account's circuit
 * holding a change back, reads that answered but kept showing another config, and local
 * configuration problems found before a request is sent.
 */
const NOT_A_CLOUD_CALL = new Set([
  'CircuitOpen',
  'VerifyMismatch',
  'PROFILE_UNKNOWN',
  'SECRET_UNSEAL_FAILED',
  'CREDENTIALS_MISSING',
  'ENDPOINT_INVALID',
  'PARAM_NOT_ENCODABLE',
]);

/**
 * The cloud call an event records, if any. Successful calls are known from the step they let
 * through (a dry run that passed, an apply); failed ones from the `code` of the backoff, rejection
 * or failure they caused and the phase it happened in. Successful reads leave no event of their
 * own, so they are not counted.
 */
export function cloudCallOf(event: AuditEvent): { action: string; code: string } | undefined {
  switch (event.type) {
    case 'dry_run_passed':
      return { action: CLOUD_ACTIONS.update, code: 'DryRunOperation' };
    case 'applied':
      return { action: CLOUD_ACTIONS.update, code: 'OK' };
    case 'backoff':
    case 'rejected':
    case 'failed': {
      if (!event.code || NOT_A_CLOUD_CALL.has(event.code)) return undefined;
      const phase = (event.details as { phase?: unknown } | undefined)?.phase;
      const action =
        typeof phase === 'string' && Object.hasOwn(ACTION_OF_PHASE, phase)
          ? ACTION_OF_PHASE[phase]
          : undefined;
      return action ? { action, code: event.code } : undefined;
    }
    default:
      return undefined;
  }
}

/** Seconds, from "behind another change" to "a couple of hours behind a locked account". */
export const LANE_WAIT_BUCKETS = [
  0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200,
];

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (default true). */
  defaultMetrics?: boolean;
}

/**
 * The API process's metrics, in a registry of its own (never prom-client's global one, so that
 * several apps can live in one process). Change metrics are derived from the audit stream, fed to
 * `observe` by the AuditTail; queue depth and live workers are read from Redis at scrape time.
 * Nothing here writes to Redis.
 *
 * Memory stays bounded by the changes that are not finished: a change's state is held in a map
 * until its terminal event, which moves it into a per-state total.
 */
export class AuditMetrics {
  readonly registry = new Registry();
  /** Changes not yet finished, by the state their last event put them in. */
  private readonly open = new Map<string, ChangeState>();
  private readonly counts = new Map<ChangeState, number>(CHANGE_STATES.map((state) => [state, 0]));
  /** Submission time of the changes that have not run yet (for the lane wait). */
  private readonly submittedAt = new Map<string, number>();
  private readonly cloudCalls: Counter<'action' | 'code'>;
  private readonly backoffs: Counter<'code'>;
  private readonly laneWait: Histogram;

  constructor(orchestrator: Orchestrator, options: MetricsOptions = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });

    const counts = this.counts;
    new Gauge({
      name: 'ipsec_fleet_changes',
      help: 'Changes by the state their last audit event puts them in',
      labelNames: ['state'],
      registers,
      collect() {
        for (const [state, count] of counts) this.set({ state }, count);
      },
    });
    this.cloudCalls = new Counter({
      name: 'ipsec_fleet_cloud_calls_total',
      help: 'Cloud API calls recorded in the audit log, by action and response code',
      labelNames: ['action', 'code'],
      registers,
    });
    this.backoffs = new Counter({
      name: 'ipsec_fleet_backoffs_total',
      help: 'Backoffs of changes, by the code that caused them',
      labelNames: ['code'],
      registers,
    });
    this.laneWait = new Histogram({
      name: 'ipsec_fleet_lane_wait_seconds',
      help: 'Time from the submission of a change to its first run',
      buckets: LANE_WAIT_BUCKETS,
      registers,
    });
    new Gauge({
      name: 'ipsec_fleet_queue_depth',
      help: 'BullMQ jobs of runnable changes (lane heads), by job state',
      labelNames: ['state'],
      registers,
      async collect() {
        try {
          const jobs = await withTimeout(
            orchestrator.queue.queue.getJobCounts('waiting', 'active', 'delayed'),
            COLLECT_TIMEOUT_MS,
          );
          for (const state of ['waiting', 'active', 'delayed']) this.set({ state }, jobs[state] ?? 0);
        } catch {
          // Redis did not answer: no value rather than a stale one, and the rest is still served.
          this.reset();
        }
      },
    });
    new Gauge({
      name: 'ipsec_fleet_live_workers',
      help: 'Workers that reported a heartbeat recently',
      registers,
      async collect() {
        try {
          this.set((await withTimeout(orchestrator.liveWorkers(), COLLECT_TIMEOUT_MS)).length);
        } catch {
          this.reset();
        }
      },
    });
  }

  /** Takes one audit event into account; events must come in stream order. */
  observe(event: AuditEvent): void {
    const state = stateAfter(event);
    if (state) this.moveTo(event.changeId, state);

    // A change held for approval joins its lane when approved: its lane wait starts then.
    if (event.type === 'submitted' || event.type === 'approved')
      this.submittedAt.set(event.changeId, event.ts);
    else if (event.type === 'running' || (state && TERMINAL_STATES.has(state))) {
      const submitted = this.submittedAt.get(event.changeId);
      if (submitted !== undefined) {
        this.submittedAt.delete(event.changeId);
        if (event.type === 'running') this.laneWait.observe(Math.max(0, event.ts - submitted) / 1000);
      }
    }

    if (event.type === 'backoff' && event.code) this.backoffs.inc({ code: event.code });
    const call = cloudCallOf(event);
    if (call) this.cloudCalls.inc(call);
  }

  /** Changes held in memory (not yet finished), for tests and diagnostics. */
  get openChanges(): number {
    return this.open.size;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private moveTo(changeId: string, state: ChangeState): void {
    const previous = this.open.get(changeId);
    if (previous === state) return;
    if (previous) this.counts.set(previous, (this.counts.get(previous) ?? 1) - 1);
    this.counts.set(state, (this.counts.get(state) ?? 0) + 1);
    if (TERMINAL_STATES.has(state)) this.open.delete(changeId);
    else this.open.set(changeId, state);
  }
}
