import { describe, expect, it } from 'vitest';
import { rolloutInputSchema } from '../../src/rollouts/rollout.js';
import { rolloutSpecSchema } from '../../src/rollouts/rollout-spec.js';
import { fieldIssues } from '../../src/validation.js';

/**
 * A spec is parsed once, by rolloutSpecSchema, and the library then trusts it
 * (Rollouts.createParsed): so the spec's schema must apply every rule of the library's own, and
 * what it outputs must be what the library's schema would make of it.
 */

const target = { ipsecServerId: 'iss-1', regionId: 'cn-shanghai' };
const issuesOf = (result: { success: boolean; error?: Parameters<typeof fieldIssues>[0] }) =>
  result.success ? [] : fieldIssues(result.error as Parameters<typeof fieldIssues>[0]);

const SPECS: [string, Record<string, unknown>][] = [
  ['a target twice, params nowhere', { targets: [target, target] }],
  ['a target with empty params, listed twice', { targets: [{ ...target, params: {} }, target] }],
  [
    'both targets and selector',
    { targets: [target], selector: { regions: ['cn-shanghai'] }, params: { Psk: 'k' } },
  ],
  ['neither targets nor selector', { params: { Psk: 'k' } }],
  ['a selector without params', { selector: { regions: ['cn-shanghai'] } }],
  ['a bad field beside a cross-field rule', { targets: [target, target], note: '', maxErrors: '200%' }],
  [
    'nested rules',
    {
      targets: [
        { ...target, params: { LocalSubnet: '10.0.0.1/8', IkeConfig: '{"LocalId":"bad_id"}' } },
        { ...target, ipsecServerId: 'iss-2', params: { IpsecServerName: 'x', Psk: '\u0001' } },
      ],
      strategy: { batches: ['0%'] },
    },
  ],
  [
    'a good spec',
    { targets: [target], params: { LocalSubnet: '10.0.0.0/8, 172.16.0.0/12', EffectImmediately: 'true' } },
  ],
];

describe('rolloutSpecSchema', () => {
  it.each(SPECS)('applies the rules of rolloutInputSchema: %s', (_name, spec) => {
    expect(issuesOf(rolloutSpecSchema.safeParse(spec))).toEqual(
      issuesOf(rolloutInputSchema.safeParse({ ...spec, actor: 'alice' })),
    );
  });

  it('reports each broken rule once', () => {
    expect(issuesOf(rolloutSpecSchema.safeParse({ targets: [{ ...target, params: {} }, target] }))).toEqual([
      {
        field: 'targets.0.params',
        rule: expect.stringMatching(/^must set at least one of LocalSubnet, /),
      },
      { field: 'targets.1.params', rule: 'is required when the rollout sets no params for all targets' },
      { field: 'targets.1.ipsecServerId', rule: 'iss-1 is listed twice' },
    ]);
    expect(
      issuesOf(rolloutSpecSchema.safeParse({ targets: [target], params: { Psk: 'k' }, maxErrors: '200%' })),
    ).toEqual([{ field: 'maxErrors', rule: 'percentage must be from 0% to 100%' }]);
  });

  it('outputs what rolloutInputSchema makes of it, which is a fixed point of that schema', () => {
    const spec = {
      targets: [
        {
          ...target,
          params: {
            LocalSubnet: '10.0.0.0/8 , 172.16.0.0/12',
            IkeConfig: '{"IkeVersion":"ikev2","LocalId":"vpn.example.com"}',
            PskEnabled: 'true',
            Psk: 'k',
          },
          profile: 'prod',
        },
      ],
      params: { EffectImmediately: 'false', IpsecConfig: { IpsecLifetime: 3600 } },
      strategy: { concurrency: '50%' },
    };
    const parsed = { ...rolloutSpecSchema.parse(spec), actor: 'alice' };
    expect(parsed).toEqual(rolloutInputSchema.parse({ ...spec, actor: 'alice' }));
    expect(rolloutInputSchema.parse(parsed)).toEqual(parsed);
  });
});
