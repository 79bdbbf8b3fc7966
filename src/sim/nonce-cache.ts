/**
 * Signature nonces seen recently, to refuse replayed requests.
 *
 * A request older than the timestamp window is refused for its timestamp anyway, so a nonce only
 * has to be remembered for one window. Two generations do that with bounded memory and no
 * per-entry timers: the current generation collects nonces; once it is a window old it becomes
 * the previous one and the older is dropped, so every nonce is kept for at least one window and
 * at most two.
 *
 * `maxPerGeneration` bounds memory under floods: a full generation rotates early. Under such a
 * load a nonce can then be forgotten before its window ends; the cap is far above what a test or
 * benchmark sends in 15 minutes (about 2,000 calls per second for the whole window).
 */
export class NonceCache {
  private current = new Set<string>();
  private previous = new Set<string>();
  private currentSince: number;

  constructor(
    private readonly windowMs: number,
    now: number,
    private readonly maxPerGeneration = 2_000_000,
  ) {
    this.currentSince = now;
  }

  /** True if the nonce is new (and now remembered), false if it was seen within the window. */
  remember(key: string, now: number): boolean {
    this.rotate(now);
    if (this.previous.size > 0 && this.previous.has(key)) return false;
    const current = this.current;
    const before = current.size;
    if (before >= this.maxPerGeneration) {
      if (current.has(key)) return false;
      this.shift(now);
      this.current.add(key);
      return true;
    }
    // One probe of a large set instead of two: a key already there leaves the size as it was.
    current.add(key);
    return current.size !== before;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  clear(now: number): void {
    this.current = new Set();
    this.previous = new Set();
    this.currentSince = now;
  }

  private rotate(now: number): void {
    const age = now - this.currentSince;
    if (age < this.windowMs) return;
    if (age >= 2 * this.windowMs) this.clear(now);
    else this.shift(now);
  }

  private shift(now: number): void {
    this.previous = this.current;
    this.current = new Set();
    this.currentSince = now;
  }
}
