import { splitCidrList } from '../ipsec/cidr.js';
import type { UpdateIpsecServerParams } from '../ipsec/update-params.js';
import { TextMemo } from '../text-memo.js';
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

function blocksOverlap(first: Block, second: Block): boolean {
  const mask = maskOf(Math.min(first.prefix, second.prefix));
  return (first.network & mask) >>> 0 === (second.network & mask) >>> 0;
}

/** Two blocks overlap exactly when the wider one contains the other's network address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const first = toBlock(a);
  const second = toBlock(b);
  return first !== undefined && second !== undefined && blocksOverlap(first, second);
}

/**
 * Parsed blocks, remembered by text: every call checks a server's current ClientIpPool or
 * LocalSubnet, or a rollout's new value, and those texts come back call after call.
 */
const singleBlocks = new TextMemo<Block | undefined>();
const listBlocks = new TextMemo<readonly (Block | undefined)[]>();

/** Whether any entry of the list overlaps `pool`; an unreadable entry or pool overlaps nothing. */
function listOverlaps(list: string, pool: string): boolean {
  const poolBlock = singleBlocks.remember(pool, toBlock);
  if (poolBlock === undefined) return false;
  for (const block of listBlocks.remember(list, (text) => splitCidrList(text).map(toBlock))) {
    if (block !== undefined && blocksOverlap(block, poolBlock)) return true;
  }
  return false;
}

export function checkAddressPlan(record: SimServerRecord, params: UpdateIpsecServerParams): void {
  const pool = params.ClientIpPool ?? record.ClientIpPool;
  if (params.LocalSubnet !== undefined) {
    if (listOverlaps(params.LocalSubnet, pool))
      throw simErrors.illegalParam('LocalSubnet', params.LocalSubnet);
    return;
  }
  if (params.ClientIpPool !== undefined && listOverlaps(record.LocalSubnet, params.ClientIpPool)) {
    throw simErrors.illegalParam('ClientIpPool', params.ClientIpPool);
  }
}
