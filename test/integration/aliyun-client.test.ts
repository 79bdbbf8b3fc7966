import { getEventListeners } from 'node:events';
import { createRequire } from 'node:module';
import { Config as OpenApiConfig } from '@alicloud/openapi-client';
import RPCClient from '@alicloud/pop-core';
import type VpcSdkModule from '@alicloud/vpc20160428';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { AliyunClient, type AliyunClientOptions } from '../../src/aliyun/client.js';
import { AliyunApiError, AliyunTransportError, ParamEncodingError } from '../../src/aliyun/errors.js';
import {
  buildV1CommonParams,
  EMPTY_BODY_SHA256,
  parseAuthorizationV3,
  signV1,
  signV3Request,
  verifyV1Signature,
  verifyV3Request,
} from '../../src/aliyun/signer.js';
import type { Credentials } from '../../src/aliyun/types.js';
import {
  answerRequestId,
  decodeQuery,
  type RecordedRequest,
  sendJson,
  startHttpServer,
  type TestHttpServer,
  unusedPort,
} from '../support/http-server.js';
import { credentialsOf, type Sim, type SimServer, useSimulators } from '../support/sim-harness.js';

// The SDK is CommonJS with `exports.default = Client`; require() gives the same object under
// Node and vitest, whose default-import interop otherwise disagrees with TypeScript's.
const vpcSdk = createRequire(import.meta.url)('@alicloud/vpc20160428') as typeof VpcSdkModule;
const { default: VpcClient, UpdateIpsecServerRequest } = vpcSdk;

const credentials: Credentials = {
  accessKeyId: 'LTAI5tTestKeyId',
  accessKeySecret: 'TestSecret/with+chars=',
};
const stsCredentials: Credentials = { ...credentials, securityToken: 'CAIS+sts/token==' };

/** Values chosen to hit every encoding corner: CJK, RFC 3986 reserved marks, `~`, spaces, JSON. */
const awkwardParams = {
  RegionId: 'cn-shanghai',
  IpsecServerId: 'iss-bp1abc',
  IpsecServerName: "测试服务器 *'(~)!",
  LocalSubnet: '192.168.0.0/24,172.16.0.0/16',
  ClientIpPool: '10.10.0.0/16',
  IkeConfig: '{"IkeVersion":"ikev2","LocalId":"left id (a*b)","RemoteId":"右 ~x"}',
  Psk: "p'a*s(s)~ w!+/=",
  ClientToken: 'token-~1 2',
};

function recordedHeader(request: RecordedRequest, name: string): string {
  const value = request.headers[name];
  if (typeof value !== 'string') throw new Error(`test: header ${name} missing`);
  return value;
}

/** Recomputes the Authorization of a recorded V3 request with our signer and our verifier. */
function checkV3WithOurSigner(request: RecordedRequest, secretOf: Credentials) {
  const authorization = recordedHeader(request, 'authorization');
  const { authorization: _sent, ...headers } = request.headers;
  const signedByUs = signV3Request({
    method: request.method,
    pathname: request.pathname,
    query: request.query,
    headers: headers as Record<string, string>,
    body: request.body,
    credentials: secretOf,
  });
  const parsed = parseAuthorizationV3(authorization);
  if (!parsed) throw new Error(`test: unparsable authorization ${authorization}`);
  const verification = verifyV3Request({
    method: request.method,
    pathname: request.pathname,
    query: request.query,
    headers: request.headers,
    body: request.body,
    authorization: parsed,
    accessKeySecret: secretOf.accessKeySecret,
  });
  return { ours: signedByUs.authorization, theirs: authorization, verification, parsed };
}

function v1ParamsOf(request: RecordedRequest): Record<string, string> {
  return request.method === 'GET' ? request.query : decodeQuery(new URLSearchParams(request.body));
}

async function captureError(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('test: expected a rejection');
}

let server: TestHttpServer;
const clients: AliyunClient[] = [];

function makeClient(options: Partial<AliyunClientOptions> = {}): AliyunClient {
  const client = new AliyunClient({ credentials, endpoint: server.origin, ...options });
  clients.push(client);
  return client;
}

