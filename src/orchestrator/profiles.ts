import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { credentialsFromEnv } from '../aliyun/credentials.js';
import type { Credentials } from '../aliyun/types.js';
import type { Config } from '../config.js';
import { IpsecFleetError } from '../errors.js';
import { fieldIssues, parseInWords } from '../validation.js';
import { profileNameSchema } from './change.js';
import { DEFAULT_PROFILE } from './changes.js';

/**
 * Named credential profiles: a JSON file (IPSEC_FLEET_PROFILES_FILE)
 *
 *   { "profiles": { "prod-a": { "accessKeyId": "...", "accessKeySecret": "...", "securityToken": "..." } } }
 *
 * plus `default`, which is the ALIBABA_CLOUD_* environment credentials when they are set (they
 * win over a `default` entry in the file). A change or rollout target names its profile; the
 * circuit breaker and the API rate limiter are per profile / access key.
 *
 * Errors name the file and the field, never a value: a secret is never echoed.
 */

const secretString = z.string().min(1, 'must not be empty');

const profileSchema = z.strictObject({
  accessKeyId: secretString,
  accessKeySecret: secretString,
  securityToken: secretString.optional(),
});

export const profilesFileSchema = z.strictObject({
  profiles: z.record(profileNameSchema, profileSchema),
});

export class ProfilesError extends IpsecFleetError {
  constructor(message: string) {
    super('PROFILES_INVALID', message);
  }
}

/** Parses the file's text; the messages carry paths and rules only (no JSON.parse excerpt). */
export function parseProfiles(text: string, source: string): Record<string, Credentials> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message may quote the text around the error, secrets included.
    throw new ProfilesError(`${source}: is not valid JSON`);
  }
  const result = parseInWords(profilesFileSchema, json);
  if (!result.success) {
    // Record keys are names, not secrets; the rules state types and bounds, never values.
    const issues = fieldIssues(result.error).map(({ field, rule }) => `${field || '(file)'}: ${rule}`);
    throw new ProfilesError(`${source}: ${issues.join('; ')}`);
  }
  const profiles: Record<string, Credentials> = {};
  for (const [name, profile] of Object.entries(result.data.profiles)) {
    profiles[name] = profile.securityToken
      ? {
          accessKeyId: profile.accessKeyId,
          accessKeySecret: profile.accessKeySecret,
          securityToken: profile.securityToken,
        }
      : { accessKeyId: profile.accessKeyId, accessKeySecret: profile.accessKeySecret };
  }
  return profiles;
}

/**
 * Every profile a worker may use: the file's, and `default` from the environment when set. With
 * neither a file nor environment credentials it throws the environment's CredentialsError, as the
 * worker did before profiles existed.
 */
export function loadProfiles(
  config: Pick<
    Config,
    | 'IPSEC_FLEET_PROFILES_FILE'
    | 'ALIBABA_CLOUD_ACCESS_KEY_ID'
    | 'ALIBABA_CLOUD_ACCESS_KEY_SECRET'
    | 'ALIBABA_CLOUD_SECURITY_TOKEN'
  >,
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): Record<string, Credentials> {
  const path = config.IPSEC_FLEET_PROFILES_FILE;
  let profiles: Record<string, Credentials> = {};
  if (path) {
    let text: string;
    try {
      text = read(path);
    } catch (error) {
      throw new ProfilesError(
        `IPSEC_FLEET_PROFILES_FILE ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
    profiles = parseProfiles(text, `IPSEC_FLEET_PROFILES_FILE ${path}`);
  }
  const envSet = config.ALIBABA_CLOUD_ACCESS_KEY_ID || config.ALIBABA_CLOUD_ACCESS_KEY_SECRET;
  if (envSet || !path) profiles[DEFAULT_PROFILE] = credentialsFromEnv(config);
  return profiles;
}
