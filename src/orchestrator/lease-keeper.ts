import { performance } from 'node:perf_hooks';
import type { Scripts } from './scripts.js';

/**
 * Renews a server lease while its change runs, every quarter of the lease, and aborts `signal`
 * (the cloud call in flight, and every later step) once the lease can no longer be counted on.
 *
 * That is either when a renewal finds the lease gone (somebody else may own the server now), or
 * when Redis has not confirmed it for three quarters of a lease. A renewal that Redis never
 * answers (the worker cut off from it) neither succeeds nor fails: it waits in the connection's
 * queue. Meanwhile the lease runs out in Redis and another worker takes the server, so this one
 * must have stopped talking to the cloud by then (DESIGN invariant 2). The last quarter is the
 * margin for that; one lost renewal is tolerated, two are not.
 *
 * Times are measured from when a command was sent, never from its answer: Redis started the
 * lease's clock no earlier than that.
 */
export class LeaseKeeper {
  private readonly controller = new AbortController();
  private readonly renewals: NodeJS.Timeout;
  private deadline: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When the lease confirmed last runs out, in performance.now() time. */
  private heldUntil: number;

  /** `acquiredAt`: performance.now() when the command that took the lease was sent. */
  constructor(
    scripts: Scripts,
    lockKey: string,
    owner: string,
    private readonly leaseMs: number,
    acquiredAt: number,
  ) {
    this.heldUntil = acquiredAt + leaseMs;
    this.armDeadline();
    this.renewals = setInterval(
      () => {
        const sentAt = performance.now();
        scripts.run('extend-lease', [lockKey], [owner, leaseMs]).then(
          (renewed) => {
            // Answered after the run ended (or the lease was given up): nothing to keep any more.
            if (this.stopped) return;
            if (renewed !== 1) this.lose('server lease lost');
            else if (sentAt + leaseMs > this.heldUntil) {
              this.heldUntil = sentAt + leaseMs;
              this.armDeadline();
            }
          },
          // A renewal that fails outright (Redis briefly away) is retried at the next tick.
          () => undefined,
        );
      },
      Math.floor(leaseMs / 4),
    );
    this.renewals.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.renewals);
    clearTimeout(this.deadline);
  }

  private armDeadline(): void {
    clearTimeout(this.deadline);
    const abortAt = this.heldUntil - this.leaseMs / 4;
    this.deadline = setTimeout(
      () => this.lose('server lease not confirmed by Redis in time'),
      Math.max(0, abortAt - performance.now()),
    );
    this.deadline.unref();
  }

  private lose(reason: string): void {
    this.stop();
    this.controller.abort(new Error(reason));
  }
}
