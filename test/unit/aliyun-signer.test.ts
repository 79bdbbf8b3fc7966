import { createHash, createHmac } from 'node:crypto';
import { OpenApiUtil } from '@alicloud/openapi-core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ParamEncodingError } from '../../src/aliyun/errors.js';
import { percentEncode } from '../../src/aliyun/percent-encode.js';
import {
  buildV1CommonParams,
  canonicalizeHeaders,
  canonicalQueryString,
  createV3RpcSigner,
  EMPTY_BODY_SHA256,
  formatAcsTimestamp,
  parseAuthorizationV3,
  signV1,
  signV3Request,
  signV3WithCanonicalQuery,
  stringToSignV1,
  verifyV1Signature,
  verifyV3Request,
} from '../../src/aliyun/signer.js';
import type { Credentials } from '../../src/aliyun/types.js';

describe('percentEncode', () => {
  it.each([
    ['a b', 'a%20b'],
    ["!'()*", '%21%27%28%29%2A'],
    ['-_.~AZaz09', '-_.~AZaz09'],
    ['+/=&?#%', '%2B%2F%3D%26%3F%23%25'],
    ['测试服务器', '%E6%B5%8B%E8%AF%95%E6%9C%8D%E5%8A%A1%E5%99%A8'],
    ['😀', '%F0%9F%98%80'],
  ])('encodes %j as %s', (input, expected) => {
    expect(percentEncode(input)).toBe(expected);
  });

  it('refuses a lone surrogate with a typed error instead of a URIError', () => {
    expect(() => percentEncode('x\uD800y')).toThrow(ParamEncodingError);
  });
});

describe('formatAcsTimestamp', () => {
  it('is UTC to the second, without milliseconds', () => {
    expect(formatAcsTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 987)))).toBe('2026-01-02T03:04:05Z');
  });
});

describe('canonicalQueryString', () => {
  it('sorts by encoded name, which differs from sorting raw names', () => {
    // Raw, '5' < ':'; encoded, 'a%3A' < 'a5'.
    expect(canonicalQueryString({ a5: 'x', 'a:': 'y' })).toBe('a%3A=y&a5=x');
  });

  it('keeps `=` for an empty value and encodes values per RFC 3986', () => {
    expect(canonicalQueryString({ B: '', A: "it's (a) *test* ~ok" })).toBe(
      'A=it%27s%20%28a%29%20%2Atest%2A%20~ok&B=',
    );
  });

  it('is empty for no parameters', () => {
    expect(canonicalQueryString({})).toBe('');
  });
});

describe('V1 HMAC-SHA1', () => {
  const documentedParams = {
    Timestamp: '2016-02-23T12:46:24Z',
    Format: 'XML',
    AccessKeyId: 'testid',
    Action: 'DescribeRegions',
    SignatureMethod: 'HMAC-SHA1',
    SignatureNonce: '3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf',
    Version: '2014-05-26',
    SignatureVersion: '1.0',
  };

  it('reproduces the documented test vector', () => {
    expect(stringToSignV1('GET', canonicalQueryString(documentedParams))).toBe(
      'GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1' +
        '%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0' +
        '%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26',
    );
    expect(signV1(documentedParams, 'GET', 'testsecret')).toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
  });

  it('signs the method: POST gives another signature than GET', () => {
    expect(signV1(documentedParams, 'POST', 'testsecret')).not.toBe('OLeaidS1JvxuMvnyHOwuJ+uX5qY=');
  });

  it('verifies a received request and rejects a tampered one', () => {
    const received = { ...documentedParams, Signature: 'OLeaidS1JvxuMvnyHOwuJ+uX5qY=' };
    expect(verifyV1Signature(received, 'GET', 'testsecret')).toBe(true);
    expect(verifyV1Signature({ ...received, Action: 'DeleteVpc' }, 'GET', 'testsecret')).toBe(false);
    expect(verifyV1Signature(received, 'GET', 'othersecret')).toBe(false);
    expect(verifyV1Signature(documentedParams, 'GET', 'testsecret')).toBe(false);
  });

  it('builds the common parameters from an injected clock and nonce', () => {
    const now = new Date(Date.UTC(2026, 10, 28, 19, 46, 29, 512));
    expect(
      buildV1CommonParams({
        action: 'UpdateIpsecServer',
        version: '2016-04-28',
        credentials: { accessKeyId: 'ak' },
        now,
        nonce: 'n-1',
      }),
    ).toEqual({
      Action: 'UpdateIpsecServer',
      Format: 'JSON',
      Version: '2016-04-28',
      AccessKeyId: 'ak',
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      SignatureNonce: 'n-1',
      Timestamp: '2026-11-28T19:46:29Z',
    });
    const withToken = buildV1CommonParams({
      action: 'A',
      version: 'v',
      credentials: { accessKeyId: 'ak', securityToken: 'sts' },
      now,
      nonce: 'n',
    });
    expect(withToken.SecurityToken).toBe('sts');
  });
});

