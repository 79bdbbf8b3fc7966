import { z } from 'zod';
import {
  AUTHENTICATION_ALGORITHMS,
  ENCRYPTION_ALGORITHMS,
  IPSEC_PFS_VALUES,
  MAX_LIFETIME_SECONDS,
  MIN_LIFETIME_SECONDS,
} from './algorithms.js';
import { intInRange, oneOf } from './field-rules.js';

/**
 * Phase 2 settings (UpdateIpsecServer's IpsecConfig). Same conventions as IkeConfig: every field
 * optional, unknown fields rejected.
 */

/** The documented order; the canonical JSON sent on the wire follows it. */
export const IPSEC_CONFIG_KEYS = ['IpsecEncAlg', 'IpsecAuthAlg', 'IpsecPfs', 'IpsecLifetime'] as const;

export const ipsecConfigSchema = z.strictObject(
  {
    IpsecEncAlg: oneOf(ENCRYPTION_ALGORITHMS).optional(),
    IpsecAuthAlg: oneOf(AUTHENTICATION_ALGORITHMS).optional(),
    IpsecPfs: oneOf(IPSEC_PFS_VALUES).optional(),
    IpsecLifetime: intInRange(MIN_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS).optional(),
  },
  { error: 'must be an object' },
);

export type IpsecConfig = z.infer<typeof ipsecConfigSchema>;
export type IpsecConfigKey = (typeof IPSEC_CONFIG_KEYS)[number];
