import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shown } from '../../src/ipsec/field-rules.js';
import {
  clientTokenSchema,
  ipsecServerNameSchema,
  MUTABLE_FIELDS,
  mutableParamsSchema,
  pickMutable,
  pskSchema,
  setsMutableField,
  updateIpsecServerChangeSchema,
  updateIpsecServerParamsSchema,
} from '../../src/ipsec/update-params.js';
import { fieldIssues, type InvalidInputError, parseOrThrow } from '../../src/validation.js';

const base = { IpsecServerId: 'iss-bp1bo3xuvcxo7ixll0000', RegionId: 'cn-shanghai' };

function issues(
  input: unknown,
  schema: typeof updateIpsecServerParamsSchema = updateIpsecServerParamsSchema,
) {
  const result = schema.safeParse(input);
  return result.success ? [] : fieldIssues(result.error);
}

/** A value just inside a rule passes; one just outside fails naming the field and the rule. */
type Case = [label: string, extra: Record<string, unknown>, expected: 'ok' | [field: string, rule: RegExp]];

const han = '中';
const cases: Case[] = [
  // required identifiers
  ['IpsecServerId given', {}, 'ok'],
  ['IpsecServerId empty', { IpsecServerId: '' }, ['IpsecServerId', /must not be empty/]],
  ['IpsecServerId absent', { IpsecServerId: undefined }, ['IpsecServerId', /is required/]],
  ['IpsecServerId not a string', { IpsecServerId: 5 }, ['IpsecServerId', /must be a string/]],
  ['RegionId cn-shanghai-finance-1', { RegionId: 'cn-shanghai-finance-1' }, 'ok'],
  ['RegionId ap-southeast-1', { RegionId: 'ap-southeast-1' }, 'ok'],
  ['RegionId absent', { RegionId: undefined }, ['RegionId', /is required/]],
  ['RegionId empty', { RegionId: '' }, ['RegionId', /must not be empty/]],
  ['RegionId without a dash', { RegionId: 'shanghai' }, ['RegionId', /region id such as cn-shanghai/]],
  ['RegionId in capitals', { RegionId: 'CN-Shanghai' }, ['RegionId', /region id/]],

  // LocalSubnet
  ['LocalSubnet one block', { LocalSubnet: '192.168.1.0/24' }, 'ok'],
  ['LocalSubnet two blocks', { LocalSubnet: '192.168.1.0/24,10.0.0.0/16' }, 'ok'],
  ['LocalSubnet /32 host', { LocalSubnet: '192.168.1.5/32' }, 'ok'],
  ['LocalSubnet /0', { LocalSubnet: '0.0.0.0/0' }, 'ok'],
  [
    'LocalSubnet host bits set',
    { LocalSubnet: '192.168.1.5/24' },
    [
      'LocalSubnet',
      /entry 1: must be a network address, e\.g\. 192\.168\.1\.0\/24 \(got 192\.168\.1\.5\/24\)/,
    ],
  ],
  [
    'LocalSubnet second entry with host bits',
    { LocalSubnet: '10.0.0.0/8,172.16.0.1/12' },
    ['LocalSubnet', /entry 2: must be a network address, e\.g\. 172\.16\.0\.0\/12/],
  ],
  [
    'LocalSubnet duplicate',
    { LocalSubnet: '10.0.0.0/8,10.0.0.0/8' },
    ['LocalSubnet', /entry 2.*listed twice/],
  ],
  [
    'LocalSubnet prefix /33',
    { LocalSubnet: '10.0.0.0/33' },
    ['LocalSubnet', /prefix length must be 0 to 32/],
  ],
  ['LocalSubnet no prefix', { LocalSubnet: '10.0.0.0' }, ['LocalSubnet', /IPv4 CIDR block/]],
  ['LocalSubnet octet 256', { LocalSubnet: '256.0.0.0/8' }, ['LocalSubnet', /not an IPv4 address/]],
  ['LocalSubnet short form', { LocalSubnet: '10.1/16' }, ['LocalSubnet', /not an IPv4 address/]],
  ['LocalSubnet leading zero', { LocalSubnet: '010.0.0.0/8' }, ['LocalSubnet', /not an IPv4 address/]],
  ['LocalSubnet IPv6', { LocalSubnet: 'fd00::/8' }, ['LocalSubnet', /IPv4 CIDR block/]],
  ['LocalSubnet empty', { LocalSubnet: '' }, ['LocalSubnet', /at least one IPv4 CIDR block/]],
  [
    'LocalSubnet empty entry',
    { LocalSubnet: '10.0.0.0/8,,192.168.0.0/16' },
    ['LocalSubnet', /entry 2 is empty/],
  ],
  ['LocalSubnet trailing comma', { LocalSubnet: '10.0.0.0/8,' }, ['LocalSubnet', /entry 2 is empty/]],

  // ClientIpPool
  ['ClientIpPool network', { ClientIpPool: '10.10.0.0/24' }, 'ok'],
  [
    'ClientIpPool host bits',
    { ClientIpPool: '10.10.0.1/24' },
    ['ClientIpPool', /network address, e\.g\. 10\.10\.0\.0\/24/],
  ],
  ['ClientIpPool list', { ClientIpPool: '10.10.0.0/24,10.11.0.0/24' }, ['ClientIpPool', /IPv4 CIDR block/]],
  ['ClientIpPool /33', { ClientIpPool: '10.10.0.0/33' }, ['ClientIpPool', /prefix length/]],

  // IpsecServerName
  ['IpsecServerName 2 chars', { IpsecServerName: 'ab' }, 'ok'],
  [
    'IpsecServerName 1 char',
    { IpsecServerName: 'a' },
    ['IpsecServerName', /2 to 128 characters long \(got 1\)/],
  ],
  ['IpsecServerName 128 chars', { IpsecServerName: `a${'b'.repeat(127)}` }, 'ok'],
  ['IpsecServerName 129 chars', { IpsecServerName: `a${'b'.repeat(128)}` }, ['IpsecServerName', /got 129/]],
  ['IpsecServerName 128 Chinese', { IpsecServerName: han.repeat(128) }, 'ok'],
  ['IpsecServerName 129 Chinese', { IpsecServerName: han.repeat(129) }, ['IpsecServerName', /got 129/]],
  ['IpsecServerName Chinese start', { IpsecServerName: '中文-server_1' }, 'ok'],
  [
    'IpsecServerName starts with digit',
    { IpsecServerName: '1abc' },
    ['IpsecServerName', /must start with a letter/],
  ],
  [
    'IpsecServerName starts with dash',
    { IpsecServerName: '-abc' },
    ['IpsecServerName', /must start with a letter/],
  ],
  [
    'IpsecServerName starts with _',
    { IpsecServerName: '_abc' },
    ['IpsecServerName', /must start with a letter/],
  ],
  ['IpsecServerName with space', { IpsecServerName: 'ab c' }, ['IpsecServerName', /only letters, digits/]],
  ['IpsecServerName with dot', { IpsecServerName: 'ab.c' }, ['IpsecServerName', /only letters, digits/]],
  [
    'IpsecServerName accented letter',
    { IpsecServerName: 'café' },
    ['IpsecServerName', /only letters, digits/],
  ],
  ['IpsecServerName empty', { IpsecServerName: '' }, ['IpsecServerName', /2 to 128/]],

  // booleans, typed and as wire strings
  ['EffectImmediately true', { EffectImmediately: true }, 'ok'],
  ['EffectImmediately "false"', { EffectImmediately: 'false' }, 'ok'],
  ['EffectImmediately "yes"', { EffectImmediately: 'yes' }, ['EffectImmediately', /must be true or false/]],
  ['EffectImmediately 1', { EffectImmediately: 1 }, ['EffectImmediately', /must be true or false/]],
  ['EffectImmediately "True"', { EffectImmediately: 'True' }, ['EffectImmediately', /must be true or false/]],
  ['DryRun "true"', { DryRun: 'true' }, 'ok'],
  ['DryRun false', { DryRun: false }, 'ok'],
  ['DryRun "1"', { DryRun: '1' }, ['DryRun', /must be true or false/]],

  // PskEnabled, Psk
  ['PskEnabled true', { PskEnabled: true }, 'ok'],
  ['PskEnabled "true"', { PskEnabled: 'true' }, 'ok'],
  ['PskEnabled false', { PskEnabled: false }, ['PskEnabled', /can only be true/]],
  ['PskEnabled "false"', { PskEnabled: 'false' }, ['PskEnabled', /can only be true/]],
  ['Psk 1 char', { Psk: 'x' }, 'ok'],
  ['Psk 100 chars', { Psk: 'k'.repeat(100) }, 'ok'],
  ['Psk all printable', { Psk: ' ~!"#$%&\'()*+,-./09:;<=>?@AZ[\\]^_`az{|}' }, 'ok'],
  ['Psk 101 chars', { Psk: 'k'.repeat(101) }, ['Psk', /1 to 100 characters long \(got 101\)/]],
  ['Psk empty', { Psk: '' }, ['Psk', /1 to 100 characters long \(got 0\)/]],
  ['Psk with tab', { Psk: 'abc\tdef' }, ['Psk', /printable ASCII.*character 4/]],
  ['Psk with DEL', { Psk: 'abc\x7f' }, ['Psk', /printable ASCII/]],
  ['Psk non-ASCII', { Psk: 'clé' }, ['Psk', /printable ASCII/]],
  ['Psk number', { Psk: 123456 }, ['Psk', /must be a string/]],

  // ClientToken
  ['ClientToken 64 chars', { ClientToken: 't'.repeat(64) }, 'ok'],
  ['ClientToken uuid', { ClientToken: 'e4567-e89b-12d3-a456-426655440000' }, 'ok'],
  [
    'ClientToken 65 chars',
    { ClientToken: 't'.repeat(65) },
    ['ClientToken', /1 to 64 characters long \(got 65\)/],
  ],
  ['ClientToken empty', { ClientToken: '' }, ['ClientToken', /1 to 64/]],
  ['ClientToken non-ASCII', { ClientToken: 'tokén' }, ['ClientToken', /printable ASCII/]],
  ['ClientToken newline', { ClientToken: 'a\nb' }, ['ClientToken', /printable ASCII/]],

  // IkeConfig
  ['IkeConfig empty object', { IkeConfig: {} }, 'ok'],
  [
    'IkeConfig every field',
    {
      IkeConfig: {
        IkeVersion: 'ikev1',
        IkeMode: 'aggressive',
        IkeEncAlg: '3des',
        IkeAuthAlg: 'sha512',
        IkePfs: 'group14',
        IkeLifetime: 0,
        LocalId: '47.22.0.1',
        RemoteId: 'client.example.com',
      },
    },
    'ok',
  ],
  ['IkeConfig JSON string', { IkeConfig: '{"IkeVersion":"ikev2","IkeLifetime":86400}' }, 'ok'],
  ['IkeConfig bad JSON', { IkeConfig: '{"IkeVersion":' }, ['IkeConfig', /must be valid JSON/]],
  ['IkeConfig JSON array', { IkeConfig: '["ikev2"]' }, ['IkeConfig', /must be a JSON object/]],
  ['IkeConfig JSON null', { IkeConfig: 'null' }, ['IkeConfig', /must be a JSON object/]],
  ['IkeConfig a number', { IkeConfig: 7 }, ['IkeConfig', /object or a JSON object string/]],
  ['IkeConfig unknown field', { IkeConfig: { IkeLifeTime: 60 } }, ['IkeConfig.IkeLifeTime', /unknown field/]],
  ['IkeConfig unknown field in JSON', { IkeConfig: '{"Foo":1}' }, ['IkeConfig.Foo', /unknown field/]],
  [
    'IkeVersion ikev3',
    { IkeConfig: { IkeVersion: 'ikev3' } },
    ['IkeConfig.IkeVersion', /one of ikev1, ikev2/],
  ],
  ['IkeMode quick', { IkeConfig: { IkeMode: 'quick' } }, ['IkeConfig.IkeMode', /one of main, aggressive/]],
  ['IkeEncAlg aes192', { IkeConfig: { IkeEncAlg: 'aes192' } }, 'ok'],
  ['IkeEncAlg AES', { IkeConfig: { IkeEncAlg: 'AES' } }, ['IkeConfig.IkeEncAlg', /one of aes, aes192/]],
  ['IkeEncAlg sm4', { IkeConfig: { IkeEncAlg: 'sm4' } }, ['IkeConfig.IkeEncAlg', /got "sm4"/]],
  ['IkeAuthAlg md5', { IkeConfig: { IkeAuthAlg: 'md5' } }, 'ok'],
  ['IkeAuthAlg sha224', { IkeConfig: { IkeAuthAlg: 'sha224' } }, ['IkeConfig.IkeAuthAlg', /one of md5/]],
  ['IkePfs group5', { IkeConfig: { IkePfs: 'group5' } }, 'ok'],
  ['IkePfs disabled', { IkeConfig: { IkePfs: 'disabled' } }, ['IkeConfig.IkePfs', /one of group1/]],
  ['IkeLifetime 86400', { IkeConfig: { IkeLifetime: 86400 } }, 'ok'],
  ['IkeLifetime 0', { IkeConfig: { IkeLifetime: 0 } }, 'ok'],
  [
    'IkeLifetime 86401',
    { IkeConfig: { IkeLifetime: 86401 } },
    ['IkeConfig.IkeLifetime', /0 to 86400 \(got 86401\)/],
  ],
  [
    'IkeLifetime -1',
    { IkeConfig: { IkeLifetime: -1 } },
    ['IkeConfig.IkeLifetime', /integer from 0 to 86400/],
  ],
  ['IkeLifetime 1.5', { IkeConfig: { IkeLifetime: 1.5 } }, ['IkeConfig.IkeLifetime', /integer.*got 1\.5/]],
  ['IkeLifetime string', { IkeConfig: { IkeLifetime: '3600' } }, ['IkeConfig.IkeLifetime', /integer/]],
  ['IkeLifetime 1.5 in JSON', { IkeConfig: '{"IkeLifetime":1.5}' }, ['IkeConfig.IkeLifetime', /integer/]],
  ['LocalId IPv4', { IkeConfig: { LocalId: '116.64.0.1' } }, 'ok'],
  ['LocalId IPv6', { IkeConfig: { LocalId: '2001:db8::1' } }, 'ok'],
  ['LocalId single label', { IkeConfig: { LocalId: 'vpn' } }, 'ok'],
  ['RemoteId FQDN', { IkeConfig: { RemoteId: 'a-b.example.cn' } }, 'ok'],
  ['RemoteId 253 chars', { IkeConfig: { RemoteId: `${'a'.repeat(63)}.`.repeat(3) + 'b'.repeat(61) } }, 'ok'],
  [
    'RemoteId 254 chars',
    { IkeConfig: { RemoteId: `${'a'.repeat(63)}.`.repeat(3) + 'b'.repeat(62) } },
    ['IkeConfig.RemoteId', /FQDN/],
  ],
  [
    'RemoteId 64-char label',
    { IkeConfig: { RemoteId: `${'a'.repeat(64)}.com` } },
    ['IkeConfig.RemoteId', /FQDN/],
  ],
  [
    'LocalId bad IPv4',
    { IkeConfig: { LocalId: '1.2.3.400' } },
    ['IkeConfig.LocalId', /FQDN .* or an IP address/],
  ],
  ['LocalId empty label', { IkeConfig: { LocalId: 'a..b' } }, ['IkeConfig.LocalId', /FQDN/]],
  ['LocalId with space', { IkeConfig: { LocalId: 'a b' } }, ['IkeConfig.LocalId', /FQDN/]],
  ['LocalId label ends with dash', { IkeConfig: { LocalId: 'a-.com' } }, ['IkeConfig.LocalId', /FQDN/]],
  ['LocalId empty', { IkeConfig: { LocalId: '' } }, ['IkeConfig.LocalId', /FQDN/]],

  // IpsecConfig
  ['IpsecConfig empty object', { IpsecConfig: {} }, 'ok'],
  [
    'IpsecConfig every field',
    {
      IpsecConfig: {
        IpsecEncAlg: 'aes256',
        IpsecAuthAlg: 'sha384',
        IpsecPfs: 'disabled',
        IpsecLifetime: 86400,
      },
    },
    'ok',
  ],
  ['IpsecConfig JSON string', { IpsecConfig: '{"IpsecPfs":"group2"}' }, 'ok'],
  ['IpsecConfig bad JSON', { IpsecConfig: "{'IpsecPfs':'group2'}" }, ['IpsecConfig', /must be valid JSON/]],
  [
    'IpsecConfig unknown field',
    { IpsecConfig: { IkeMode: 'main' } },
    ['IpsecConfig.IkeMode', /unknown field/],
  ],
  ['IpsecEncAlg des', { IpsecConfig: { IpsecEncAlg: 'des' } }, 'ok'],
  [
    'IpsecEncAlg aes128',
    { IpsecConfig: { IpsecEncAlg: 'aes128' } },
    ['IpsecConfig.IpsecEncAlg', /one of aes/],
  ],
  ['IpsecAuthAlg sha256', { IpsecConfig: { IpsecAuthAlg: 'sha256' } }, 'ok'],
  [
    'IpsecAuthAlg none',
    { IpsecConfig: { IpsecAuthAlg: 'none' } },
    ['IpsecConfig.IpsecAuthAlg', /one of md5/],
  ],
  ['IpsecPfs group1', { IpsecConfig: { IpsecPfs: 'group1' } }, 'ok'],
  [
    'IpsecPfs group24',
    { IpsecConfig: { IpsecPfs: 'group24' } },
    ['IpsecConfig.IpsecPfs', /one of disabled, group1/],
  ],
  ['IpsecLifetime 86400', { IpsecConfig: { IpsecLifetime: 86400 } }, 'ok'],
  [
    'IpsecLifetime 86401',
    { IpsecConfig: { IpsecLifetime: 86401 } },
    ['IpsecConfig.IpsecLifetime', /0 to 86400/],
  ],
  ['IpsecLifetime -1', { IpsecConfig: { IpsecLifetime: -1 } }, ['IpsecConfig.IpsecLifetime', /0 to 86400/]],
  ['IpsecLifetime 0.5', { IpsecConfig: { IpsecLifetime: 0.5 } }, ['IpsecConfig.IpsecLifetime', /integer/]],

  // strictness
  ['unknown top-level field', { LocalSubnets: '10.0.0.0/8' }, ['LocalSubnets', /unknown field/]],
  ['Action is not a business parameter', { Action: 'UpdateIpsecServer' }, ['Action', /unknown field/]],
];

