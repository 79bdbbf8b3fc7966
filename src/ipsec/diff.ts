import { cidrSetKey } from './cidr.js';
import { IKE_CONFIG_KEYS } from './ike-config.js';
import { IPSEC_CONFIG_KEYS } from './ipsec-config.js';
import type { PskFingerprint } from './psk.js';
import type { IpsecServer } from './server.js';
import type { MutableParams } from './update-params.js';

/**
 * What a change would alter on a server, field by field: the plan shown before approval, the
 * no-op check, and the verify-after-apply check all read from here.
 *
 * Only what the params set is compared: UpdateIpsecServer leaves unnamed fields alone, and a
 * field the params leave out is not part of the change. Values are compared as the cloud reports
 * them; a field the server does not report counts as different, because "probably the default"
 * is not something a verification may assume.
 */

export type FieldValue = string | number | boolean;

export interface FieldChange {
  /** `LocalSubnet`, or `IkeConfig.IkeLifetime` for a field inside a config. */
  field: string;
  /** The server's value, undefined when it does not report one; Psk as its fingerprint. */
  from: FieldValue | undefined;
  /** The value the params set; Psk as its fingerprint. */
  to: FieldValue;
}

export function diffConfig(
  before: IpsecServer,
  params: MutableParams,
  fingerprint: PskFingerprint,
): FieldChange[] {
  const changes: FieldChange[] = [];
  const compare = (
    field: string,
    from: FieldValue | undefined,
    to: FieldValue | undefined,
    same = from === to,
  ) => {
    if (to !== undefined && !same) changes.push({ field, from, to });
  };

  if (params.LocalSubnet !== undefined) {
    // The cloud keeps LocalSubnet as a set: the same blocks in another order are no change.
    const same =
      before.LocalSubnet !== undefined && cidrSetKey(before.LocalSubnet) === cidrSetKey(params.LocalSubnet);
    compare('LocalSubnet', before.LocalSubnet, params.LocalSubnet, same);
  }
  compare('ClientIpPool', before.ClientIpPool, params.ClientIpPool);
  compare('IpsecServerName', before.IpsecServerName, params.IpsecServerName);
  compare('EffectImmediately', before.EffectImmediately, params.EffectImmediately);
  if (params.IkeConfig) {
    for (const key of IKE_CONFIG_KEYS) {
      compare(`IkeConfig.${key}`, before.IkeConfig?.[key], params.IkeConfig[key]);
    }
  }
  if (params.IpsecConfig) {
    for (const key of IPSEC_CONFIG_KEYS) {
      compare(`IpsecConfig.${key}`, before.IpsecConfig?.[key], params.IpsecConfig[key]);
    }
  }
  compare('PskEnabled', before.PskEnabled, params.PskEnabled);
  if (params.Psk !== undefined) {
    // Compared in clear, reported only as fingerprints: the keys never leave this function.
    const from = before.Psk === undefined ? undefined : fingerprint(before.Psk);
    compare('Psk', from, fingerprint(params.Psk), before.Psk === params.Psk);
  }
  return changes;
}

// Only the number of differences is read: no label is shown, so none is made.
const UNSHOWN: PskFingerprint = () => '';

/** Whether the server already has everything the params set: a no-op plan, or a verified apply. */
export function isSatisfiedBy(server: IpsecServer, params: MutableParams): boolean {
  return diffConfig(server, params, UNSHOWN).length === 0;
}
