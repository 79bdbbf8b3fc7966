/**
 * The simulator's wire protocol: V3 and V1 signatures (GET and POST), every signature error, STS
 * tokens, the error envelope, RequestIds, XML, unknown actions, missing parameters, the admin
 * routes and closing.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { AliyunClient } from '../../src/aliyun/client.js';
import { AliyunTransportError } from '../../src/aliyun/errors.js';
import { percentEncode } from '../../src/aliyun/percent-encode.js';
import {
  authorizationV3,
  buildV1CommonParams,
  canonicalizeHeaders,
  canonicalQueryString,
  canonicalRequestV3,
  formatAcsTimestamp,
  isV3SignedHeaderName,
  sha256Hex,
  signatureV3,
  signV1,
  stringToSignV3,
} from '../../src/aliyun/signer.js';
import type { Credentials } from '../../src/aliyun/types.js';
import { startSimulator } from '../../src/sim/index.js';
import { simPskLabel } from '../../src/sim/psk-label.js';
import {
  API_VERSION,
  adminGet,
  adminPost,
  credentialsOf,
  keyA,
  keyB,
  label,
  labelOf,
  outcome,
  pick,
  type Sim,
  sendV1,
  sendV3,
  useSimulators,
} from '../support/sim-harness.js';
import { waitUntil } from '../support/worker-process.js';

const sims = useSimulators();
const REGION = 'cn-shanghai';
const MINUTE = 60_000;

async function startTwoKeySim(): Promise<Sim> {
  return sims.start({
    servers: 4,
    regions: [REGION, 'cn-hangzhou'],
    accessKeys: [keyA, { ...keyB, securityToken: 'CAIS+bravo/sts==' }],
    seed: 11,
    faults: { configuringMs: 0 },
  });
}

interface CraftedV3 {
  /** Headers to send besides the usual ones; `undefined` leaves a usual one out. */
  headers?: Record<string, string | undefined>;
  /** Sent headers left out of SignedHeaders. */
  unsigned?: string[];
  body?: string;
  /** HashedRequestPayload of the canonical request; by default the SHA-256 of what is sent. */
  hashedPayload?: string;
}

/**
 * A V3 request signed by hand from the signer's parts, for what neither our client nor the
 * harness's sendV3 will send: a header left unsigned or out, a payload hash that lies.
 */
async function sendCraftedV3(
  sim: Sim,
  credentials: Credentials,
  action: string,
  params: Record<string, string>,
  craft: CraftedV3 = {},
): Promise<{ status: number; json: Record<string, unknown> }> {
  const body = craft.body ?? '';
  const wanted: Record<string, string | undefined> = {
    host: new URL(sim.endpoint).host,
    'x-acs-action': action,
    'x-acs-version': API_VERSION,
    'x-acs-date': formatAcsTimestamp(new Date()),
    'x-acs-signature-nonce': randomUUID(),
    'x-acs-content-sha256': sha256Hex(body),
    ...craft.headers,
  };
  const sent: Record<string, string> = {};
  for (const [name, value] of Object.entries(wanted)) if (value !== undefined) sent[name] = value;
  const unsigned = craft.unsigned ?? [];
  const signedNames = Object.keys(sent)
    .filter((name) => isV3SignedHeaderName(name) && !unsigned.includes(name))
    .sort();
  const canonicalQuery = canonicalQueryString(params);
  const { canonicalHeaders, signedHeaders } = canonicalizeHeaders(sent, signedNames);
  const canonicalRequest = canonicalRequestV3({
    method: 'POST',
    pathname: '/',
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    hashedPayload: craft.hashedPayload ?? sha256Hex(body),
  });
  const signature = signatureV3(credentials.accessKeySecret, stringToSignV3(canonicalRequest));
  const response = await request(`${sim.endpoint}/?${canonicalQuery}`, {
    method: 'POST',
    headers: {
      ...sent,
      accept: 'application/json',
      authorization: authorizationV3(credentials.accessKeyId, signedHeaders, signature),
    },
    body: body === '' ? undefined : body,
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  });
  return { status: response.statusCode, json: (await response.body.json()) as Record<string, unknown> };
}

