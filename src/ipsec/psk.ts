import { createHash } from 'node:crypto';

/**
 * A stable, non-reversible label for a pre-shared key, so plans, diffs and audit records can say
 * "the key changes from A to B" without carrying the key (invariant 6). Twelve hex digits (48
 * bits) tell keys apart at a glance; they are no help in guessing one, but a short or common key
 * can still be found by trying candidates, so the fingerprint is shown to people who may see the
 * change, never published.
 */
export function pskFingerprint(psk: string): string {
  return `sha256:${createHash('sha256').update(psk, 'utf8').digest('hex').slice(0, 12)}`;
}
