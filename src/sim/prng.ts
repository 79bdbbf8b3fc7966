/**
 * The simulator's only source of randomness. Everything that must replay (server ids, pre-shared
 * keys, every fault decision) draws from a seeded generator, never from Math.random, so that one
 * seed and one request sequence always give one outcome.
 *
 * mulberry32: 32 bits of state, a handful of integer operations per draw, and statistically good
 * enough to decide "fail this call or not"; cryptographic strength is not wanted here.
 */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = mixSeed(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [0, bound). */
  int(bound: number): number {
    return Math.floor(this.next() * bound);
  }

  /** `length` characters drawn uniformly from `alphabet`. */
  string(length: number, alphabet: string): string {
    let result = '';
    for (let index = 0; index < length; index++) result += alphabet.charAt(this.int(alphabet.length));
    return result;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('cannot pick from an empty list');
    return items[this.int(items.length)] as T;
  }
}

/**
 * Seeds 1, 2, 3... would start mulberry32 in neighbouring states; one splitmix32 round spreads
 * them apart. `stream` gives independent generators from one seed (the fleet's and the faults'),
 * so generating a bigger fleet does not shift the fault sequence.
 */
export function mixSeed(seed: number, stream = 0): number {
  let z = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) | 0;
}

export const LOWER_ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
