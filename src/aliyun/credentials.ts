import { CredentialsError } from './errors.js';
import type { Credentials } from './types.js';

/** The variable names of the official credential chain, so one environment serves both tools. */
export const CREDENTIAL_ENV = {
  accessKeyId: 'ALIBABA_CLOUD_ACCESS_KEY_ID',
  accessKeySecret: 'ALIBABA_CLOUD_ACCESS_KEY_SECRET',
  securityToken: 'ALIBABA_CLOUD_SECURITY_TOKEN',
} as const;

/** Satisfied by `process.env` and by the parsed Config alike. */
export type CredentialEnv = {
  readonly [name in (typeof CREDENTIAL_ENV)[keyof typeof CREDENTIAL_ENV]]?: string | undefined;
};

function present(value: string | undefined): value is string {
  // Shells and compose files export `NAME=` to clear a variable; blank counts as unset.
  return value !== undefined && value.trim() !== '';
}

/**
 * AccessKey credentials from the environment; an STS token is added when set. Throws
 * CredentialsError naming the first missing variable, never echoing any value.
 */
export function credentialsFromEnv(env: CredentialEnv): Credentials {
  const accessKeyId = env[CREDENTIAL_ENV.accessKeyId];
  if (!present(accessKeyId)) throw new CredentialsError(`${CREDENTIAL_ENV.accessKeyId} is not set`);
  const accessKeySecret = env[CREDENTIAL_ENV.accessKeySecret];
  if (!present(accessKeySecret)) throw new CredentialsError(`${CREDENTIAL_ENV.accessKeySecret} is not set`);
  const securityToken = env[CREDENTIAL_ENV.securityToken];
  return present(securityToken)
    ? { accessKeyId, accessKeySecret, securityToken }
    : { accessKeyId, accessKeySecret };
}