/** A V1 GET of ListIpsecServers whose Timestamp is written as given, and signed so. */
async function sendV1WithTimestamp(
  sim: Sim,
  credentials: Credentials,
  timestamp: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const all = {
    RegionId: REGION,
    ...buildV1CommonParams({
      action: 'ListIpsecServers',
      version: API_VERSION,
      credentials,
      now: new Date(),
      nonce: randomUUID(),
    }),
    Timestamp: timestamp,
  };
  const signature = signV1(all, 'GET', credentials.accessKeySecret);
  const query = `${canonicalQueryString(all)}&Signature=${percentEncode(signature)}`;
  const response = await request(`${sim.endpoint}/?${query}`, {
    headers: { accept: 'application/json' },
    headersTimeout: 5_000,
    bodyTimeout: 5_000,
  });
  return { status: response.statusCode, json: (await response.body.json()) as Record<string, unknown> };
}

function ownServer(sim: Sim) {
  return pick(sim, `owned by ${keyA.accessKeyId} in ${REGION}`, (server) => {
    return server.ownerAccessKeyId === keyA.accessKeyId && server.regionId === REGION;
  });
}

describe('signed requests the simulator accepts', () => {
  it('V3 POST (our client) lists only the caller’s servers of the region', async () => {
    const sim = await startTwoKeySim();
    const result = await outcome(sims.client(sim).call('ListIpsecServers', { RegionId: REGION }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const ids = (result.body.IpsecServers as Array<{ IpsecServerId: string }>).map((s) => s.IpsecServerId);
    const expected = sim.servers
      .filter((s) => s.regionId === REGION && s.ownerAccessKeyId === keyA.accessKeyId)
      .map((s) => s.ipsecServerId);
    expect(expected.length).toBeGreaterThan(0);
    expect(ids.sort()).toEqual(expected.sort());
  });

  it.each(['GET', 'POST'] as const)('V3 %s, hand-signed with our signer, is accepted', async (method) => {
    const sim = await startTwoKeySim();
    const response = await sendV3(sim.endpoint, keyA, 'ListIpsecServers', { RegionId: REGION }, { method });
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/json/);
    expect(Array.isArray(response.json.IpsecServers)).toBe(true);
    expect(typeof response.json.RequestId).toBe('string');
  });

  it.each(['GET', 'POST'] as const)('V1 %s (our client) is accepted', async (v1Method) => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim, { signatureVersion: 'v1', v1Method });
    const list = await outcome(client.call('ListIpsecServers', { RegionId: REGION }));
    expect(label(list)).toBe('OK');
    const server = ownServer(sim);
    const dryRun = await outcome(
      client.call('UpdateIpsecServer', {
        RegionId: REGION,
        IpsecServerId: server.ipsecServerId,
        IpsecServerName: 'via-v1',
        DryRun: true,
      }),
    );
    expect(label(dryRun)).toBe('DryRunOperation');
    expect(sim.stats().byAction.UpdateIpsecServer).toBe(1);
  });

  it.each(['v3', 'v1'] as const)(
    '%s with the STS token configured for the key is accepted',
    async (version) => {
      const sim = await startTwoKeySim();
      const client = sims.client(sim, {
        signatureVersion: version,
        credentials: { ...keyB, securityToken: 'CAIS+bravo/sts==' },
      });
      const result = await outcome(client.call('ListIpsecServers', { RegionId: REGION }));
      expect(label(result)).toBe('OK');
      if (!result.ok) return;
      const owners = (result.body.IpsecServers as Array<{ IpsecServerId: string }>).map(
        (s) => sim.servers.find((known) => known.ipsecServerId === s.IpsecServerId)?.ownerAccessKeyId,
      );
      expect(owners.every((owner) => owner === keyB.accessKeyId)).toBe(true);
    },
  );

  it.each(['v3', 'v1'] as const)(
    '%s with another STS token, or a token on a key without one, is refused',
    async (version) => {
      const sim = await startTwoKeySim();
      const wrongToken = await outcome(
        sims
          .client(sim, { signatureVersion: version, credentials: { ...keyB, securityToken: 'CAIS+forged' } })
          .call('ListIpsecServers', { RegionId: REGION }),
      );
      expect(wrongToken.ok).toBe(false);
      expect(wrongToken.status).toBeGreaterThanOrEqual(400);
      expect(wrongToken.status).toBeLessThan(500);
      const tokenOnPlainKey = await outcome(
        sims
          .client(sim, {
            signatureVersion: version,
            credentials: { ...keyA, securityToken: 'CAIS+bravo/sts==' },
          })
          .call('ListIpsecServers', { RegionId: REGION }),
      );
      expect(tokenOnPlainKey.ok).toBe(false);
      expect(tokenOnPlainKey.status).toBeGreaterThanOrEqual(400);
      expect(tokenOnPlainKey.status).toBeLessThan(500);
    },
  );
});

