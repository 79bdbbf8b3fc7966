import { describe, expect, it } from 'vitest';
import {
  batchRanges,
  concurrencyLimit,
  errorThreshold,
  rampedConcurrency,
} from '../../src/rollouts/rate-control.js';
import { mergeParams } from '../../src/rollouts/rollout.js';

describe('rollout rate control', () => {
  it('cuts batches by size or share, repeating the last size', () => {
    expect(batchRanges([1, '50%'], 6)).toEqual([
      [0, 1],
      [1, 4],
      [4, 6],
    ]);
    expect(batchRanges(['100%'], 3)).toEqual([[0, 3]]);
    expect(batchRanges(['10%'], 5)).toEqual([
      [0, 1],
      [1, 2],
      [2, 3],
      [3, 4],
      [4, 5],
    ]);
    expect(batchRanges([2], 0)).toEqual([]);
  });

  it('ramps concurrency 1, 2, 4, ... up to the limit', () => {
    expect(concurrencyLimit('50%', 7)).toBe(4);
    expect([0, 1, 2, 3, 6, 7, 100].map((finished) => rampedConcurrency(5, finished))).toEqual([
      1, 2, 2, 4, 4, 5, 5,
    ]);
  });

  it('rounds the error threshold down', () => {
    expect(errorThreshold('10%', 5)).toBe(0);
    expect(errorThreshold('50%', 5)).toBe(2);
    expect(errorThreshold(3, 5)).toBe(3);
  });

  it('lays a target params over the rollout params, configs key by key', () => {
    expect(
      mergeParams(
        { LocalSubnet: '10.0.0.0/24', IkeConfig: { IkeVersion: 'ikev2', IkeLifetime: 3600 } },
        { IkeConfig: { IkeLifetime: 7200 } },
      ),
    ).toEqual({ LocalSubnet: '10.0.0.0/24', IkeConfig: { IkeVersion: 'ikev2', IkeLifetime: 7200 } });
  });
});
