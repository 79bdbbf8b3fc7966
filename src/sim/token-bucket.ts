/**
 * One API quota: `rate` calls per second with bursts up to `burst`, refilled continuously (not
 * per whole second), which is how the cloud's flow control reads to a client: a steady caller
 * at the quota is never refused, a burst above it is refused at once.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.updatedAt = now;
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token, for a Retry-After hint; 0 when one is there. */
  msUntilToken(now: number): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }

  private refill(now: number): void {
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed / 1000) * this.rate);
      this.updatedAt = now;
    }
  }
}

/** Buckets per access key and action, as the cloud keeps its user quotas. */
export class QuotaBook {
  private readonly buckets = new Map<string, TokenBucket>();
  private qps = 0;

  /** A new quota starts everyone with full buckets; 0 turns flow control off. */
  setQps(qps: number): void {
    if (qps !== this.qps) this.buckets.clear();
    this.qps = qps;
  }

  clear(): void {
    this.buckets.clear();
  }

  /** 0 when the call may go on, otherwise the milliseconds until it could. */
  admit(accessKeyId: string, action: string, now: number): number {
    if (this.qps <= 0) return 0;
    const key = `${accessKeyId}\n${action}`;
    let bucket = this.buckets.get(key);
    if (!bucket) {
      // A quota under 1/s still has to let a single call through now and then.
      bucket = new TokenBucket(this.qps, Math.max(1, this.qps), now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(now) ? 0 : Math.max(1, bucket.msUntilToken(now));
  }
}