describe('STS tokens', () => {
  it.each(['v3', 'v1'] as const)(
    '%s: a key issued with an STS token is refused without it: 400 MissingSecurityToken',
    async (version) => {
      const sim = await startTwoKeySim();
      const server = pick(
        sim,
        `owned by ${keyB.accessKeyId}`,
        (s) => s.ownerAccessKeyId === keyB.accessKeyId,
      );
      const params = {
        RegionId: server.regionId,
        IpsecServerId: server.ipsecServerId,
        IpsecServerName: 'no-token',
      };
      const send = version === 'v3' ? sendV3 : sendV1;
      for (const [action, sentParams] of [
        ['ListIpsecServers', { RegionId: server.regionId }],
        ['UpdateIpsecServer', params],
      ] as const) {
        const response = await send(sim.endpoint, keyB, action, sentParams);
        expect(response.status, action).toBe(400);
        expect(response.json, action).toMatchObject({
          Code: 'MissingSecurityToken',
          Message: 'SecurityToken is mandatory for this action.',
        });
      }
      expect(sim.server(server.ipsecServerId)?.history).toEqual([]);
      expect(sim.stats().applies).toBe(0);
      // The very same call with the token passes.
      const withToken = { ...keyB, securityToken: 'CAIS+bravo/sts==' };
      const client = sims.client(sim, { signatureVersion: version, credentials: withToken });
      expect(await labelOf(client.call('UpdateIpsecServer', params))).toBe('OK');
    },
  );
});

describe('signature errors', () => {
  it.each(['v3', 'v1'] as const)(
    '%s: an unknown AccessKeyId is 404 InvalidAccessKeyId.NotFound',
    async (version) => {
      const sim = await startTwoKeySim();
      const client = sims.client(sim, {
        signatureVersion: version,
        credentials: { accessKeyId: 'LTAI5tNobodyKnowsMe', accessKeySecret: keyA.accessKeySecret },
      });
      const result = await outcome(client.call('ListIpsecServers', { RegionId: REGION }));
      expect(result).toMatchObject({ ok: false, status: 404, code: 'InvalidAccessKeyId.NotFound' });
    },
  );

  it.each(['v3', 'v1'] as const)('%s: a wrong secret is 400 SignatureDoesNotMatch', async (version) => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim, {
      signatureVersion: version,
      credentials: { accessKeyId: keyA.accessKeyId, accessKeySecret: keyB.accessKeySecret },
    });
    const result = await outcome(client.call('ListIpsecServers', { RegionId: REGION }));
    expect(result).toMatchObject({ ok: false, status: 400, code: 'SignatureDoesNotMatch' });
  });

  it('V3: a parameter changed after signing is SignatureDoesNotMatch, and nothing is applied', async () => {
    const sim = await startTwoKeySim();
    const server = ownServer(sim);
    const signed = { RegionId: REGION, IpsecServerId: server.ipsecServerId, IpsecServerName: 'signed-name' };
    const response = await sendV3(sim.endpoint, keyA, 'UpdateIpsecServer', signed, {
      sendQuery: { ...signed, IpsecServerName: 'altered-name' },
    });
    expect(response.status).toBe(400);
    expect(response.json.Code).toBe('SignatureDoesNotMatch');
    expect(sim.server(server.ipsecServerId)?.history).toHaveLength(0);
    expect(sim.stats().applies).toBe(0);
  });

  it.each(['GET', 'POST'] as const)(
    'V1 %s: a parameter changed after signing is SignatureDoesNotMatch',
    async (method) => {
      const sim = await startTwoKeySim();
      const server = ownServer(sim);
      const response = await sendV1(
        sim.endpoint,
        keyA,
        'UpdateIpsecServer',
        { RegionId: REGION, IpsecServerId: server.ipsecServerId, IpsecServerName: 'signed-name' },
        { method, sendParams: (all) => ({ ...all, IpsecServerName: 'altered-name' }) },
      );
      expect(response.status).toBe(400);
      expect(response.json.Code).toBe('SignatureDoesNotMatch');
      expect(sim.server(server.ipsecServerId)?.history).toHaveLength(0);
    },
  );

  it.each(['GET', 'POST'] as const)(
    'V1: a request signed for %s but sent with the other method is SignatureDoesNotMatch',
    async (signMethod) => {
      const sim = await startTwoKeySim();
      const method = signMethod === 'GET' ? 'POST' : 'GET';
      const response = await sendV1(sim.endpoint, keyA, 'DescribeRegions', {}, { method, signMethod });
      expect(response.status).toBe(400);
      expect(response.json.Code).toBe('SignatureDoesNotMatch');
      // Signed for the method it is sent with, the same request passes.
      expect((await sendV1(sim.endpoint, keyA, 'DescribeRegions', {}, { method })).status).toBe(200);
    },
  );

  it.each(['v3', 'v1'] as const)(
    '%s: a nonce used again is 400 SignatureNonceUsed, and the replay applies nothing',
    async (version) => {
      const sim = await startTwoKeySim();
      const server = ownServer(sim);
      const fixedNonce = `nonce-${version}-1`;
      const client = sims.client(sim, { signatureVersion: version, nonce: () => fixedNonce });
      const params = {
        RegionId: REGION,
        IpsecServerId: server.ipsecServerId,
        IpsecServerName: 'applied-once',
      };
      expect(await labelOf(client.call('UpdateIpsecServer', params))).toBe('OK');
      const replay = await outcome(client.call('UpdateIpsecServer', params));
      expect(replay).toMatchObject({ ok: false, status: 400, code: 'SignatureNonceUsed' });
      expect(sim.server(server.ipsecServerId)?.history).toHaveLength(1);
      expect(sim.stats().applies).toBe(1);
      // A fresh nonce is fine again.
      const fresh = sims.client(sim, { signatureVersion: version });
      expect(await labelOf(fresh.call('ListIpsecServers', { RegionId: REGION }))).toBe('OK');
    },
  );

  it.each([
    ['v3', -16],
    ['v3', 16],
    ['v1', -16],
    ['v1', 16],
  ] as const)('%s: a timestamp %i minutes off is 400 InvalidTimeStamp.Expired', async (version, minutes) => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim, {
      signatureVersion: version,
      clock: () => new Date(Date.now() + minutes * MINUTE),
    });
    const result = await outcome(client.call('ListIpsecServers', { RegionId: REGION }));
    expect(result).toMatchObject({ ok: false, status: 400, code: 'InvalidTimeStamp.Expired' });
  });

  it.each(['v3', 'v1'] as const)(
    '%s: a timestamp 14 minutes off either way is still accepted',
    async (version) => {
      const sim = await startTwoKeySim();
      for (const minutes of [-14, 14]) {
        const client = sims.client(sim, {
          signatureVersion: version,
          clock: () => new Date(Date.now() + minutes * MINUTE),
        });
        expect(await labelOf(client.call('ListIpsecServers', { RegionId: REGION }))).toBe('OK');
      }
    },
  );
});

