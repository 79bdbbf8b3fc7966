import { describe, expect, it } from 'vitest';
import { simOptionsFromFlags } from '../../src/cli/commands/sim.js';
import { FaultInjector } from '../../src/sim/faults.js';
import { simFaultsSchema, simulatorOptionsSchema } from '../../src/sim/options.js';
import { InvalidInputError } from '../../src/validation.js';

describe('ipsec-fleet sim flags', () => {
  it('--stale-read-ms sets the staleReadMs fault; without it the simulator does not lag', () => {
    const options = simOptionsFromFlags({ '--stale-read-ms': '250', '--configuring-ms': '0' });
    expect(options.faults).toEqual({ staleReadMs: 250, configuringMs: 0 });
    expect(simulatorOptionsSchema.parse(simOptionsFromFlags({})).faults.staleReadMs).toBe(0);
  });

  it.each(['-1', '1.5', 'soon'])('--stale-read-ms %s is refused, naming the flag', (value) => {
    const refuse = () => simOptionsFromFlags({ '--stale-read-ms': value });
    expect(refuse).toThrow(InvalidInputError);
    expect(refuse).toThrow(/--stale-read-ms/);
  });

  it.each(['--latency-ms', '--jitter-ms', '--configuring-ms', '--stale-read-ms'])(
    '%s beyond the longest timer Node.js honours is refused, naming the rule',
    (flag) => {
      expect(simOptionsFromFlags({ [flag]: '2147483647' }).faults).toBeDefined();
      const refuse = () => simOptionsFromFlags({ [flag]: '3000000000' });
      expect(refuse).toThrow(InvalidInputError);
      expect(refuse).toThrow(`${flag}: must be at most 2147483647 (the longest timer Node.js honours)`);
    },
  );

  it('caps the millisecond faults the control route sets too', () => {
    for (const name of [
      'latencyMs',
      'jitterMs',
      'configuringMs',
      'staleReadMs',
      'tokenProcessingMs',
      'applyLatencyMs',
    ]) {
      expect(simFaultsSchema.safeParse({ [name]: 3_000_000_000 }).success, name).toBe(false);
    }
  });

  it('holds a call at most the longest timer Node.js honours, whatever the capped parts add up to', () => {
    const longest = 2_147_483_647;
    const faults = simFaultsSchema.parse({ latencyMs: longest, jitterMs: longest, applyLatencyMs: longest });
    const injector = new FaultInjector(7, faults);
    for (let call = 0; call < 20; call++) expect(injector.draw(true, true).delayMs).toBe(longest);
    const modest = new FaultInjector(7, simFaultsSchema.parse({ latencyMs: 10, applyLatencyMs: 5 }));
    expect(modest.draw(true, true).delayMs).toBe(15);
    expect(modest.draw(true, false).delayMs).toBe(10);
  });
});
