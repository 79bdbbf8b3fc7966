import { z } from 'zod';
import {
  AUTHENTICATION_ALGORITHMS,
  DH_GROUPS,
  ENCRYPTION_ALGORITHMS,
  IKE_MODES,
  IKE_VERSIONS,
  MAX_LIFETIME_SECONDS,
  MIN_LIFETIME_SECONDS,
} from './algorithms.js';
import { intInRange, oneOf, stringField } from './field-rules.js';
import { ikeIdentityProblem } from './host-id.js';

/**
 * Phase 1 settings (UpdateIpsecServer's IkeConfig). Every field is optional: the caller sends
 * only what it means to change. Unknown fields are rejected so that a misspelt `IkeLifeTime` is
 * an error and not a silent no-op.
 */

/** The documented order; the canonical JSON sent on the wire follows it. */
export const IKE_CONFIG_KEYS = [
  'IkeVersion',
  'IkeMode',
  'IkeEncAlg',
  'IkeAuthAlg',
  'IkePfs',
  'IkeLifetime',
  'LocalId',
  'RemoteId',
] as const;

const ikeIdentity = stringField().superRefine((value, ctx) => {
  const problem = ikeIdentityProblem(value);
  if (problem) ctx.addIssue(problem);
});

export const ikeConfigSchema = z.strictObject(
  {
    IkeVersion: oneOf(IKE_VERSIONS).optional(),
    IkeMode: oneOf(IKE_MODES).optional(),
    IkeEncAlg: oneOf(ENCRYPTION_ALGORITHMS).optional(),
    IkeAuthAlg: oneOf(AUTHENTICATION_ALGORITHMS).optional(),
    IkePfs: oneOf(DH_GROUPS).optional(),
    IkeLifetime: intInRange(MIN_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS).optional(),
    LocalId: ikeIdentity.optional(),
    RemoteId: ikeIdentity.optional(),
  },
  { error: 'must be an object' },
);

export type IkeConfig = z.infer<typeof ikeConfigSchema>;
export type IkeConfigKey = (typeof IKE_CONFIG_KEYS)[number];
