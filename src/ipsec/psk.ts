import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { TextMemo } from '../text-memo.js';

/** A pre-shared key's label; made by pskFingerprinter. */
export type PskFingerprint = (psk: string) => string;

export const PSK_FINGERPRINT_PATTERN = /^hmac:[0-9a-f]{16}$/;

const INFO = 'ipsec-fleet psk fingerprint v1';

/**
 * A stable, non-reversible label for a pre-shared key, so plans, diffs and audit records can say
 * "the key changes from A to B" without carrying the key (invariant 6).
 *
 * It is an HMAC under a key derived from the deployment's secret key, not a plain hash: viewers
 * see these labels, and a plain hash of a short, human-chosen key gives it away to anyone who
 * tries a dictionary of candidates. Every process of a deployment derives the same key, so labels
 * still compare across workers and the API. Without a secret key (no Psk can then be changed) the
 * labels of servers' current keys are made under a key of this process's own: they still hide
 * the key, but compare only within the process. 16 hex digits: 64 bits.
 */
export function pskFingerprinter(secretKey: Buffer | undefined): PskFingerprint {
  const key = secretKey
    ? Buffer.from(hkdfSync('sha256', secretKey, Buffer.alloc(0), INFO, 32))
    : randomBytes(32);
  return (psk) => `hmac:${createHmac('sha256', key).update(psk, 'utf8').digest('hex').slice(0, 16)}`;
}

/**
 * `label` with its answers remembered, for labelling all the Psks of one rollout: it tends to give
 * every target the same, and one HMAC per distinct Psk then does instead of one per target. It
 * holds the Psks in clear: use it for one request, never keep it.
 */
export function rememberingLabels(label: PskFingerprint): PskFingerprint {
  const known = new TextMemo<string>();
  return (psk) => known.remember(psk, label);
}
