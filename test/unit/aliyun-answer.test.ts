import { describe, expect, it } from 'vitest';
import { interpretAnswer } from '../../src/aliyun/answer.js';
import { AliyunApiError } from '../../src/aliyun/errors.js';

/** A portal's page quoting the request it caught, as some do: every parameter, a Psk included. */
const ECHOING_PAGE =
  '<html><head><title>Access denied</title></head><body><p>Blocked: ' +
  '/?Action=UpdateIpsecServer&IpsecServerId=iss-x&Psk=TopSecretPsk42&RegionId=cn-hangzhou</p></body></html>';

function errorOf(status: number, contentType: string | undefined, text: string): AliyunApiError {
  const answer = interpretAnswer(status, contentType ? { 'content-type': contentType } : {}, text);
  if (!(answer instanceof AliyunApiError)) throw new Error('expected an error');
  return answer;
}

describe('interpretAnswer: a body that is not the cloud’s', () => {
  it.each([
    [200, 'HTTP.200.NotJson'],
    [502, 'HTTP.502'],
  ])('%i: names its type, size and title, never its text (it may quote the Psk)', (status, code) => {
    const error = errorOf(status, 'text/html; charset=utf-8', ECHOING_PAGE);
    expect(error.code).toBe(code);
    expect(error.message).toContain(
      `a text/html body of ${Buffer.byteLength(ECHOING_PAGE)} bytes, titled "Access denied"`,
    );
    expect(error.message).not.toContain('TopSecretPsk42');
    expect(error.message).not.toContain('IpsecServerId');
  });

  it('leaves out a title that quotes a URL or parameters', () => {
    const page = '<title>Blocked /?Psk=TopSecretPsk42</title>';
    const error = errorOf(200, undefined, page);
    expect(error.message).toBe(
      `HTTP 200 with a body that is not a JSON object: an untyped body of ${page.length} bytes`,
    );
  });

  it('says so when the body is empty', () => {
    expect(errorOf(504, undefined, '  ').message).toBe(
      'HTTP 504 without an Alibaba Cloud error body: an empty body',
    );
  });
});