describe('timestamps', () => {
  const badShapes = [
    ['milliseconds', (at: string) => `${at.slice(0, -1)}.123Z`],
    ['one digit of milliseconds', (at: string) => `${at.slice(0, -1)}.5Z`],
    ['no zone', (at: string) => at.slice(0, -1)],
  ] as const;

  it.each(badShapes)('V3: an x-acs-date with %s is 400 InvalidTimeStamp.Format', async (_shape, write) => {
    const sim = await startTwoKeySim();
    const at = formatAcsTimestamp(new Date());
    const refused = await sendCraftedV3(
      sim,
      keyA,
      'ListIpsecServers',
      { RegionId: REGION },
      {
        headers: { 'x-acs-date': write(at) },
      },
    );
    expect(refused.status).toBe(400);
    expect(refused.json.Code).toBe('InvalidTimeStamp.Format');
    const accepted = await sendCraftedV3(
      sim,
      keyA,
      'ListIpsecServers',
      { RegionId: REGION },
      {
        headers: { 'x-acs-date': at },
      },
    );
    expect(accepted.status).toBe(200);
  });

  it.each(badShapes)('V1: a Timestamp with %s is 400 InvalidTimeStamp.Format', async (_shape, write) => {
    const sim = await startTwoKeySim();
    const at = formatAcsTimestamp(new Date());
    const refused = await sendV1WithTimestamp(sim, keyA, write(at));
    expect(refused.status).toBe(400);
    expect(refused.json.Code).toBe('InvalidTimeStamp.Format');
    expect((await sendV1WithTimestamp(sim, keyA, at)).status).toBe(200);
  });
});

