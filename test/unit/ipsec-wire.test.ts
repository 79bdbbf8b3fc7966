import { OpenApiUtil } from '@alicloud/openapi-core';
import { describe, expect, it } from 'vitest';
import { listIpsecServersQuerySchema } from '../../src/ipsec/list-request.js';
import { updateIpsecServerParamsSchema } from '../../src/ipsec/update-params.js';
import {
  canonicalIkeConfigJson,
  canonicalIpsecConfigJson,
  parseListWireParams,
  parseWireParams,
  toListWireParams,
  toWireParams,
} from '../../src/ipsec/wire.js';
import { fieldIssues, InvalidInputError } from '../../src/validation.js';

const base = { IpsecServerId: 'iss-1', RegionId: 'cn-shanghai' };

describe('UpdateIpsecServer wire encoding', () => {
  it('writes the configs as canonical JSON in the documented key order, whatever order they came in', () => {
    const params = updateIpsecServerParamsSchema.parse({
      ...base,
      IkeConfig: {
        RemoteId: 'peer.example.com',
        IkeLifetime: 3600,
        LocalId: '47.22.0.1',
        IkePfs: 'group14',
        IkeAuthAlg: 'sha256',
        IkeEncAlg: 'aes256',
        IkeMode: 'main',
        IkeVersion: 'ikev2',
      },
      IpsecConfig: { IpsecLifetime: 600, IpsecPfs: 'disabled', IpsecAuthAlg: 'sha1', IpsecEncAlg: 'aes' },
    });
    const wire = toWireParams(params);
    expect(wire.IkeConfig).toBe(
      '{"IkeVersion":"ikev2","IkeMode":"main","IkeEncAlg":"aes256","IkeAuthAlg":"sha256","IkePfs":"group14",' +
        '"IkeLifetime":3600,"LocalId":"47.22.0.1","RemoteId":"peer.example.com"}',
    );
    expect(wire.IpsecConfig).toBe(
      '{"IpsecEncAlg":"aes","IpsecAuthAlg":"sha1","IpsecPfs":"disabled","IpsecLifetime":600}',
    );
  });

  it('gives the same bytes for the same config however it was written', () => {
    const a = updateIpsecServerParamsSchema.parse({
      ...base,
      IkeConfig: '{ "IkeLifetime": 60, "IkeMode": "main" }',
    });
    const b = updateIpsecServerParamsSchema.parse({
      ...base,
      IkeConfig: { IkeMode: 'main', IkeLifetime: 60 },
    });
    expect(toWireParams(a)).toEqual(toWireParams(b));
    expect(toWireParams(a).IkeConfig).toBe('{"IkeMode":"main","IkeLifetime":60}');
  });

  it('leaves out absent config keys and absent params, and writes booleans as true/false', () => {
    const params = updateIpsecServerParamsSchema.parse({
      ...base,
      LocalSubnet: '10.0.0.0/8, 192.168.0.0/16',
      EffectImmediately: false,
      PskEnabled: true,
      DryRun: 'true',
      Psk: undefined,
      IpsecConfig: { IpsecPfs: 'group2', IpsecLifetime: undefined },
    });
    expect(toWireParams(params)).toEqual({
      ...base,
      LocalSubnet: '10.0.0.0/8,192.168.0.0/16',
      EffectImmediately: 'false',
      PskEnabled: 'true',
      DryRun: 'true',
      IpsecConfig: '{"IpsecPfs":"group2"}',
    });
  });

  it('writes an empty config as {}', () => {
    expect(canonicalIkeConfigJson({})).toBe('{}');
    expect(canonicalIpsecConfigJson({})).toBe('{}');
  });

  it('round-trips: params → wire → params', () => {
    const params = updateIpsecServerParamsSchema.parse({
      ...base,
      LocalSubnet: '192.168.1.0/24,10.0.0.0/16',
      ClientIpPool: '10.10.0.0/24',
      IpsecServerName: '上海-vpn_1',
      EffectImmediately: true,
      IkeConfig: { IkeVersion: 'ikev1', IkeLifetime: 0, RemoteId: '2001:db8::1' },
      IpsecConfig: { IpsecEncAlg: '3des', IpsecLifetime: 86400 },
      PskEnabled: true,
      Psk: 'p s k~!',
      ClientToken: '0b9c2f1e-5c1b-4d7e-9f6a-000000000000',
      DryRun: false,
    });
    const wire = toWireParams(params);
    expect(Object.values(wire).every((value) => typeof value === 'string')).toBe(true);
    expect(parseWireParams(wire)).toEqual(params);
    expect(toWireParams(parseWireParams(wire))).toEqual(wire);
  });

  it('matches what the official SDK puts on the wire for the same request', () => {
    const params = updateIpsecServerParamsSchema.parse({
      ...base,
      DryRun: true,
      EffectImmediately: false,
      PskEnabled: true,
      IkeConfig: { IkeVersion: 'ikev2' },
    });
    // The SDK takes IkeConfig already as a JSON string and DryRun as a string (UpdateIpsecServerRequest).
    const sdk = OpenApiUtil.query({
      IpsecServerId: 'iss-1',
      RegionId: 'cn-shanghai',
      DryRun: 'true',
      EffectImmediately: false,
      PskEnabled: true,
      IkeConfig: '{"IkeVersion":"ikev2"}',
    });
    expect(toWireParams(params)).toEqual(sdk);
  });

  it('refuses bad wire params with InvalidInputError naming the field', () => {
    const error = (() => {
      try {
        parseWireParams({ ...base, IkeConfig: '{"IkeLifetime":"soon"}', EffectImmediately: 'maybe' });
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as InvalidInputError).code).toBe('INVALID_INPUT');
    expect((error as InvalidInputError).issues).toEqual([
      { field: 'EffectImmediately', rule: 'must be true or false (got "maybe")' },
      { field: 'IkeConfig.IkeLifetime', rule: 'must be an integer from 0 to 86400 (got "soon")' },
    ]);
  });

  it('refuses common parameters left in by the receiver', () => {
    expect(() => parseWireParams({ ...base, Action: 'UpdateIpsecServer', Version: '2016-04-28' })).toThrow(
      /Action, Version: unknown field/,
    );
  });
});

describe('ListIpsecServers wire encoding', () => {
  it('flattens the id list as IpsecServerId.N, exactly like the official SDK', () => {
    const query = listIpsecServersQuerySchema.parse({
      RegionId: 'cn-hangzhou',
      VpnGatewayId: 'vpn-1',
      IpsecServerName: 'name',
      IpsecServerId: ['iss-a', 'iss-b', 'iss-c'],
      ResourceGroupId: 'rg-1',
      MaxResults: 20,
      NextToken: 'tok',
    });
    const wire = toListWireParams(query);
    expect(wire).toEqual({
      RegionId: 'cn-hangzhou',
      VpnGatewayId: 'vpn-1',
      IpsecServerName: 'name',
      'IpsecServerId.1': 'iss-a',
      'IpsecServerId.2': 'iss-b',
      'IpsecServerId.3': 'iss-c',
      ResourceGroupId: 'rg-1',
      MaxResults: '20',
      NextToken: 'tok',
    });
    expect(wire).toEqual(OpenApiUtil.query(query));
  });

  it('round-trips: query → wire → query, ordering ids by their index', () => {
    const query = listIpsecServersQuerySchema.parse({
      RegionId: 'cn-shanghai',
      IpsecServerId: ['a', 'b'],
      MaxResults: 5,
    });
    expect(parseListWireParams(toListWireParams(query))).toEqual(query);
    expect(
      parseListWireParams({
        RegionId: 'cn-shanghai',
        'IpsecServerId.10': 'j',
        'IpsecServerId.2': 'b',
        'IpsecServerId.1': 'a',
      }).IpsecServerId,
    ).toEqual(['a', 'b', 'j']);
  });

  it('names bad list parameters', () => {
    expect(() => parseListWireParams({ RegionId: 'cn-shanghai', 'IpsecServerId.0': 'a' })).toThrow(
      /IpsecServerId\.0: unknown field/,
    );
    expect(() => parseListWireParams({ RegionId: 'cn-shanghai', 'IpsecServerId.1': '' })).toThrow(
      /IpsecServerId\.0: must not be empty/,
    );
    expect(() => parseListWireParams({ RegionId: 'cn-shanghai', MaxResults: '21' })).toThrow(
      /MaxResults: must be an integer from 1 to 20 \(got 21\)/,
    );
  });
});

describe('listIpsecServersQuerySchema', () => {
  const issues = (input: unknown) => {
    const result = listIpsecServersQuerySchema.safeParse(input);
    return result.success ? [] : fieldIssues(result.error);
  };

  it.each([
    [{ RegionId: 'cn-shanghai' }, []],
    [{ RegionId: 'cn-shanghai', MaxResults: 1 }, []],
    [{ RegionId: 'cn-shanghai', MaxResults: '20' }, []],
    [{ RegionId: 'cn-shanghai', MaxResults: 0 }, [['MaxResults', /1 to 20 \(got 0\)/]]],
    [{ RegionId: 'cn-shanghai', MaxResults: 21 }, [['MaxResults', /1 to 20 \(got 21\)/]]],
    [{ RegionId: 'cn-shanghai', MaxResults: 2.5 }, [['MaxResults', /1 to 20/]]],
    [{ RegionId: 'cn-shanghai', MaxResults: 'ten' }, [['MaxResults', /1 to 20 \(got "ten"\)/]]],
    [{}, [['RegionId', /is required/]]],
    [{ RegionId: 'cn-shanghai', IpsecServerId: 'iss-1' }, [['IpsecServerId', /must be a list/]]],
    [{ RegionId: 'cn-shanghai', IpsecServerId: [] }, [['IpsecServerId', /at least one id/]]],
    [{ RegionId: 'cn-shanghai', VpnGatewayId: '' }, [['VpnGatewayId', /must not be empty/]]],
    [{ RegionId: 'cn-shanghai', PageSize: 10 }, [['PageSize', /unknown field/]]],
  ] as Array<[unknown, Array<[string, RegExp]>]>)('%j', (input, expected) => {
    const found = issues(input);
    expect(found).toHaveLength(expected.length);
    for (const [field, rule] of expected)
      expect(found).toContainEqual({ field, rule: expect.stringMatching(rule) });
  });
});
