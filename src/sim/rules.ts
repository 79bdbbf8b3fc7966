import { splitCidrList } from '../ipsec/cidr.js';
import type { UpdateIpsecServerParams } from '../ipsec/update-params.js';
import { simErrors } from './errors.js';
import type { SimServerRecord } from './fleet.js';

/**
 * UpdateIpsecServer's business rules beyond each field's own shape: the VPC-side networks
 * (LocalSubnet) and the client address pool (ClientIpPool) must not overlap, or clients would be
 * handed addresses that route back into the VPC. The rule is checked against the server as it
 * will be: the new value of a field when the call sets it, the current one otherwise.
 */

interface Block {
  network: number;
  prefix: number;
}

/** `a.b.c.d/p` (already validated by the schema) as integers. */
function toBlock(cidr: string): Block | undefined {
  const slash = cidr.indexOf('/');
  if (slash < 0) return undefined;
  const octets = cidr.slice(0, slash).split('.');
  const prefix = Number(cidr.slice(slash + 1));
  if (octets.length !== 4 || !Number.isInteger(prefix) || prefix < 0 || prefix > 32) return undefined;
  let network = 0;
  for (const octet of octets) network = network * 256 + Number(octet);
  return Number.isNaN(network) ? undefined : { network, prefix };
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Two blocks overlap exactly when the wider one contains the other's network address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const first = toBlock(a);
  const second = toBlock(b);
  if (!first || !second) return false;
  const mask = maskOf(Math.min(first.prefix, second.prefix));
  return (first.network & mask) >>> 0 === (second.network & mask) >>> 0;
}

export function checkAddressPlan(record: SimServerRecord, params: UpdateIpsecServerParams): void {
  const pool = params.ClientIpPool ?? record.ClientIpPool;
  if (params.LocalSubnet !== undefined) {
    for (const subnet of splitCidrList(params.LocalSubnet)) {
      if (cidrsOverlap(subnet, pool)) throw simErrors.illegalParam('LocalSubnet', params.LocalSubnet);
    }
    return;
  }
  if (params.ClientIpPool !== undefined) {
    for (const subnet of splitCidrList(record.LocalSubnet)) {
      if (cidrsOverlap(subnet, params.ClientIpPool))
        throw simErrors.illegalParam('ClientIpPool', params.ClientIpPool);
    }
  }
}
