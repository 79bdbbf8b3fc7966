import { createHash } from 'node:crypto';

/**
 * How the simulator shows a server's Psk in its admin views and history: a plain hash, since the
 * simulator holds no deployment secret and its keys are test keys. ipsec-fleet's own labels are
 * keyed (src/ipsec/psk.ts) and never look like these.
 */
export function simPskLabel(psk: string): string {
  return `sha256:${createHash('sha256').update(psk, 'utf8').digest('hex').slice(0, 12)}`;
}
