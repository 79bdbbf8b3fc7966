import { describe, expect, it } from 'vitest';
import { credentialsFromEnv } from '../../src/aliyun/credentials.js';
import { CredentialsError } from '../../src/aliyun/errors.js';

const complete = {
  ALIBABA_CLOUD_ACCESS_KEY_ID: 'LTAI-id',
  ALIBABA_CLOUD_ACCESS_KEY_SECRET: 'very-secret',
};

describe('credentialsFromEnv', () => {
  it('reads an AccessKey pair without a token', () => {
    const credentials = credentialsFromEnv(complete);
    expect(credentials).toEqual({ accessKeyId: 'LTAI-id', accessKeySecret: 'very-secret' });
    expect('securityToken' in credentials).toBe(false);
  });

  it('adds the STS token when set', () => {
    expect(credentialsFromEnv({ ...complete, ALIBABA_CLOUD_SECURITY_TOKEN: 'sts' }).securityToken).toBe(
      'sts',
    );
  });

  it('treats an empty token as unset', () => {
    expect(
      credentialsFromEnv({ ...complete, ALIBABA_CLOUD_SECURITY_TOKEN: '' }).securityToken,
    ).toBeUndefined();
  });

  it.each([
    ['ALIBABA_CLOUD_ACCESS_KEY_ID', undefined],
    ['ALIBABA_CLOUD_ACCESS_KEY_ID', ''],
    ['ALIBABA_CLOUD_ACCESS_KEY_SECRET', undefined],
    ['ALIBABA_CLOUD_ACCESS_KEY_SECRET', '  '],
  ])('throws CredentialsError naming %s when it is %j', (name, value) => {
    const env = { ...complete, [name]: value };
    let thrown: unknown;
    try {
      credentialsFromEnv(env);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CredentialsError);
    expect((thrown as CredentialsError).code).toBe('CREDENTIALS_MISSING');
    expect((thrown as CredentialsError).message).toContain(name);
    expect((thrown as CredentialsError).message).not.toContain('very-secret');
  });

  it('accepts process.env-shaped input', () => {
    const env: NodeJS.ProcessEnv = { ...complete, PATH: '/bin' };
    expect(credentialsFromEnv(env).accessKeyId).toBe('LTAI-id');
  });
});
