/**
 * What the simulator saw, for assertions and benchmarks: the same JSON from `GET /_sim/stats`
 * and `handle.stats()`.
 */
export interface SimStats {
  /** API calls received (admin routes excluded), whatever their outcome. */
  requests: number;
  byAction: Record<string, number>;
  /** Error codes as answered; HTTP-200 answers count as `OK`, destroyed connections as `ConnectionReset`. */
  byCode: Record<string, number>;
  /** UpdateIpsecServer calls that changed a server. */
  applies: number;
  /** UpdateIpsecServer dry runs that passed every check (answered DryRunOperation). */
  dryRuns: number;
  /** ClientToken retries answered with the first call's response. */
  idempotentReplays: number;
  /** UpdateIpsecServer calls that arrived while another one for the same server was in flight. */
  concurrentUpdateViolations: number;
  /** The most UpdateIpsecServer calls in flight for one server at any moment. */
  maxConcurrentUpdatesPerServer: number;
}

export const OK_CODE = 'OK';
export const RESET_CODE = 'ConnectionReset';
export const GARBLED_CODE = 'NotJsonAnswer';
// Action names come from callers; a flood of made-up ones must not grow the table without end.
const MAX_ACTION_NAMES = 1000;
const OTHER_ACTIONS = '(other)';

function countIn(counters: Map<string, { count: number }>, name: string): void {
  const counter = counters.get(name);
  if (counter) counter.count++;
  else counters.set(name, { count: 1 });
}

function counts(counters: Map<string, { count: number }>): Record<string, number> {
  return Object.fromEntries(Array.from(counters, ([name, counter]) => [name, counter.count]));
}

export class StatsRecorder {
  requests = 0;
  applies = 0;
  dryRuns = 0;
  idempotentReplays = 0;
  concurrentUpdateViolations = 0;
  maxConcurrentUpdatesPerServer = 0;
  // Counters are boxes so that counting a known name is one lookup, not a get and a set.
  private readonly byAction = new Map<string, { count: number }>();
  private readonly byCode = new Map<string, { count: number }>();

  countAction(action: string): void {
    const counter = this.byAction.get(action);
    if (counter) counter.count++;
    else countIn(this.byAction, this.byAction.size < MAX_ACTION_NAMES ? action : OTHER_ACTIONS);
  }

  countCode(code: string): void {
    countIn(this.byCode, code);
  }

  snapshot(): SimStats {
    return {
      requests: this.requests,
      byAction: counts(this.byAction),
      byCode: counts(this.byCode),
      applies: this.applies,
      dryRuns: this.dryRuns,
      idempotentReplays: this.idempotentReplays,
      concurrentUpdateViolations: this.concurrentUpdateViolations,
      maxConcurrentUpdatesPerServer: this.maxConcurrentUpdatesPerServer,
    };
  }

  clear(): void {
    this.requests = 0;
    this.applies = 0;
    this.dryRuns = 0;
    this.idempotentReplays = 0;
    this.concurrentUpdateViolations = 0;
    this.maxConcurrentUpdatesPerServer = 0;
    this.byAction.clear();
    this.byCode.clear();
  }
}

/**
 * UpdateIpsecServer calls in flight per server, from arrival (once authenticated) until
 * answered. A well-behaved orchestrator never has two at once on a server (DESIGN invariant 2);
 * this is where a test sees that it did.
 */
export class InFlightUpdates {
  private readonly counts = new Map<string, number>();

  constructor(private readonly stats: StatsRecorder) {}

  enter(serverId: string): void {
    this.counts.set(serverId, this.arrive(serverId));
  }

  /**
   * A call that enters and leaves at once, with nothing in between: counted as enter() and
   * leave() would count it, without adding and deleting the server's entry for every call.
   */
  pass(serverId: string): void {
    this.arrive(serverId);
  }

  /** Counts a call's arrival on the server; returns how many are in flight there with it. */
  private arrive(serverId: string): number {
    const count = (this.counts.get(serverId) ?? 0) + 1;
    if (count > 1) this.stats.concurrentUpdateViolations++;
    if (count > this.stats.maxConcurrentUpdatesPerServer) this.stats.maxConcurrentUpdatesPerServer = count;
    return count;
  }

  leave(serverId: string): void {
    const count = (this.counts.get(serverId) ?? 1) - 1;
    if (count <= 0) this.counts.delete(serverId);
    else this.counts.set(serverId, count);
  }
}