describe('updateIpsecServerParamsSchema', () => {
  it.each(cases)('%s', (_label, extra, expected) => {
    const found = issues({ ...base, ...extra });
    if (expected === 'ok') {
      expect(found).toEqual([]);
      return;
    }
    const [field, rule] = expected;
    expect(found).toContainEqual({ field, rule: expect.stringMatching(rule) });
  });

  it('reports every bad field at once', () => {
    const found = issues({ ...base, LocalSubnet: '10.0.0.1/8', Psk: '', IkeConfig: { IkeLifetime: 99999 } });
    expect(found.map((issue) => issue.field)).toEqual(['LocalSubnet', 'IkeConfig.IkeLifetime', 'Psk']);
  });

  it('refuses a non-object as a whole', () => {
    expect(issues('LocalSubnet=10.0.0.0/8')).toEqual([{ field: '', rule: 'must be an object' }]);
    expect(issues(null)).toEqual([{ field: '', rule: 'must be an object' }]);
  });

  it('never shows the pre-shared key in a message', () => {
    const secret = 'S3cr3t-\u0007-key';
    const message = (() => {
      try {
        parseOrThrow(updateIpsecServerParamsSchema, { ...base, Psk: secret }, 'params');
      } catch (error) {
        return (error as InvalidInputError).message;
      }
      return '';
    })();
    expect(message).toMatch(/Psk: must contain only printable ASCII/);
    expect(message).not.toContain('S3cr3t');
  });

  it('outputs typed values from wire strings', () => {
    const parsed = updateIpsecServerParamsSchema.parse({
      ...base,
      LocalSubnet: '192.168.1.0/24 , 10.0.0.0/16',
      EffectImmediately: 'true',
      DryRun: 'false',
      PskEnabled: 'true',
      IkeConfig: '{"IkeLifetime":3600,"IkeVersion":"ikev1"}',
    });
    expect(parsed).toEqual({
      ...base,
      LocalSubnet: '192.168.1.0/24,10.0.0.0/16',
      EffectImmediately: true,
      DryRun: false,
      PskEnabled: true,
      IkeConfig: { IkeLifetime: 3600, IkeVersion: 'ikev1' },
    });
  });

  it('throws InvalidInputError with field and rule through parseOrThrow', () => {
    expect(() =>
      parseOrThrow(updateIpsecServerParamsSchema, { ...base, IpsecServerName: '9x' }, 'params'),
    ).toThrow(/invalid params: IpsecServerName: must start with a letter or a Chinese character/);
  });
});