describe('V3: what the signature must cover', () => {
  const list = { RegionId: REGION };

  it('a signature that leaves host out of SignedHeaders is 400 IncompleteSignature', async () => {
    const sim = await startTwoKeySim();
    const response = await sendCraftedV3(sim, keyA, 'ListIpsecServers', list, { unsigned: ['host'] });
    expect(response.status).toBe(400);
    expect(response.json.Code).toBe('IncompleteSignature');
    expect(response.json.Message).toContain('host');
  });

  it('a content-type sent but not signed is 400 IncompleteSignature; signed, it passes', async () => {
    const sim = await startTwoKeySim();
    const body = 'not-a-form';
    const headers = { 'content-type': 'text/plain' };
    const unsigned = await sendCraftedV3(sim, keyA, 'ListIpsecServers', list, {
      headers,
      body,
      unsigned: ['content-type'],
    });
    expect(unsigned.status).toBe(400);
    expect(unsigned.json.Code).toBe('IncompleteSignature');
    expect(unsigned.json.Message).toContain('content-type');
    const signed = await sendCraftedV3(sim, keyA, 'ListIpsecServers', list, { headers, body });
    expect(signed.status).toBe(200);
  });

  it('a request without x-acs-content-sha256 is 400 IncompleteSignature, and applies nothing', async () => {
    const sim = await startTwoKeySim();
    const server = ownServer(sim);
    const response = await sendCraftedV3(
      sim,
      keyA,
      'UpdateIpsecServer',
      { RegionId: REGION, IpsecServerId: server.ipsecServerId, IpsecServerName: 'no-payload-hash' },
      { headers: { 'x-acs-content-sha256': undefined } },
    );
    expect(response.status).toBe(400);
    expect(response.json.Code).toBe('IncompleteSignature');
    expect(response.json.Message).toContain('x-acs-content-sha256');
    expect(sim.server(server.ipsecServerId)?.history).toEqual([]);
  });

  it('an x-acs-content-sha256 that is not the hash of the body is 400 SignatureDoesNotMatch', async () => {
    const sim = await startTwoKeySim();
    const body = 'the body that was sent';
    const lie = sha256Hex('another body');
    const headers = { 'content-type': 'text/plain', 'x-acs-content-sha256': lie };
    // Signed over the body's real hash, so only the header lies.
    const lyingHeader = await sendCraftedV3(sim, keyA, 'ListIpsecServers', list, { headers, body });
    expect(lyingHeader.status).toBe(400);
    expect(lyingHeader.json.Code).toBe('SignatureDoesNotMatch');
    // Signed over the header's hash: the canonical request the server builds from the body differs.
    const signedOverLie = await sendCraftedV3(sim, keyA, 'ListIpsecServers', list, {
      headers,
      body,
      hashedPayload: lie,
    });
    expect(signedOverLie.status).toBe(400);
    expect(signedOverLie.json.Code).toBe('SignatureDoesNotMatch');
    // No body: the header must be the empty body's hash.
    const noBody = await sendCraftedV3(sim, keyA, 'ListIpsecServers', list, {
      headers: { 'x-acs-content-sha256': lie },
      hashedPayload: sha256Hex(''),
    });
    expect(noBody.status).toBe(400);
    expect(noBody.json.Code).toBe('SignatureDoesNotMatch');
    // The same request with the true hash passes.
    const honest = await sendCraftedV3(sim, keyA, 'ListIpsecServers', list, {
      headers: { 'content-type': 'text/plain' },
      body,
    });
    expect(honest.status).toBe(200);
  });
});

