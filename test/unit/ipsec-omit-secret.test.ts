import { describe, expect, it } from 'vitest';
import { AliyunApiError } from '../../src/aliyun/errors.js';
import { percentEncode } from '../../src/aliyun/percent-encode.js';
import { withSecretOmitted } from '../../src/ipsec/omit-secret.js';

const refusal = (message: string, recommend?: string) =>
  new AliyunApiError({ code: 'InvalidParameter', message, httpStatus: 400, requestId: 'req-1', recommend });

describe('withSecretOmitted', () => {
  it('cuts an encoded form whole when it holds the secret itself', () => {
    const secret = '%25';
    const omitted = withSecretOmitted(refusal(`sent as ${percentEncode(secret)} (${secret})`), secret);
    expect(omitted.message).toBe('sent as [omitted] ([omitted])');
  });

  it('keeps an error that does not quote the secret as it is', () => {
    const error = refusal('The specified parameter is invalid.', 'https://example.com/help');
    expect(withSecretOmitted(error, 'never-quoted')).toBe(error);
    expect(withSecretOmitted(error, '')).toBe(error);
  });
});
