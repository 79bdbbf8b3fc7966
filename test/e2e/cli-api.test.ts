import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyV1Signature } from '../../src/aliyun/signer.js';
import { runCli } from '../support/cli.js';
import {
  type RecordedRequest,
  sendJson,
  startHttpServer,
  type TestHttpServer,
} from '../support/http-server.js';

const credentials = { ALIBABA_CLOUD_ACCESS_KEY_ID: 'cli-key', ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'cli-secret' };
const dryRun = [
  'UpdateIpsecServer',
  '--RegionId',
  'cn-shanghai',
  '--IpsecServerId',
  'iss-1',
  '--DryRun',
  'true',
];

function answerDryRunPassed(request: RecordedRequest, response: Parameters<typeof sendJson>[0]) {
  const action =
    request.headers['x-acs-action'] ??
    request.query.Action ??
    new URLSearchParams(request.body).get('Action');
  if (action !== 'UpdateIpsecServer')
    return sendJson(response, 404, { Code: 'InvalidAction.NotFound', Message: '' });
  sendJson(response, 400, {
    RequestId: 'req-dry',
    Code: 'DryRunOperation',
    Message: 'Request validation has been passed with DryRun flag set.',
  });
}

describe('ipsec-fleet api', () => {
  let server: TestHttpServer;
  beforeAll(async () => {
    server = await startHttpServer(answerDryRunPassed);
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.requests.length = 0;
    server.setHandler(answerDryRunPassed);
  });

  it('exits 0 on a passed dry run with signature V3', async () => {
    const result = await runCli(['api', ...dryRun, '--endpoint', server.origin], credentials);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      HttpStatus: 400,
      Code: 'DryRunOperation',
      Message: 'Request validation has been passed with DryRun flag set.',
      RequestId: 'req-dry',
    });
    const [request] = server.requests;
    expect(request?.method).toBe('POST');
    expect(request?.headers.authorization).toMatch(/^ACS3-HMAC-SHA256 Credential=cli-key,/);
    expect(request?.query).toMatchObject({ IpsecServerId: 'iss-1', RegionId: 'cn-shanghai', DryRun: 'true' });
  });

  it('exits 0 on a passed dry run with --signature v1, correctly signed', async () => {
    const result = await runCli(
      ['api', ...dryRun, '--endpoint', server.origin, '--signature', 'v1'],
      credentials,
    );
    expect(result.code).toBe(0);
    const [request] = server.requests;
    const form = Object.fromEntries(new URLSearchParams(request?.body ?? ''));
    expect(form).toMatchObject({
      Action: 'UpdateIpsecServer',
      SignatureMethod: 'HMAC-SHA1',
      IpsecServerId: 'iss-1',
    });
    expect(verifyV1Signature(form, 'POST', 'cli-secret')).toBe(true);
  });

  it('prints an API error and exits 3', async () => {
    server.setHandler((_request, response) =>
      sendJson(response, 400, { RequestId: 'r-2', Code: 'VpnGateway.Configuring', Message: 'configuring' }),
    );
    const result = await runCli(['api', ...dryRun, '--endpoint', server.origin], credentials);
    expect(result.code).toBe(3);
    expect(JSON.parse(result.stdout)).toMatchObject({
      HttpStatus: 400,
      Code: 'VpnGateway.Configuring',
      RequestId: 'r-2',
    });
  });

  it('rejects a bad UpdateIpsecServer parameter with exit 2, naming it, and sends nothing', async () => {
    const result = await runCli(
      ['api', ...dryRun, '--LocalSubnet', '10.0.0.5/24', '--endpoint', server.origin],
      credentials,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('LocalSubnet');
    expect(result.stderr).toContain('network address');
    expect(server.requests).toHaveLength(0);
  });

  it('names the missing credential variable with exit 2', async () => {
    const result = await runCli(['api', ...dryRun, '--endpoint', server.origin], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('ALIBABA_CLOUD_ACCESS_KEY_ID');
    expect(server.requests).toHaveLength(0);
  });

  it('rejects a bad flag value with exit 2, naming the flag', async () => {
    const result = await runCli(
      ['api', ...dryRun, '--endpoint', server.origin, '--signature', 'v2'],
      credentials,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('signature');
  });

  it('passes other actions through and exits 4 when nothing answers', async () => {
    const closed = await startHttpServer();
    const origin = closed.origin;
    await closed.close();
    const result = await runCli(
      ['api', 'DescribeRegions', '--endpoint', origin, '--timeout', '2000'],
      credentials,
    );
    expect(result.code).toBe(4);
    expect(result.stderr).toContain('TRANSPORT_REFUSED');
  });

  it('never prints the secret', async () => {
    const result = await runCli(['api', ...dryRun, '--endpoint', server.origin], credentials);
    expect(result.stdout + result.stderr).not.toContain('cli-secret');
  });
});
