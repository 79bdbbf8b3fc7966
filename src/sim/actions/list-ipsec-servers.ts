import { parseListWireParams } from '../../ipsec/wire.js';
import { simErrors } from '../errors.js';
import { type LiveServer, toListedServer } from '../fleet.js';
import { parseParams } from '../params.js';
import type { ActionContext, ActionResult } from './types.js';

/**
 * ListIpsecServers: the caller's own servers in RegionId, filtered and paged as the official SDK
 * models it. A requested id that does not exist (or is someone else's) is simply not listed,
 * as a list call does; only UpdateIpsecServer reports unknown ids.
 */

const DEFAULT_PAGE_SIZE = 10;
const TOKEN_SHAPE = /^[0-9a-f]{32}$/;

/** Opaque to callers; the offset of the next page in hex, shaped like the cloud's 32-hex tokens. */
function encodeNextToken(offset: number): string {
  return offset.toString(16).padStart(32, '0');
}

function decodeNextToken(token: string | undefined, total: number): number {
  if (token === undefined || token === '') return 0;
  const offset = TOKEN_SHAPE.test(token) ? Number.parseInt(token, 16) : Number.NaN;
  if (!Number.isSafeInteger(offset) || offset > total) {
    throw simErrors.invalidParameter('NextToken', 'is not a token this listing returned');
  }
  return offset;
}

export function listIpsecServers(context: ActionContext): ActionResult {
  const query = parseParams(parseListWireParams, context.params);
  const { fleet } = context.state;
  const candidates = query.IpsecServerId
    ? fleet.ownedInById(context.key.accessKeyId, query.RegionId, query.IpsecServerId)
    : fleet.ownedIn(context.key.accessKeyId, query.RegionId);
  const matches: LiveServer[] = [];
  for (const server of candidates) {
    const record = server.record;
    if (query.VpnGatewayId !== undefined && record.VpnGatewayId !== query.VpnGatewayId) continue;
    if (query.IpsecServerName !== undefined && record.IpsecServerName !== query.IpsecServerName) continue;
    if (query.ResourceGroupId !== undefined && record.ResourceGroupId !== query.ResourceGroupId) continue;
    matches.push(server);
  }
  const pageSize = query.MaxResults ?? DEFAULT_PAGE_SIZE;
  const offset = decodeNextToken(query.NextToken, matches.length);
  const page = matches.slice(offset, offset + pageSize);
  const body: Record<string, unknown> = {
    RequestId: context.requestId,
    TotalCount: matches.length,
    MaxResults: pageSize,
  };
  // The last page carries no NextToken: that is how a caller knows to stop.
  if (offset + pageSize < matches.length) body.NextToken = encodeNextToken(offset + pageSize);
  body.IpsecServers = page.map((server) => toListedServer(server.record));
  return { requestId: context.requestId, body };
}