describe('mutable fields', () => {
  it('lists the eight fields a change may set', () => {
    expect(MUTABLE_FIELDS).toEqual([
      'LocalSubnet',
      'ClientIpPool',
      'IpsecServerName',
      'EffectImmediately',
      'IkeConfig',
      'IpsecConfig',
      'PskEnabled',
      'Psk',
    ]);
  });

  it.each(MUTABLE_FIELDS.map((field) => [field]))('accepts a change that sets only %s', (field) => {
    const value = {
      LocalSubnet: '10.0.0.0/8',
      ClientIpPool: '172.16.0.0/24',
      IpsecServerName: 'name',
      EffectImmediately: false,
      IkeConfig: { IkeMode: 'main' },
      IpsecConfig: '{"IpsecPfs":"disabled"}',
      PskEnabled: true,
      Psk: 'key',
    }[field];
    expect(mutableParamsSchema.safeParse({ [field]: value }).success).toBe(true);
    expect(updateIpsecServerChangeSchema.safeParse({ ...base, [field]: value }).success).toBe(true);
  });

  const atLeastOne = {
    field: '',
    rule: expect.stringMatching(/must set at least one of LocalSubnet, .*Psk/),
  };

  it('refuses a change that sets nothing', () => {
    expect(fieldIssues(mutableParamsSchema.safeParse({}).error!)).toEqual([atLeastOne]);
    expect(issues({ ...base, DryRun: true, ClientToken: 't' }, updateIpsecServerChangeSchema)).toEqual([
      atLeastOne,
    ]);
  });

  it('does not count an empty config or an undefined field as setting something', () => {
    expect(fieldIssues(mutableParamsSchema.safeParse({ IkeConfig: {}, Psk: undefined }).error!)).toEqual([
      atLeastOne,
    ]);
    expect(fieldIssues(mutableParamsSchema.safeParse({ IpsecConfig: '{}' }).error!)).toEqual([atLeastOne]);
    expect(setsMutableField({ IkeConfig: { IkeMode: undefined } })).toBe(false);
    expect(setsMutableField({ EffectImmediately: false })).toBe(true);
  });

  it('refuses identifiers in the mutable params', () => {
    expect(fieldIssues(mutableParamsSchema.safeParse({ IpsecServerId: 'iss-1', Psk: 'k' }).error!)).toEqual([
      { field: 'IpsecServerId', rule: 'unknown field' },
    ]);
  });

  it('picks the mutable part of full params', () => {
    const full = updateIpsecServerParamsSchema.parse({ ...base, Psk: 'k', DryRun: true, ClientToken: 't' });
    expect(pickMutable(full)).toEqual({ Psk: 'k' });
  });
});

