import { describe, expect, it } from 'vitest';
import { ClientTokenStore } from '../../src/sim/idempotency.js';
import { NonceCache } from '../../src/sim/nonce-cache.js';
import { QuotaBook, TokenBucket } from '../../src/sim/token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst of its size, then refills continuously', () => {
    const bucket = new TokenBucket(10, 10, 0);
    for (let index = 0; index < 10; index++) expect(bucket.take(0)).toBe(true);
    expect(bucket.take(0)).toBe(false);
    expect(bucket.msUntilToken(0)).toBe(100);
    expect(bucket.take(50)).toBe(false);
    expect(bucket.take(100)).toBe(true);
  });

  it('never holds more than its burst', () => {
    const bucket = new TokenBucket(5, 5, 0);
    let taken = 0;
    while (bucket.take(60_000)) taken++;
    expect(taken).toBe(5);
  });
});

describe('QuotaBook', () => {
  it('keeps one bucket per access key and action', () => {
    const book = new QuotaBook();
    book.setQps(1);
    expect(book.admit('AK1', 'UpdateIpsecServer', 0)).toBe(0);
    expect(book.admit('AK1', 'UpdateIpsecServer', 0)).toBeGreaterThan(0);
    expect(book.admit('AK1', 'ListIpsecServers', 0)).toBe(0);
    expect(book.admit('AK2', 'UpdateIpsecServer', 0)).toBe(0);
  });

  it('is off at 0 qps', () => {
    const book = new QuotaBook();
    for (let index = 0; index < 1000; index++) expect(book.admit('AK', 'A', 0)).toBe(0);
  });
});

describe('NonceCache', () => {
  const window = 15 * 60_000;

  it('refuses a nonce seen within the window', () => {
    const cache = new NonceCache(window, 0);
    expect(cache.remember('a', 0)).toBe(true);
    expect(cache.remember('a', window - 1)).toBe(false);
    // Rotated once: 'a' is in the previous generation, still refused.
    expect(cache.remember('a', window + 1)).toBe(false);
  });

  it('forgets after two windows and stays bounded', () => {
    const cache = new NonceCache(window, 0);
    cache.remember('a', 0);
    expect(cache.remember('a', 2 * window + 1)).toBe(true);
    const capped = new NonceCache(window, 0, 100);
    for (let index = 0; index < 1000; index++) capped.remember(String(index), 0);
    expect(capped.size).toBeLessThanOrEqual(200);
  });
});

describe('ClientTokenStore', () => {
  const entry = (paramsKey: string, at: number) => ({
    paramsKey,
    requestId: 'R1',
    body: { RequestId: 'R1' },
    at,
  });

  it('replays same parameters, refuses others, per access key', () => {
    const store = new ClientTokenStore();
    store.remember('AK', 't', entry('p', 0));
    expect(store.lookup('AK', 't', 'p', 1).kind).toBe('replay');
    expect(store.lookup('AK', 't', 'q', 1).kind).toBe('mismatch');
    expect(store.lookup('AK2', 't', 'q', 1).kind).toBe('new');
  });

  it('forgets after its TTL and evicts the oldest past its cap', () => {
    const store = new ClientTokenStore(1000, 2);
    store.remember('AK', 'a', entry('p', 0));
    expect(store.lookup('AK', 'a', 'p', 1000).kind).toBe('new');
    store.remember('AK', 'b', entry('p', 1));
    store.remember('AK', 'c', entry('p', 2));
    store.remember('AK', 'd', entry('p', 3));
    expect(store.size).toBe(2);
    expect(store.lookup('AK', 'b', 'p', 4).kind).toBe('new');
    expect(store.lookup('AK', 'd', 'p', 4).kind).toBe('replay');
  });
});
