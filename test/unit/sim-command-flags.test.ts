import { describe, expect, it } from 'vitest';
import { simOptionsFromFlags } from '../../src/cli/commands/sim.js';
import { simulatorOptionsSchema } from '../../src/sim/options.js';
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
});