describe('responses', () => {
  it('an error is JSON { RequestId, HostId, Code, Message, Recommend }', async () => {
    const sim = await startTwoKeySim();
    const response = await sendV3(sim.endpoint, keyA, 'DeleteVpc', { RegionId: REGION });
    expect(response.status).toBe(404);
    expect(response.headers['content-type']).toMatch(/application\/json/);
    expect(Object.keys(response.json).sort()).toEqual([
      'Code',
      'HostId',
      'Message',
      'Recommend',
      'RequestId',
    ]);
    expect(response.json.Code).toBe('InvalidAction.NotFound');
    for (const field of ['RequestId', 'HostId', 'Message', 'Recommend']) {
      expect(typeof response.json[field], field).toBe('string');
      expect(response.json[field], field).not.toBe('');
    }
  });

  it.each(['v3', 'v1'] as const)('%s: an unknown action is 404 InvalidAction.NotFound', async (version) => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim, { signatureVersion: version });
    for (const action of ['CreateVpnGateway', 'DeleteIpsecServer', 'CreateIpsecServer']) {
      const result = await outcome(client.call(action, { RegionId: REGION }));
      expect(result, action).toMatchObject({ ok: false, status: 404, code: 'InvalidAction.NotFound' });
    }
  });

  it('a missing required parameter is 400 MissingParameter naming it', async () => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim);
    const server = ownServer(sim);
    const noId = await outcome(
      client.call('UpdateIpsecServer', { RegionId: REGION, IpsecServerName: 'abc' }),
    );
    expect(noId).toMatchObject({ ok: false, status: 400, code: 'MissingParameter' });
    expect(noId.ok ? '' : noId.message).toContain('IpsecServerId');
    const noRegion = await outcome(
      client.call('UpdateIpsecServer', { IpsecServerId: server.ipsecServerId, IpsecServerName: 'abc' }),
    );
    expect(noRegion).toMatchObject({ ok: false, status: 400, code: 'MissingParameter' });
    expect(noRegion.ok ? '' : noRegion.message).toContain('RegionId');
    const listNoRegion = await outcome(client.call('ListIpsecServers', {}));
    expect(listNoRegion).toMatchObject({ ok: false, status: 400, code: 'MissingParameter' });
    expect(listNoRegion.ok ? '' : listNoRegion.message).toContain('RegionId');
    expect(sim.stats().applies).toBe(0);
  });

  it('every response has its own RequestId, errors included', async () => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim);
    const server = ownServer(sim);
    const ids: string[] = [];
    for (let index = 0; index < 8; index++) {
      const results = [
        await outcome(client.call('ListIpsecServers', { RegionId: REGION })),
        await outcome(client.call('DescribeRegions', {})),
        await outcome(
          client.call('UpdateIpsecServer', {
            RegionId: REGION,
            IpsecServerId: server.ipsecServerId,
            IpsecServerName: `name-${index}`,
            DryRun: true,
          }),
        ),
        await outcome(client.call('NoSuchAction', {})),
      ];
      expect(results.map(label)).toEqual(['OK', 'OK', 'DryRunOperation', 'InvalidAction.NotFound']);
      for (const result of results) {
        expect(result.requestId).toEqual(expect.any(String));
        ids.push(result.requestId as string);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each(['GET', 'POST'] as const)(
    'V1 %s with Format=XML gets XML, successes and errors alike',
    async (method) => {
      const sim = await startTwoKeySim();
      const server = ownServer(sim);

      const list = await sendV1(
        sim.endpoint,
        keyA,
        'ListIpsecServers',
        { RegionId: REGION },
        { method, format: 'XML' },
      );
      expect(list.status).toBe(200);
      expect(list.headers['content-type']).toMatch(/xml/);
      expect(list.parsed).toBeUndefined();
      expect(list.text).toMatch(/<ListIpsecServersResponse>[\s\S]*<\/ListIpsecServersResponse>\s*$/);
      expect(list.text).toMatch(/<RequestId>[^<]+<\/RequestId>/);
      expect(list.text).toContain(`<IpsecServerId>${server.ipsecServerId}</IpsecServerId>`);

      const regions = await sendV1(sim.endpoint, keyA, 'DescribeRegions', {}, { method, format: 'XML' });
      expect(regions.status).toBe(200);
      expect(regions.text).toContain('<RegionId>cn-hangzhou</RegionId>');

      const apply = await sendV1(
        sim.endpoint,
        keyA,
        'UpdateIpsecServer',
        { RegionId: REGION, IpsecServerId: server.ipsecServerId, IpsecServerName: 'xml-apply' },
        { method, format: 'XML' },
      );
      expect(apply.status).toBe(200);
      expect(apply.text).toMatch(
        /<UpdateIpsecServerResponse>\s*<RequestId>[^<]+<\/RequestId>\s*<\/UpdateIpsecServerResponse>/,
      );
      const [entry] = sim.server(server.ipsecServerId)?.history ?? [];
      expect(apply.text).toContain(`<RequestId>${entry?.requestId}</RequestId>`);

      const dryRun = await sendV1(
        sim.endpoint,
        keyA,
        'UpdateIpsecServer',
        { RegionId: REGION, IpsecServerId: server.ipsecServerId, IpsecServerName: 'xml-dry', DryRun: 'true' },
        { method, format: 'XML' },
      );
      expect(dryRun.status).toBe(400);
      expect(dryRun.headers['content-type']).toMatch(/xml/);
      expect(dryRun.text).toContain('<Code>DryRunOperation</Code>');
      expect(dryRun.text).toMatch(/<RequestId>[^<]+<\/RequestId>/);
      expect(dryRun.text).toMatch(/<HostId>[^<]+<\/HostId>/);

      // The same request without Format=XML is JSON.
      const json = await sendV1(sim.endpoint, keyA, 'ListIpsecServers', { RegionId: REGION }, { method });
      expect(json.headers['content-type']).toMatch(/json/);
      expect(typeof json.json.RequestId).toBe('string');
    },
  );

  it('V1 without a Format parameter gets XML, the documented default', async () => {
    const sim = await startTwoKeySim();
    const all: Record<string, string> = {
      RegionId: REGION,
      ...buildV1CommonParams({
        action: 'ListIpsecServers',
        version: API_VERSION,
        credentials: keyA,
        now: new Date(),
        nonce: randomUUID(),
      }),
    };
    delete all.Format;
    const signature = signV1(all, 'GET', keyA.accessKeySecret);
    const response = await request(
      `${sim.endpoint}/?${canonicalQueryString(all)}&Signature=${percentEncode(signature)}`,
      { headersTimeout: 5_000, bodyTimeout: 5_000 },
    );
    const text = await response.body.text();
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toBe('text/xml;charset=utf-8');
    expect(text).toMatch(/<ListIpsecServersResponse>[\s\S]*<\/ListIpsecServersResponse>$/);
  });
});

