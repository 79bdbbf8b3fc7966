import { describe, expect, it } from 'vitest';
import { simOptionsFromFlags } from '../../src/cli/commands/sim.js';
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
});