describe('V3 ACS3-HMAC-SHA256', () => {
  const credentials = { accessKeyId: 'LTAI-test', accessKeySecret: 'secret-test' };
  const baseHeaders = {
    host: 'vpc.cn-shanghai.aliyuncs.com',
    'x-acs-action': 'UpdateIpsecServer',
    'x-acs-version': '2016-04-28',
    'x-acs-date': '2026-11-28T19:46:29Z',
    'x-acs-signature-nonce': 'nonce-1',
    'x-acs-content-sha256': EMPTY_BODY_SHA256,
    accept: 'application/json',
  };
  const query = { RegionId: 'cn-shanghai', IpsecServerId: 'iss-1', IpsecServerName: "测试服务器 *'(~)" };

  it('signs the canonical request the documentation describes', () => {
    const canonicalRequest = [
      'POST',
      '/',
      'IpsecServerId=iss-1&IpsecServerName=%E6%B5%8B%E8%AF%95%E6%9C%8D%E5%8A%A1%E5%99%A8%20%2A%27%28~%29&RegionId=cn-shanghai',
      'host:vpc.cn-shanghai.aliyuncs.com\nx-acs-action:UpdateIpsecServer\n' +
        `x-acs-content-sha256:${EMPTY_BODY_SHA256}\nx-acs-date:2026-11-28T19:46:29Z\n` +
        'x-acs-signature-nonce:nonce-1\nx-acs-version:2016-04-28\n',
      'host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version',
      EMPTY_BODY_SHA256,
    ].join('\n');
    const stringToSign = `ACS3-HMAC-SHA256\n${createHash('sha256').update(canonicalRequest).digest('hex')}`;
    const signature = createHmac('sha256', credentials.accessKeySecret).update(stringToSign).digest('hex');

    const headers = signV3Request({
      method: 'POST',
      pathname: '/',
      query,
      headers: baseHeaders,
      credentials,
    });
    expect(headers.authorization).toBe(
      'ACS3-HMAC-SHA256 Credential=LTAI-test,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;' +
        `x-acs-signature-nonce;x-acs-version,Signature=${signature}`,
    );
    expect(headers.accept).toBe('application/json');
  });

  it('computes the payload hash when the header is absent', () => {
    const { 'x-acs-content-sha256': _omitted, ...withoutHash } = baseHeaders;
    const headers = signV3Request({
      method: 'POST',
      pathname: '/',
      query,
      headers: withoutHash,
      body: 'a=1',
      credentials,
    });
    expect(headers['x-acs-content-sha256']).toBe(createHash('sha256').update('a=1').digest('hex'));
  });

  it('adds and signs the STS token and key id headers', () => {
    const headers = signV3Request({
      method: 'POST',
      pathname: '/',
      query,
      headers: baseHeaders,
      credentials: { ...credentials, securityToken: 'sts-token' },
    });
    expect(headers['x-acs-security-token']).toBe('sts-token');
    expect(headers['x-acs-accesskey-id']).toBe('LTAI-test');
    expect(parseAuthorizationV3(headers.authorization)?.signedHeaders).toEqual([
      'host',
      'x-acs-accesskey-id',
      'x-acs-action',
      'x-acs-content-sha256',
      'x-acs-date',
      'x-acs-security-token',
      'x-acs-signature-nonce',
      'x-acs-version',
    ]);
  });

  it('canonicalizes headers: lower-case, trimmed, sorted, only host/content-type/x-acs-*', () => {
    expect(
      canonicalizeHeaders({
        'X-Acs-Version': ' 2016-04-28 ',
        Host: 'h',
        'User-Agent': 'ua',
        'Content-Type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      }),
    ).toEqual({
      canonicalHeaders: 'content-type:application/x-www-form-urlencoded\nhost:h\nx-acs-version:2016-04-28\n',
      signedHeaders: 'content-type;host;x-acs-version',
    });
  });

  it('canonicalizes exactly the listed headers when verifying', () => {
    expect(canonicalizeHeaders({ host: 'h', 'x-acs-extra': 'e' }, ['host', 'x-acs-missing'])).toEqual({
      canonicalHeaders: 'host:h\nx-acs-missing:\n',
      signedHeaders: 'host;x-acs-missing',
    });
  });

  describe('parseAuthorizationV3', () => {
    it('reads the three fields, with or without spaces after commas', () => {
      const expected = {
        algorithm: 'ACS3-HMAC-SHA256',
        accessKeyId: 'ak',
        signedHeaders: ['host', 'x-acs-date'],
        signature: 'abc',
      };
      expect(
        parseAuthorizationV3('ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host;x-acs-date,Signature=abc'),
      ).toEqual(expected);
      expect(
        parseAuthorizationV3('ACS3-HMAC-SHA256 Credential=ak, SignedHeaders=host;x-acs-date, Signature=abc'),
      ).toEqual(expected);
    });

    it.each([
      undefined,
      '',
      'ACS3-HMAC-SHA256',
      'ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host',
      'ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host,Signature=',
      'ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host,Signature=abc,Extra=1',
      'acs ak:signature',
    ])('returns undefined for %j', (value) => {
      expect(parseAuthorizationV3(value)).toBeUndefined();
    });
  });

  describe('verifyV3Request', () => {
    const signed = signV3Request({ method: 'POST', pathname: '/', query, headers: baseHeaders, credentials });
    const authorization = parseAuthorizationV3(signed.authorization);
    if (!authorization) throw new Error('test setup: unparsable authorization');
    // What a server sees: its proxy added headers the client never signed.
    const received = { ...signed, 'user-agent': 'x', connection: 'keep-alive', 'content-length': '0' };
    const verify = (overrides: Partial<Parameters<typeof verifyV3Request>[0]>) =>
      verifyV3Request({
        method: 'POST',
        pathname: '/',
        query,
        headers: received,
        authorization,
        accessKeySecret: credentials.accessKeySecret,
        ...overrides,
      });

    it('accepts the signed request despite unsigned extra headers', () => {
      const result = verify({});
      expect(result.valid).toBe(true);
      expect(result.unsignedHeaders).toEqual([]);
    });

    it.each([
      ['a changed parameter', { query: { ...query, IpsecServerId: 'iss-2' } }],
      ['an added parameter', { query: { ...query, DryRun: 'true' } }],
      ['a changed signed header', { headers: { ...received, 'x-acs-action': 'DeleteVpc' } }],
      ['another method', { method: 'GET' }],
      ['a body', { body: 'x=1' }],
      ['another secret', { accessKeySecret: 'wrong' }],
      ['another algorithm', { authorization: { ...authorization, algorithm: 'ACS3-HMAC-SM3' } }],
    ])('rejects %s', (_label, overrides) => {
      expect(verify(overrides).valid).toBe(false);
    });

    it('reports x-acs-* headers that were sent but not signed', () => {
      const result = verify({ headers: { ...received, 'x-acs-security-token': 'smuggled' } });
      expect(result.valid).toBe(true);
      expect(result.unsignedHeaders).toEqual(['x-acs-security-token']);
    });
  });

  it('matches the official SDK signer (openapi-core getAuthorization) for arbitrary parameters', () => {
    const parameterName = fc.stringMatching(/^[A-Z][A-Za-z0-9.]{0,15}$/);
    // Uniform code points would almost never draw the ASCII marks where encoders differ; weight them in.
    const character = fc.oneof(
      fc.constantFrom('*', "'", '(', ')', '!', '~', ' ', '+', '/', '=', '&', '%', '测', '😀'),
      fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 1 }),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(
        fc.dictionary(parameterName, fc.string({ unit: character, maxLength: 40 }), { maxKeys: 8 }),
        fc.string({ unit: 'binary-ascii', maxLength: 12 }).filter((s) => /^[\x21-\x7e]*$/.test(s)),
        fc.option(fc.stringMatching(/^[A-Za-z0-9+/=]{1,40}$/), { nil: undefined }),
        (params, nonce, securityToken) => {
          const headers = { ...baseHeaders, 'x-acs-signature-nonce': nonce };
          const ours = signV3Request({
            method: 'POST',
            pathname: '/',
            query: params,
            headers,
            credentials: { ...credentials, securityToken },
          });
          const { authorization, ...sent } = ours;
          const official = OpenApiUtil.getAuthorization(
            { method: 'POST', pathname: '/', query: params, headers: sent } as never,
            'ACS3-HMAC-SHA256',
            EMPTY_BODY_SHA256,
            credentials.accessKeyId,
            credentials.accessKeySecret,
          );
          expect(authorization).toBe(official);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('createV3RpcSigner', () => {
  // The general signer is the one checked against the official SDK; the client's prebuilt one must
  // agree with it byte for byte, secrets of every length included (keys over 64 bytes are hashed
  // first in HMAC, a branch of their own).
  function generalSign(
    host: string,
    version: string,
    credentials: Credentials,
    call: { action: string; canonicalQuery: string; date: string; nonce: string },
  ) {
    return signV3WithCanonicalQuery(
      {
        method: 'POST',
        pathname: '/',
        headers: {
          host,
          'x-acs-action': call.action,
          'x-acs-version': version,
          'x-acs-date': call.date,
          'x-acs-signature-nonce': call.nonce,
          'x-acs-content-sha256': EMPTY_BODY_SHA256,
        },
        credentials,
      },
      call.canonicalQuery,
    );
  }

  it('gives the headers signV3WithCanonicalQuery gives, for any secret and call', () => {
    const headerText = fc
      .string({ unit: 'binary-ascii', maxLength: 40 })
      .filter((s) => /^[\x20-\x7e]*$/.test(s));
    fc.assert(
      fc.property(
        fc.record({
          host: fc.constantFrom('vpc.cn-shanghai.aliyuncs.com', '127.0.0.1:8080', 'vpc.aliyuncs.com'),
          version: fc.constantFrom('2016-04-28', ' 2016-04-28 '),
          accessKeyId: fc.stringMatching(/^[A-Za-z0-9]{1,30}$/),
          accessKeySecret: fc.oneof(
            fc.string({ minLength: 1, maxLength: 40 }),
            fc.string({ unit: 'grapheme', minLength: 30, maxLength: 120 }),
          ),
          securityToken: fc.option(fc.stringMatching(/^[A-Za-z0-9+/=]{1,80}$/), { nil: undefined }),
          action: fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,30}$/),
          query: fc.dictionary(fc.stringMatching(/^[A-Z][A-Za-z0-9.]{0,15}$/), fc.string({ maxLength: 30 }), {
            maxKeys: 6,
          }),
          date: fc.constantFrom('2026-11-28T19:46:29Z', '2030-01-01T00:00:00Z'),
          nonce: headerText,
        }),
        (drawn) => {
          const credentials = {
            accessKeyId: drawn.accessKeyId,
            accessKeySecret: drawn.accessKeySecret,
            securityToken: drawn.securityToken,
          };
          const call = {
            action: drawn.action,
            canonicalQuery: canonicalQueryString(drawn.query),
            date: drawn.date,
            nonce: drawn.nonce,
          };
          const sign = createV3RpcSigner({ host: drawn.host, version: drawn.version, credentials });
          expect(sign(call)).toEqual(generalSign(drawn.host, drawn.version, credentials, call));
          // Signing again reuses the signer's buffers; the second answer must not depend on the first.
          const again = { ...call, nonce: `${drawn.nonce}x` };
          expect(sign(again)).toEqual(generalSign(drawn.host, drawn.version, credentials, again));
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each([63, 64, 65, 66, 200])('signs with a %i-byte secret as createHmac does', (bytes) => {
    // HMAC hashes a key longer than its 64-byte block and pads a shorter one: both sides of that edge.
    const credentials = { accessKeyId: 'LTAI-edge', accessKeySecret: `${'k'.repeat(bytes - 3)}测` };
    const call = {
      action: 'DescribeRegions',
      canonicalQuery: 'RegionId=cn-shanghai',
      date: '2026-11-28T19:46:29Z',
      nonce: 'n-1',
    };
    const sign = createV3RpcSigner({ host: 'vpc.aliyuncs.com', version: '2016-04-28', credentials });
    expect(sign(call).authorization).toBe(
      generalSign('vpc.aliyuncs.com', '2016-04-28', credentials, call).authorization,
    );
  });
});
