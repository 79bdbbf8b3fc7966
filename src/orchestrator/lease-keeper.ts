import type { Scripts } from './scripts.js';

/**
 * Renews a server lease while its change runs, at a third of the lease so two renewals can fail
 * before it lapses. When a renewal finds the lease gone, `signal` aborts the cloud call in flight:
 * somebody else may own the server now, and every later step would be refused anyway.
 */
export class LeaseKeeper {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(scripts: Scripts, lockKey: string, owner: string, leaseMs: number) {
    this.timer = setInterval(
      () => {
        scripts.run('extend-lease', [lockKey], [owner, leaseMs]).then(
          (renewed) => {
            if (renewed !== 1) this.lose();
          },
          // A failed renewal (Redis briefly away) is retried at the next tick; the lease has slack.
          () => undefined,
        );
      },
      Math.floor(leaseMs / 3),
    );
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private lose(): void {
    this.stop();
    this.controller.abort(new Error('server lease lost'));
  }
}