describe('admin routes (unsigned)', () => {
  it('GET /_sim/stats is stats(), counting by action and by code with successes under OK', async () => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim);
    const server = ownServer(sim);
    const update = { RegionId: REGION, IpsecServerId: server.ipsecServerId, IpsecServerName: 'stats-name' };
    expect(await labelOf(client.call('ListIpsecServers', { RegionId: REGION }))).toBe('OK');
    expect(await labelOf(client.call('ListIpsecServers', { RegionId: 'cn-hangzhou' }))).toBe('OK');
    expect(await labelOf(client.call('UpdateIpsecServer', { ...update, DryRun: true }))).toBe(
      'DryRunOperation',
    );
    expect(await labelOf(client.call('UpdateIpsecServer', update))).toBe('OK');
    expect(await labelOf(client.call('DescribeRegions', {}))).toBe('OK');

    const stats = sim.stats();
    expect(stats).toMatchObject({
      requests: 5,
      applies: 1,
      dryRuns: 1,
      idempotentReplays: 0,
      concurrentUpdateViolations: 0,
    });
    expect(stats.byAction).toMatchObject({ ListIpsecServers: 2, UpdateIpsecServer: 2, DescribeRegions: 1 });
    expect(stats.byCode).toMatchObject({ OK: 4, DryRunOperation: 1 });
    const response = await adminGet(sim, '/_sim/stats');
    expect(response.status).toBe(200);
    expect(response.parsed).toEqual(JSON.parse(JSON.stringify(sim.stats())));
    expect(sim.stats().requests).toBe(5);
  });

  it('GET /_sim/servers and /_sim/servers/:id show the servers, Psk only as a fingerprint', async () => {
    const sim = await startTwoKeySim();
    const server = ownServer(sim);
    const psk = 'Sup3r-Secret-Psk!';
    const applied = await outcome(
      sims.client(sim).call('UpdateIpsecServer', {
        RegionId: REGION,
        IpsecServerId: server.ipsecServerId,
        Psk: psk,
        PskEnabled: true,
        ClientToken: 'admin-view-1',
      }),
    );
    expect(label(applied)).toBe('OK');

    const view = sim.server(server.ipsecServerId);
    expect(view).toMatchObject({
      ipsecServerId: server.ipsecServerId,
      regionId: REGION,
      vpnGatewayId: server.vpnGatewayId,
      ownerAccessKeyId: keyA.accessKeyId,
    });
    expect(view?.config.Psk).toBe(simPskLabel(psk));
    expect(view?.history).toHaveLength(1);
    expect(view?.history[0]).toMatchObject({
      clientToken: 'admin-view-1',
      requestId: applied.requestId,
      params: { Psk: simPskLabel(psk) },
    });

    const one = await adminGet(sim, `/_sim/servers/${server.ipsecServerId}`);
    expect(one.status).toBe(200);
    expect(one.parsed).toEqual(JSON.parse(JSON.stringify(view)));
    expect(one.text).not.toContain(psk);

    const all = await adminGet(sim, '/_sim/servers');
    expect(all.status).toBe(200);
    expect(all.text).not.toContain(psk);
    expect(all.text).toContain(server.ipsecServerId);
    for (const known of sim.servers) expect(all.text).toContain(known.ipsecServerId);

    expect((await adminGet(sim, '/_sim/servers/iss-does-not-exist')).status).toBe(404);
    expect(sim.server('iss-does-not-exist')).toBeUndefined();
  });

  it('POST /_sim/faults changes faults at run time and names a bad field with 400', async () => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim);
    const bad = await adminPost(sim, '/_sim/faults', { failRate: 2 });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('failRate');
    const unknown = await adminPost(sim, '/_sim/faults', { explodeRate: 0.5 });
    expect(unknown.status).toBe(400);
    expect(unknown.text).toContain('explodeRate');
    // Neither bad patch changed anything.
    expect(await labelOf(client.call('DescribeRegions', {}))).toBe('OK');

    const good = await adminPost(sim, '/_sim/faults', { failRate: 1 });
    expect(good.status).toBe(200);
    const failed = await outcome(client.call('DescribeRegions', {}));
    expect(['InternalError', 'ServiceUnavailable']).toContain(label(failed));
    expect((await adminPost(sim, '/_sim/faults', { failRate: 0 })).status).toBe(200);
    expect(await labelOf(client.call('DescribeRegions', {}))).toBe('OK');
  });

  it('POST /_sim/reset restores the servers and forgets history and tokens', async () => {
    const sim = await startTwoKeySim();
    const client = sims.client(sim);
    const server = ownServer(sim);
    const before = sim.server(server.ipsecServerId)?.config;
    const update = {
      RegionId: REGION,
      IpsecServerId: server.ipsecServerId,
      IpsecServerName: 'before-reset',
      ClientToken: 'reset-token',
    };
    const first = await outcome(client.call('UpdateIpsecServer', update));
    expect(label(first)).toBe('OK');
    expect(sim.server(server.ipsecServerId)?.config.IpsecServerName).toBe('before-reset');

    const response = await adminPost(sim, '/_sim/reset');
    expect(response.status).toBe(200);
    expect(sim.server(server.ipsecServerId)?.config).toEqual(before);
    expect(sim.server(server.ipsecServerId)?.history).toEqual([]);
    expect(sim.stats()).toMatchObject({ requests: 0, applies: 0 });

    // The token was forgotten with the history: the same call applies again, with a new RequestId.
    const again = await outcome(client.call('UpdateIpsecServer', update));
    expect(label(again)).toBe('OK');
    expect(again.requestId).not.toBe(first.requestId);
    expect(sim.server(server.ipsecServerId)?.history).toHaveLength(1);
  });

  it('reset() does the same as POST /_sim/reset', async () => {
    const sim = await startTwoKeySim();
    const server = ownServer(sim);
    const before = sim.server(server.ipsecServerId)?.config;
    await outcome(
      sims.client(sim).call('UpdateIpsecServer', {
        RegionId: REGION,
        IpsecServerId: server.ipsecServerId,
        LocalSubnet: '172.31.0.0/16',
      }),
    );
    expect(sim.server(server.ipsecServerId)?.config.LocalSubnet).toBe('172.31.0.0/16');
    await sim.reset();
    expect(sim.server(server.ipsecServerId)?.config).toEqual(before);
    expect(sim.server(server.ipsecServerId)?.history).toEqual([]);
  });
});

