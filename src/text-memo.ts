/**
 * Results of pure work on short texts that come back call after call (a rollout's LocalSubnet,
 * a server's ClientIpPool), kept so the work is done once per text rather than once per call.
 *
 * Bounded twice: a text longer than `maxLength` is not kept, and once `capacity` texts are kept
 * the memory starts over, so a stream of distinct texts costs at most that much.
 */
export class TextMemo<V> {
  private readonly entries = new Map<string, V>();

  constructor(
    private readonly capacity = 4096,
    private readonly maxLength = 512,
  ) {}

  /** The value kept for `text`; undefined when none is (or when undefined was kept). */
  get(text: string): V | undefined {
    return this.entries.get(text);
  }

  has(text: string): boolean {
    return this.entries.has(text);
  }

  /** The value kept for `text`, or else `compute(text)`, kept for next time; throws as compute does. */
  remember(text: string, compute: (text: string) => V): V {
    const known = this.entries.get(text);
    if (known !== undefined || this.entries.has(text)) return known as V;
    const value = compute(text);
    this.set(text, value);
    return value;
  }

  set(text: string, value: V): void {
    if (text.length > this.maxLength) return;
    if (this.entries.size >= this.capacity) this.entries.clear();
    const key = ownCopy(text);
    // A value that is text too (often the very text, passed through a check) is kept as its own
    // string for the same reason as the key.
    const kept = typeof value === 'string' ? (value === text ? key : ownCopy(value)) : value;
    this.entries.set(key, kept as V);
  }
}

/**
 * The same text in a string of its own. A short value read from a request is often a slice that
 * keeps the whole request line alive; kept for the life of the process, it must not.
 */
function ownCopy(text: string): string {
  return JSON.parse(JSON.stringify(text)) as string;
}
