import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type UpdateIpsecServerParams,
  updateIpsecServerParamsSchema,
} from '../../src/ipsec/update-params.js';
import { parseWireParams } from '../../src/ipsec/wire.js';
import { rememberingParser } from '../../src/sim/params.js';
import { InvalidInputError } from '../../src/validation.js';

/** The outcome of a parser as data: the parsed value with its key order, or the refusal. */
function outcome(parse: (wire: Record<string, string>) => unknown, wire: Record<string, string>): unknown {
  try {
    const value = parse(wire) as Record<string, unknown>;
    return { value, keys: Object.keys(value) };
  } catch (error) {
    if (error instanceof InvalidInputError) return { message: error.message, issues: error.issues };
    throw error;
  }
}

// Few values per field, so that values repeat within a run and the memory is used: valid ones, and
// invalid ones drawn less often so that most inputs take the fast way and some are refused.
const fieldValues: Record<string, [valid: string[], invalid: string[]]> = {
  IpsecServerId: [['iss-1', 'iss-2'], ['']],
  RegionId: [['cn-shanghai', 'cn-hangzhou'], ['Shanghai']],
  LocalSubnet: [
    ['192.168.1.0/24', '192.168.1.0/24, 10.0.0.0/8'],
    ['192.168.1.5/24', 'a, b', ''],
  ],
  ClientIpPool: [['10.1.0.0/16'], ['10.1.0.0/16,10.2.0.0/16', '300.0.0.0/8']],
  IpsecServerName: [['ok-name'], ['9starts-with-digit']],
  EffectImmediately: [['true', 'false'], ['yes']],
  IkeConfig: [
    ['{"IkeVersion":"ikev2","IkeLifetime":3600}', '{"IkeLifetime":3600,"IkeVersion":"ikev1"}', '{}'],
    ['{"IkeLifetime":"3600"}', 'not json'],
  ],
  IpsecConfig: [['{"IpsecPfs":"disabled"}'], ['{"IpsecLifetime":0}', '[]']],
  PskEnabled: [['true'], ['false']],
  Psk: [['secret'], ['\u00e9t\u00e9']],
  ClientToken: [['token-1'], ['']],
  DryRun: [['true', 'false'], ['maybe']],
};

const fieldArbitraries = Object.fromEntries(
  Object.entries(fieldValues).map(([name, [valid, invalid]]) => [
    name,
    fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 30 }, fc.constantFrom(...invalid)),
  ]),
);
function rarely<T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: 20 }, { arbitrary, weight: 1 });
}

const wireArbitrary = fc
  .tuple(
    fc.record(fieldArbitraries, { requiredKeys: ['IpsecServerId', 'RegionId'] }) as fc.Arbitrary<
      Record<string, string>
    >,
    rarely(fc.constantFrom('Bogus', 'ipsecServerId')),
    rarely(fc.constantFrom('IpsecServerId', 'RegionId')),
  )
  .map(([wire, unknown, dropped]) => {
    const changed: Record<string, string> = { ...wire };
    if (unknown !== undefined) changed[unknown] = 'x';
    if (dropped !== undefined) delete changed[dropped];
    return changed;
  });

describe('rememberingParser', () => {
  it('answers every wire input exactly as the whole schema does, values and refusals alike', () => {
    let wholeParses = 0;
    const whole = (wire: Record<string, string>) => {
      wholeParses++;
      return parseWireParams(wire);
    };
    const remembering = rememberingParser(updateIpsecServerParamsSchema, whole, [
      'RegionId',
      'LocalSubnet',
      'ClientIpPool',
      'EffectImmediately',
      'IkeConfig',
      'IpsecConfig',
      'PskEnabled',
      'DryRun',
    ]);
    let accepted = 0;
    fc.assert(
      fc.property(wireArbitrary, (wire) => {
        const expected = outcome(parseWireParams, wire);
        wholeParses = 0;
        expect(outcome(remembering, wire)).toEqual(expected);
        const isAccepted = 'value' in (expected as object);
        if (isAccepted) accepted++;
        // Only a refusal is left to the whole schema.
        expect(wholeParses).toBe(isAccepted ? 0 : 1);
      }),
      { numRuns: 2000 },
    );
    expect(accepted).toBeGreaterThan(200);
    expect(accepted).toBeLessThan(1800);
  });

  it('gives every call its own values, so one call cannot change what the next one parses', () => {
    const remembering = rememberingParser(updateIpsecServerParamsSchema, parseWireParams, ['IkeConfig']);
    const wire = { IpsecServerId: 'iss-1', RegionId: 'cn-shanghai', IkeConfig: '{"IkeLifetime":3600}' };
    const first = remembering(wire) as UpdateIpsecServerParams;
    (first.IkeConfig as Record<string, unknown>).IkeLifetime = 1;
    expect((remembering(wire) as UpdateIpsecServerParams).IkeConfig).toEqual({ IkeLifetime: 3600 });
  });
});