/**
 * The name, Psk and ClientToken rules test a whole text at once and walk it character by character
 * only to word a refusal; these hold them to the messages of the plain walk they replaced, over
 * texts of every kind of character (astral, lone surrogates, controls) and length.
 */
describe('text rules, against the character-by-character walk', () => {
  const NAME_FIRST = /^[A-Za-z\p{Script=Han}]/u;
  const NAME_CHAR = /^[A-Za-z0-9\p{Script=Han}_-]$/u;
  function nameProblems(value: string): string[] {
    const problems: string[] = [];
    const chars = [...value];
    if (chars.length < 2 || chars.length > 128)
      problems.push(`must be 2 to 128 characters long (got ${chars.length})`);
    if (chars.length > 0 && !NAME_FIRST.test(value)) {
      problems.push(`must start with a letter or a Chinese character (got ${shown(value)})`);
    }
    const bad = chars.find((char) => !NAME_CHAR.test(char));
    if (bad !== undefined) {
      problems.push(
        `may contain only letters, digits, Chinese characters, '-' and '_' (got ${JSON.stringify(bad)} in ${shown(value)})`,
      );
    }
    return problems;
  }
  const firstBad = (value: string) => [...value].findIndex((char) => !/^[\x20-\x7e]$/.test(char));
  function pskProblems(value: string): string[] {
    const problems: string[] = [];
    if (value.length < 1 || value.length > 100)
      problems.push(`must be 1 to 100 characters long (got ${value.length})`);
    const bad = firstBad(value);
    if (bad >= 0) {
      problems.push(`must contain only printable ASCII characters (space to ~); character ${bad + 1} is not`);
    }
    return problems;
  }
  function tokenProblems(value: string): string[] {
    const problems: string[] = [];
    if (value.length < 1 || value.length > 64)
      problems.push(`must be 1 to 64 characters long (got ${value.length})`);
    const bad = firstBad(value);
    if (bad >= 0) {
      problems.push(
        `must contain only printable ASCII characters; character ${bad + 1} is not (${shown(value)})`,
      );
    }
    return problems;
  }
  const messages = (result: { success: boolean; error?: { issues: { message: string }[] } }) =>
    result.success ? [] : (result.error?.issues.map((issue) => issue.message) ?? []);

  const piece = fc.oneof(
    fc.constantFrom('a', 'Z', '0', '_', '-', ' ', '~', '中', '\u{20000}', '\u{1F600}', 'é', '\n', '\u007f'),
    fc.constantFrom('\ud800', '\udc00', '\ud800\ud800'),
    fc.string({ unit: 'binary', maxLength: 3 }),
  );
  const text = fc.oneof(
    fc.array(piece, { maxLength: 12 }).map((pieces) => pieces.join('')),
    fc.array(piece, { minLength: 60, maxLength: 140 }).map((pieces) => pieces.join('')),
    fc.tuple(fc.integer({ min: 0, max: 140 }), piece).map(([length, tail]) => 'a'.repeat(length) + tail),
  );

  it('IpsecServerName', () => {
    fc.assert(
      fc.property(text, (value) => {
        expect(messages(ipsecServerNameSchema.safeParse(value))).toEqual(nameProblems(value));
      }),
      { numRuns: 3_000 },
    );
  });

  it('Psk and ClientToken', () => {
    fc.assert(
      fc.property(text, (value) => {
        expect(messages(pskSchema.safeParse(value))).toEqual(pskProblems(value));
        expect(messages(clientTokenSchema.safeParse(value))).toEqual(tokenProblems(value));
      }),
      { numRuns: 3_000 },
    );
  });
});