beforeAll(async () => {
  server = await startHttpServer();
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.requests.length = 0;
  server.setHandler(answerRequestId);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
});

function officialVpcClient(withToken: boolean) {
  return new VpcClient(
    new OpenApiConfig({
      accessKeyId: credentials.accessKeyId,
      accessKeySecret: credentials.accessKeySecret,
      securityToken: withToken ? stsCredentials.securityToken : undefined,
      endpoint: `127.0.0.1:${server.port}`,
      protocol: 'http',
      regionId: 'cn-shanghai',
    }) as never,
  );
}

/** What the official V3 SDK makes of the test server's answer to an UpdateIpsecServer. */
function officialUpdateError(): Promise<unknown> {
  return captureError(
    officialVpcClient(false).updateIpsecServer(
      new UpdateIpsecServerRequest({ regionId: 'cn-shanghai', ipsecServerId: 'iss-1' }),
    ),
  );
}

describe('oracle: the official SDKs sign exactly as we do', () => {
  it.each([
    ['an AccessKey', false],
    ['an STS token', true],
  ])('V3: @alicloud/vpc20160428 updateIpsecServer with %s', async (_label, withToken) => {
    const official = officialVpcClient(withToken);
    await official.updateIpsecServer(
      new UpdateIpsecServerRequest({
        regionId: awkwardParams.RegionId,
        ipsecServerId: awkwardParams.IpsecServerId,
        ipsecServerName: awkwardParams.IpsecServerName,
        localSubnet: awkwardParams.LocalSubnet,
        clientIpPool: awkwardParams.ClientIpPool,
        ikeConfig: awkwardParams.IkeConfig,
        psk: awkwardParams.Psk,
        clientToken: awkwardParams.ClientToken,
        dryRun: true,
        effectImmediately: false,
        pskEnabled: true,
      }),
    );
    expect(server.requests).toHaveLength(1);
    const request = server.requests[0] as RecordedRequest;
    // The values reached the server intact, so the signature covered the awkward characters.
    expect(request.query).toEqual({
      ...awkwardParams,
      DryRun: 'true',
      EffectImmediately: 'false',
      PskEnabled: 'true',
    });
    expect(request.method).toBe('POST');
    expect(request.body).toBe('');

    const { ours, theirs, verification, parsed } = checkV3WithOurSigner(
      request,
      withToken ? stsCredentials : credentials,
    );
    expect(ours).toBe(theirs);
    expect(verification.valid).toBe(true);
    expect(verification.unsignedHeaders).toEqual([]);
    if (withToken) expect(parsed.signedHeaders).toContain('x-acs-security-token');
  });

  it.each([
    ['GET', false],
    ['POST', false],
    ['GET', true],
    ['POST', true],
  ] as const)('V1: @alicloud/pop-core %s (STS token: %s)', async (method, withToken) => {
    const official = new RPCClient({
      accessKeyId: credentials.accessKeyId,
      accessKeySecret: credentials.accessKeySecret,
      securityToken: withToken ? stsCredentials.securityToken : undefined,
      endpoint: server.origin,
      apiVersion: '2016-04-28',
    } as RPCClient.Config);
    await official.request('UpdateIpsecServer', { ...awkwardParams, DryRun: 'true' }, { method });
    const request = server.requests[0] as RecordedRequest;
    expect(request.method).toBe(method);
    const received = v1ParamsOf(request);
    const { Signature: theirs, ...signedParams } = received;

    // Our common parameters, given their nonce and timestamp, are the ones they sent.
    const common = buildV1CommonParams({
      action: 'UpdateIpsecServer',
      version: '2016-04-28',
      credentials: withToken ? stsCredentials : credentials,
      now: new Date(received.Timestamp as string),
      nonce: received.SignatureNonce as string,
    });
    expect(signedParams).toEqual({ ...awkwardParams, DryRun: 'true', ...common });

    expect(signV1(signedParams, method, credentials.accessKeySecret)).toBe(theirs);
    expect(verifyV1Signature(received, method, credentials.accessKeySecret)).toBe(true);
  });
});

