import { describe, expect, it } from 'vitest';
import { FaultInjector, parseFaultsPatch } from '../../src/sim/faults.js';
import { simFaultsSchema } from '../../src/sim/options.js';
import { mixSeed, Prng } from '../../src/sim/prng.js';
import { InvalidInputError } from '../../src/validation.js';

describe('Prng', () => {
  it('replays the same sequence from the same seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const first = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(first);
    expect(first.every((value) => value >= 0 && value < 1)).toBe(true);
  });

  it('gives different sequences for neighbouring seeds and streams', () => {
    expect(new Prng(1).next()).not.toBe(new Prng(2).next());
    expect(mixSeed(1, 1)).not.toBe(mixSeed(1, 2));
  });

  it('is roughly uniform', () => {
    const prng = new Prng(7);
    const buckets = new Array(10).fill(0) as number[];
    for (let index = 0; index < 100_000; index++) {
      const bucket = prng.int(10);
      buckets[bucket] = (buckets[bucket] ?? 0) + 1;
    }
    for (const count of buckets) expect(Math.abs(count - 10_000)).toBeLessThan(500);
  });
});

describe('FaultInjector', () => {
  const faults = (patch: object) => simFaultsSchema.parse(patch);

  it('draws the same faults for the same seed and call sequence', () => {
    const run = () => {
      const injector = new FaultInjector(9, faults({ failRate: 0.3, resetRate: 0.3, jitterMs: 50 }));
      return Array.from({ length: 200 }, (_, index) => injector.draw(index % 2 === 0));
    };
    expect(run()).toEqual(run());
  });

  it('keeps later draws in place when a rate changes at run time', () => {
    const steady = new FaultInjector(3, faults({}));
    const changed = new FaultInjector(3, faults({}));
    steady.draw(true);
    changed.draw(true);
    changed.apply({ busyRate: 1 });
    expect(changed.draw(true).busyRoll).toBe(steady.draw(true).busyRoll);
  });

  it('fails or resets about the share asked, and resets only updates after processing', () => {
    const injector = new FaultInjector(5, faults({ failRate: 0.2, resetRate: 0.5 }));
    let failures = 0;
    let after = 0;
    for (let index = 0; index < 10_000; index++) {
      const draw = injector.draw(false);
      if (draw.failure) failures++;
      if (draw.reset === 'after') after++;
    }
    expect(failures / 10_000).toBeCloseTo(0.2, 1);
    expect(after).toBe(0);
  });

  it('reseeds to the first draw', () => {
    const injector = new FaultInjector(11, faults({}));
    const first = injector.draw(true);
    injector.draw(true);
    injector.reseed();
    expect(injector.draw(true)).toEqual(first);
  });

  it('locks by server id and by account', () => {
    const injector = new FaultInjector(1, faults({ financialLocked: ['iss-1', 'account:AK2'] }));
    expect(injector.isFinancialLocked('iss-1', 'AK1')).toBe(true);
    expect(injector.isFinancialLocked('iss-2', 'AK2')).toBe(true);
    expect(injector.isFinancialLocked('iss-2', 'AK1')).toBe(false);
  });
});

describe('parseFaultsPatch', () => {
  it('keeps only the fields given', () => {
    expect(parseFaultsPatch({ busyRate: 0.5 })).toEqual({ busyRate: 0.5 });
  });

  it('names a bad field', () => {
    expect(() => parseFaultsPatch({ failRate: 2 })).toThrow(InvalidInputError);
    expect(() => parseFaultsPatch({ failRate: 2 })).toThrow(/failRate/);
    expect(() => parseFaultsPatch({ nope: 1 })).toThrow(/nope/);
  });
});