describe('closing', () => {
  it('close() drops the connections clients hold open, so it does not wait for them', async () => {
    // Not through useSimulators: this test closes the simulator itself.
    const sim = await startSimulator({ port: 0, servers: 2 });
    // A client whose deadline is no factor: only the simulator can end its call.
    const client = new AliyunClient({
      credentials: credentialsOf(sim),
      endpoint: sim.endpoint,
      timeoutMs: 600_000,
    });
    // A raw connection answered once and kept alive, idle.
    const socket = connect(Number(new URL(sim.endpoint).port), '127.0.0.1');
    socket.on('error', () => undefined);
    const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      expect(await labelOf(client.call('DescribeRegions', {}))).toBe('OK');
      let answer = '';
      const answered = new Promise<void>((resolve) =>
        socket.on('data', (chunk: Buffer) => {
          answer += chunk.toString();
          if (answer.includes('\r\n\r\n')) resolve();
        }),
      );
      socket.write('GET /_sim/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
      await answered;
      expect(answer).toMatch(/^HTTP\/1\.1 200 /);
      expect(answer.toLowerCase()).not.toContain('connection: close');
      // And a call in flight that the simulator holds for a minute: a connection that is not idle,
      // which the HTTP server alone would wait for.
      sim.setFaults({ latencyMs: 60_000 });
      const inFlight = client.call('DescribeRegions', {}).catch((error: unknown) => error);
      await waitUntil(() => (sim.stats().byAction.DescribeRegions === 2 ? true : undefined));

      // close() ends (the test's timeout is the hang guard) by dropping both connections.
      await sim.close();
      const dropped = await inFlight;
      expect(dropped).toBeInstanceOf(AliyunTransportError);
      expect((dropped as AliyunTransportError).code).not.toBe('TRANSPORT_TIMEOUT');
      await socketClosed;
      const after = await client.call('DescribeRegions', {}).catch((error: unknown) => error);
      expect(after).toBeInstanceOf(AliyunTransportError);
    } finally {
      socket.destroy();
      await client.close();
    }
  });
});