describe('AliyunClient requests', () => {
  const fixedNow = new Date(Date.UTC(2026, 10, 28, 19, 46, 29, 345));
  const fixedClock = { clock: () => fixedNow, nonce: () => 'fixed-nonce-1' };

  it('sends V3 as the official SDK does, and a verifier accepts it', async () => {
    const client = makeClient(fixedClock);
    const body = await client.call('UpdateIpsecServer', {
      ...awkwardParams,
      DryRun: true,
      EffectImmediately: false,
      PskEnabled: undefined,
      MaxConnections: 5,
    });
    expect(body).toEqual({ RequestId: 'req-ok' });

    const request = server.requests[0] as RecordedRequest;
    expect(request.method).toBe('POST');
    expect(request.pathname).toBe('/');
    expect(request.body).toBe('');
    expect(request.query).toEqual({
      ...awkwardParams,
      DryRun: 'true',
      EffectImmediately: 'false',
      MaxConnections: '5',
    });
    expect(request.headers).toMatchObject({
      host: `127.0.0.1:${server.port}`,
      'x-acs-action': 'UpdateIpsecServer',
      'x-acs-version': '2016-04-28',
      'x-acs-date': '2026-11-28T19:46:29Z',
      'x-acs-signature-nonce': 'fixed-nonce-1',
      'x-acs-content-sha256': EMPTY_BODY_SHA256,
      accept: 'application/json',
    });
    expect(request.headers['content-type']).toBeUndefined();
    const { verification, parsed } = checkV3WithOurSigner(request, credentials);
    expect(verification.valid).toBe(true);
    expect(parsed.accessKeyId).toBe(credentials.accessKeyId);
    expect(parsed.signedHeaders).toEqual([
      'host',
      'x-acs-action',
      'x-acs-content-sha256',
      'x-acs-date',
      'x-acs-signature-nonce',
      'x-acs-version',
    ]);
    // The wire query is the canonical one: `*'()!` go out encoded, which the SDK leaves literal.
    expect(request.url).toContain(
      'IpsecServerName=%E6%B5%8B%E8%AF%95%E6%9C%8D%E5%8A%A1%E5%99%A8%20%2A%27%28~%29%21',
    );
  });

  it('V3 with an STS token signs the token header, and the verifier rejects a wrong secret', async () => {
    const client = makeClient({ credentials: stsCredentials });
    await client.call('ListIpsecServers', { RegionId: 'cn-shanghai' });
    const request = server.requests[0] as RecordedRequest;
    expect(request.headers['x-acs-security-token']).toBe(stsCredentials.securityToken);
    const { verification, parsed } = checkV3WithOurSigner(request, stsCredentials);
    expect(verification.valid).toBe(true);
    expect(parsed.signedHeaders).toContain('x-acs-security-token');
    const forged = checkV3WithOurSigner(request, { ...stsCredentials, accessKeySecret: 'not-the-secret' });
    expect(forged.verification.valid).toBe(false);
  });

  it.each(['GET', 'POST'] as const)('sends V1 %s, and a verifier accepts it', async (v1Method) => {
    const client = makeClient({
      ...fixedClock,
      signatureVersion: 'v1',
      v1Method,
      credentials: stsCredentials,
    });
    await client.call('UpdateIpsecServer', { ...awkwardParams, DryRun: true, Psk: undefined });
    const request = server.requests[0] as RecordedRequest;
    expect(request.method).toBe(v1Method);
    if (v1Method === 'POST') {
      expect(request.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(request.url).toBe('/');
    } else {
      expect(request.body).toBe('');
    }
    const received = v1ParamsOf(request);
    const { Psk: _omitted, ...expectedBusiness } = awkwardParams;
    expect(received).toMatchObject({
      ...expectedBusiness,
      DryRun: 'true',
      Action: 'UpdateIpsecServer',
      Format: 'JSON',
      Version: '2016-04-28',
      AccessKeyId: credentials.accessKeyId,
      SignatureMethod: 'HMAC-SHA1',
      SignatureVersion: '1.0',
      SignatureNonce: 'fixed-nonce-1',
      Timestamp: '2026-11-28T19:46:29Z',
      SecurityToken: stsCredentials.securityToken,
    });
    expect(received.Psk).toBeUndefined();
    expect(verifyV1Signature(received, v1Method, credentials.accessKeySecret)).toBe(true);
    expect(
      verifyV1Signature(received, v1Method === 'GET' ? 'POST' : 'GET', credentials.accessKeySecret),
    ).toBe(false);
  });

  it('refuses values that cannot be encoded before sending anything', async () => {
    const client = makeClient();
    await expect(client.call('UpdateIpsecServer', { IpsecServerName: 'bad \uD800' })).rejects.toBeInstanceOf(
      ParamEncodingError,
    );
    await expect(client.call('Update\r\nX-Evil: 1', {})).rejects.toBeInstanceOf(ParamEncodingError);
    await expect(client.call('UpdateIpsecServer', { MaxConnections: Number.NaN })).rejects.toBeInstanceOf(
      ParamEncodingError,
    );
    expect(server.requests).toHaveLength(0);
  });
});

describe('AliyunClient responses', () => {
  it('maps a JSON error body to AliyunApiError with every field', async () => {
    server.setHandler((_request, response) =>
      sendJson(response, 400, {
        RequestId: 'req-busy',
        HostId: 'vpc.cn-shanghai.aliyuncs.com',
        Code: 'VpnGateway.Configuring',
        Message: 'The specified service is configuring.',
        Recommend: 'https://api.aliyun.com/troubleshoot?q=VpnGateway.Configuring',
      }),
    );
    const error = await captureError(makeClient().call('UpdateIpsecServer', { RegionId: 'cn-shanghai' }));
    expect(error).toBeInstanceOf(AliyunApiError);
    expect((error as AliyunApiError).toJSON()).toEqual({
      HttpStatus: 400,
      Code: 'VpnGateway.Configuring',
      Message: 'The specified service is configuring.',
      RequestId: 'req-busy',
      HostId: 'vpc.cn-shanghai.aliyuncs.com',
      Recommend: 'https://api.aliyun.com/troubleshoot?q=VpnGateway.Configuring',
    });
  });

  it('reads an XML error body (text/xml) as the official V3 SDK does', async () => {
    // The cloud's XML error document, as the simulator writes it for Format=XML; the official
    // SDK (openapi-core doRequest) reads Error.Code from it when the content type says XML.
    const xml =
      '<?xml version="1.0" encoding="UTF-8"?><Error><RequestId>req-xml</RequestId>' +
      '<HostId>vpc.cn-shanghai.aliyuncs.com</HostId><Code>Throttling.User</Code>' +
      '<Message>Request was denied due to user flow control.</Message>' +
      '<Recommend>https://api.aliyun.com/troubleshoot?q=Throttling.User&amp;product=Vpc</Recommend></Error>';
    server.setHandler((_request, response) => {
      response.writeHead(400, { 'content-type': 'text/xml;charset=utf-8', 'x-acs-request-id': 'req-xml' });
      response.end(xml);
    });
    const theirs = await officialUpdateError();
    expect(theirs).toMatchObject({ code: 'Throttling.User', statusCode: 400, requestId: 'req-xml' });

    const ours = await captureError(makeClient().call('UpdateIpsecServer', { RegionId: 'cn-shanghai' }));
    expect(ours).toBeInstanceOf(AliyunApiError);
    expect((ours as AliyunApiError).toJSON()).toEqual({
      HttpStatus: 400,
      Code: 'Throttling.User',
      Message: 'Request was denied due to user flow control.',
      RequestId: 'req-xml',
      HostId: 'vpc.cn-shanghai.aliyuncs.com',
      Recommend: 'https://api.aliyun.com/troubleshoot?q=Throttling.User&product=Vpc',
    });
  });

  it('passes on the wait a throttled answer asks for, as the official V3 SDK does', async () => {
    server.setHandler((_request, response) => {
      response.writeHead(400, {
        'content-type': 'application/json;charset=utf-8',
        'x-acs-request-id': 'req-throttled',
        'x-acs-retry-after': '750',
      });
      response.end(
        JSON.stringify({
          RequestId: 'req-throttled',
          Code: 'Throttling.User',
          Message: 'Request was denied due to user flow control.',
        }),
      );
    });
    const theirs = await officialUpdateError();
    expect(theirs).toMatchObject({ code: 'Throttling.User', retryAfter: 750 });

    const ours = await captureError(makeClient().call('UpdateIpsecServer', { RegionId: 'cn-shanghai' }));
    expect(ours).toBeInstanceOf(AliyunApiError);
    expect((ours as AliyunApiError).retryAfterMs).toBe(750);
  });

  it("takes HTTP's Retry-After (seconds) from a 429 without a cloud body, and no hint when there is none", async () => {
    let retryAfter: string | undefined = '2';
    server.setHandler((_request, response) => {
      response.writeHead(429, {
        'content-type': 'text/html',
        ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
      });
      response.end('<html><title>Too Many Requests</title></html>');
    });
    const hinted = await captureError(makeClient().call('UpdateIpsecServer', { RegionId: 'cn-shanghai' }));
    expect(hinted).toMatchObject({ code: 'HTTP.429', retryAfterMs: 2_000 });
    // An HTTP date is a form this client does not read: no hint rather than a wrong one.
    retryAfter = 'Wed, 21 Oct 2015 07:28:00 GMT';
    const dated = await captureError(makeClient().call('UpdateIpsecServer', { RegionId: 'cn-shanghai' }));
    expect((dated as AliyunApiError).retryAfterMs).toBeUndefined();
    retryAfter = undefined;
    const bare = await captureError(makeClient().call('UpdateIpsecServer', { RegionId: 'cn-shanghai' }));
    expect((bare as AliyunApiError).retryAfterMs).toBeUndefined();
  });

  it('turns an HTML 502 into AliyunApiError HTTP.502 and keeps the request id header', async () => {
    server.setHandler((_request, response) => {
      response.writeHead(502, { 'content-type': 'text/html', 'x-acs-request-id': 'req-lb' });
      response.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    });
    const error = await captureError(makeClient().call('UpdateIpsecServer', {}));
    expect(error).toBeInstanceOf(AliyunApiError);
    expect(error).toMatchObject({ code: 'HTTP.502', httpStatus: 502, requestId: 'req-lb' });
    expect((error as AliyunApiError).message).toContain('502 Bad Gateway');
  });

  it('turns a JSON error body without Code (or an empty 504) into HTTP.<status>', async () => {
    server.setHandler((_request, response) => sendJson(response, 503, { message: 'upstream down' }));
    await expect(makeClient().call('A', {})).rejects.toMatchObject({ code: 'HTTP.503', httpStatus: 503 });
    server.setHandler((_request, response) => {
      response.writeHead(504);
      response.end();
    });
    await expect(makeClient().call('A', {})).rejects.toMatchObject({ code: 'HTTP.504', httpStatus: 504 });
  });

  it('rejects a 200 whose body is not a JSON object', async () => {
    server.setHandler((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.end('OK');
    });
    await expect(makeClient().call('A', {})).rejects.toMatchObject({
      code: 'HTTP.200.NotJson',
      httpStatus: 200,
    });
  });

  it('reads a body that arrives in many chunks, multi-byte characters split between them', async () => {
    const names = Array.from({ length: 4000 }, (_, index) => `测试服务器-${index}`);
    server.setHandler((_request, response) => {
      const bytes = Buffer.from(JSON.stringify({ RequestId: 'big', Names: names }));
      response.writeHead(200, { 'content-type': 'application/json' });
      // Odd-sized writes cut through the three-byte characters.
      for (let offset = 0; offset < bytes.length; offset += 4093) {
        response.write(bytes.subarray(offset, offset + 4093));
      }
      response.end();
    });
    await expect(makeClient().call('A', {})).resolves.toEqual({ RequestId: 'big', Names: names });
  });

  it('reads a JSON body behind a UTF-8 byte order mark', async () => {
    server.setHandler((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"RequestId":"bom"}')]));
    });
    await expect(makeClient().call('A', {})).resolves.toEqual({ RequestId: 'bom' });
  });

  it('refuses an answer larger than the response cap instead of buffering it', async () => {
    const megabyte = Buffer.alloc(1024 * 1024, 0x20);
    server.setHandler((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      let sent = 0;
      const pump = () => {
        while (sent < 20 && !response.destroyed) {
          sent++;
          if (!response.write(megabyte)) {
            response.once('drain', pump);
            return;
          }
        }
        if (!response.destroyed) response.end();
      };
      pump();
    });
    const error = await captureError(makeClient().call('A', {}));
    expect(error).toBeInstanceOf(AliyunTransportError);
    expect((error as AliyunTransportError).cause).toMatchObject({ code: 'UND_ERR_RES_EXCEEDED_MAX_SIZE' });
  });

  function mixedAnswers() {
    let call = 0;
    server.setHandler((_request, response) => {
      call++;
      if (call % 3 === 1) sendJson(response, 200, { RequestId: `r-${call}` });
      else if (call % 3 === 2) sendJson(response, 400, { Code: 'IllegalParam.LocalSubnet', Message: 'bad' });
      else {
        response.writeHead(502, { 'content-type': 'text/html' });
        response.end(`<html>${'x'.repeat(64 * 1024)}</html>`);
      }
    });
  }

  async function callIgnoringApiErrors(client: AliyunClient, index: number): Promise<void> {
    await client.call('UpdateIpsecServer', { Index: index }).catch((error: unknown) => {
      if (!(error instanceof AliyunApiError)) throw error;
    });
  }

  it('reuses one keep-alive connection for sequential calls, error answers included', async () => {
    // Error bodies must be read to the end too, or the socket could not serve the next call.
    mixedAnswers();
    const before = server.connectionCount();
    const client = makeClient();
    for (let index = 0; index < 30; index++) {
      await callIgnoringApiErrors(client, index);
      // A real caller does other I/O between calls; undici frees a socket one event-loop turn after its response.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(server.requests).toHaveLength(30);
    expect(server.connectionCount() - before).toBe(1);
  });

  it('keeps back-to-back calls on at most two keep-alive connections', async () => {
    // Without a loop turn between calls undici's pool hands the next call to a second socket while
    // the first waits out its turn; still no connection per call.
    mixedAnswers();
    const before = server.connectionCount();
    const client = makeClient();
    for (let index = 0; index < 30; index++) await callIgnoringApiErrors(client, index);
    expect(server.requests).toHaveLength(30);
    expect(server.connectionCount() - before).toBeLessThanOrEqual(2);
  });

  it('opens no more than maxConnections sockets under concurrency', async () => {
    const before = server.connectionCount();
    server.setHandler((_request, response) => {
      setTimeout(() => sendJson(response, 200, { RequestId: 'slow' }), 30);
    });
    const client = makeClient({ maxConnections: 3 });
    await Promise.all(Array.from({ length: 24 }, (_, index) => client.call('A', { Index: index })));
    expect(server.connectionCount() - before).toBe(3);
  });
});

describe('AliyunClient transport failures', () => {
  const sims = useSimulators();
  // The simulator holds a call this long before answering: far beyond every deadline and abort
  // below, so a call that ends before then was ended by its deadline or its caller, not an answer.
  const heldMs = 15_000;

  async function slowSimulator(): Promise<Sim> {
    return sims.start({ servers: 1, seed: 7, faults: { latencyMs: heldMs } });
  }

  function simClient(sim: Sim, options: Partial<AliyunClientOptions> = {}): AliyunClient {
    return makeClient({ credentials: credentialsOf(sim), endpoint: sim.endpoint, ...options });
  }

  function regionOf(sim: Sim): { RegionId: string } {
    return { RegionId: (sim.servers[0] as SimServer).regionId };
  }

  /** Resolves once the simulator has received `count` API calls. */
  async function untilReceived(sim: Sim, count: number): Promise<void> {
    await vi.waitFor(() => expect(sim.stats().requests).toBe(count), { timeout: 5_000, interval: 10 });
  }

  /** Tracks whether a promise has settled yet, to tell which of two calls ended first. */
  function settledFlag(promise: Promise<unknown>): () => boolean {
    let settled = false;
    void promise.finally(() => {
      settled = true;
    });
    return () => settled;
  }

  it('times out with TRANSPORT_TIMEOUT when the server does not answer in time', async () => {
    const sim = await slowSimulator();
    const started = performance.now();
    const error = await captureError(
      simClient(sim, { timeoutMs: 300 }).call('ListIpsecServers', regionOf(sim)),
    );
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(AliyunTransportError);
    expect(error).toMatchObject({
      code: 'TRANSPORT_TIMEOUT',
      message: expect.stringContaining('within 300 ms'),
    });
    // Not before its deadline.
    expect(elapsed).toBeGreaterThanOrEqual(290);
    // The call reached the simulator, which had not answered it: the deadline ended it.
    expect(sim.stats().requests).toBe(1);
    expect(sim.stats().byCode).toEqual({});
  });

  it('honours a per-call timeout shorter than the client default', async () => {
    const sim = await slowSimulator();
    // A client default beyond heldMs: were the per-call deadline ignored, the answer would arrive.
    const client = simClient(sim, { timeoutMs: 60_000 });
    await expect(client.call('ListIpsecServers', regionOf(sim), { timeoutMs: 150 })).rejects.toMatchObject({
      code: 'TRANSPORT_TIMEOUT',
      message: expect.stringContaining('within 150 ms'),
    });
    expect(sim.stats().byCode).toEqual({});
  });

  it('times out when headers arrive but the body stalls', async () => {
    server.setHandler((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"RequestId":');
    });
    await expect(makeClient({ timeoutMs: 300 }).call('A', {})).rejects.toMatchObject({
      code: 'TRANSPORT_TIMEOUT',
    });
  });

  it('reports TRANSPORT_RESET when the server destroys the socket', async () => {
    const sim = await sims.start({ servers: 1, seed: 7, faults: { resetRate: 1 } });
    const error = await captureError(simClient(sim).call('ListIpsecServers', regionOf(sim)));
    expect(error).toBeInstanceOf(AliyunTransportError);
    expect((error as AliyunTransportError).code).toBe('TRANSPORT_RESET');
    expect((error as AliyunTransportError).cause).toBeDefined();
    expect(sim.stats()).toMatchObject({ requests: 1, byCode: { ConnectionReset: 1 } });
  });

  it('reports TRANSPORT_ABORTED when the caller aborts mid-flight, well before the deadline', async () => {
    const sim = await slowSimulator();
    const controller = new AbortController();
    // An ignored abort would end at the 10 s deadline as TRANSPORT_TIMEOUT, or with the answer.
    const pending = captureError(
      simClient(sim, { timeoutMs: 10_000 }).call('ListIpsecServers', regionOf(sim), {
        signal: controller.signal,
      }),
    );
    await untilReceived(sim, 1);
    controller.abort();
    const error = await pending;
    expect(error).toBeInstanceOf(AliyunTransportError);
    expect((error as AliyunTransportError).code).toBe('TRANSPORT_ABORTED');
    expect(sim.stats().byCode).toEqual({});
  });

  it('does not send at all with an already aborted signal', async () => {
    const error = await captureError(makeClient().call('A', {}, { signal: AbortSignal.abort() }));
    expect((error as AliyunTransportError).code).toBe('TRANSPORT_ABORTED');
    expect(server.requests).toHaveLength(0);
  });

  it('leaves no listener on a long-lived caller signal', async () => {
    const sim = await sims.start({ servers: 1, seed: 7 });
    const shutdown = new AbortController();
    const client = simClient(sim);
    for (let index = 0; index < 5; index++) {
      await client.call('ListIpsecServers', regionOf(sim), { signal: shutdown.signal });
    }
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    sim.setFaults({ latencyMs: heldMs });
    const pending = captureError(
      client.call('ListIpsecServers', regionOf(sim), { signal: shutdown.signal, timeoutMs: 1_000 }),
    );
    await untilReceived(sim, 6);
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    expect(await pending).toMatchObject({ code: 'TRANSPORT_TIMEOUT' });
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
  });

  it('ends a call queued behind a busy connection at its own deadline, and never sends it', async () => {
    const sim = await slowSimulator();
    const client = simClient(sim, { maxConnections: 1 });
    const first = captureError(client.call('ListIpsecServers', regionOf(sim), { timeoutMs: 2_000 }));
    const firstSettled = settledFlag(first);
    await untilReceived(sim, 1);
    const queued = await captureError(client.call('DescribeRegions', regionOf(sim), { timeoutMs: 150 }));
    expect(queued).toMatchObject({
      code: 'TRANSPORT_TIMEOUT',
      message: expect.stringContaining('within 150 ms'),
    });
    // Ended while the first call still held the only connection, not once it was freed.
    expect(firstSettled()).toBe(false);
    expect(await first).toMatchObject({ code: 'TRANSPORT_TIMEOUT' });
    // close() waits for the pool's queue, so the queued request has had its chance to be sent.
    clients.splice(clients.indexOf(client), 1);
    await client.close();
    expect(sim.stats()).toMatchObject({ requests: 1, byAction: { ListIpsecServers: 1 } });
    expect(sim.stats().byAction).not.toHaveProperty('DescribeRegions');
  });

  it('ends a call queued behind a busy connection when the caller aborts, and drops its listener', async () => {
    const sim = await slowSimulator();
    const client = simClient(sim, { maxConnections: 1 });
    const first = captureError(client.call('ListIpsecServers', regionOf(sim), { timeoutMs: 2_000 }));
    const firstSettled = settledFlag(first);
    await untilReceived(sim, 1);
    const shutdown = new AbortController();
    const queued = captureError(client.call('DescribeRegions', regionOf(sim), { signal: shutdown.signal }));
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(1);
    shutdown.abort();
    expect(await queued).toMatchObject({ code: 'TRANSPORT_ABORTED' });
    // Ended while the first call still held the only connection, not once it was freed.
    expect(firstSettled()).toBe(false);
    expect(getEventListeners(shutdown.signal, 'abort')).toHaveLength(0);
    expect(await first).toMatchObject({ code: 'TRANSPORT_TIMEOUT' });
    clients.splice(clients.indexOf(client), 1);
    await client.close();
    expect(sim.stats().byAction).toEqual({ ListIpsecServers: 1 });
  });

  it('reports TRANSPORT_REFUSED for a port nobody listens on', async () => {
    const port = await unusedPort();
    const client = new AliyunClient({ credentials, endpoint: `http://127.0.0.1:${port}` });
    clients.push(client);
    const error = await captureError(client.call('A', {}));
    expect(error).toBeInstanceOf(AliyunTransportError);
    expect((error as AliyunTransportError).code).toBe('TRANSPORT_REFUSED');
  });

  it('reports TRANSPORT_DNS for a host name that cannot resolve', async () => {
    // A generous deadline: without a reachable resolver the answer is EAI_AGAIN, after the resolver's own timeout.
    const client = new AliyunClient({
      credentials,
      endpoint: 'https://vpc.does-not-exist.invalid',
      timeoutMs: 15_000,
    });
    clients.push(client);
    await expect(client.call('A', {})).rejects.toMatchObject({ code: 'TRANSPORT_DNS' });
  });

  it('reports TRANSPORT_TLS when https meets a plain-http server', async () => {
    const client = new AliyunClient({ credentials, endpoint: `https://127.0.0.1:${server.port}` });
    clients.push(client);
    await expect(client.call('A', {})).rejects.toMatchObject({ code: 'TRANSPORT_TLS' });
  });
});
