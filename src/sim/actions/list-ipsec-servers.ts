import { type ListIpsecServersQuery, listIpsecServersQuerySchema } from '../../ipsec/list-request.js';
import { parseListWireParams } from '../../ipsec/wire.js';
import { simErrors } from '../errors.js';
import {
  type LiveServer,
  listedJson,
  type SimServerRecord,
  staleListedJson,
  staleReadAt,
  toListedServer,
} from '../fleet.js';
import { parseParams } from '../params.js';
import type { ActionContext, ActionResult } from './types.js';

/**
 * ListIpsecServers: the caller's own servers in RegionId, filtered and paged as the official SDK
 * models it. A requested id that does not exist (or is someone else's) is simply not listed,
 * as a list call does; only UpdateIpsecServer reports unknown ids.
 *
 * With the staleReadMs fault, a server applied to moments ago is listed (and filtered) as it was
 * before that apply, as a read served by a lagging replica would be.
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

const ID_ITEM_PREFIX = 'IpsecServerId.';

/** N of a list item's name `IpsecServerId.N` (N from 1, no leading zero), else 0. */
function itemNumber(name: string): number {
  const start = ID_ITEM_PREFIX.length;
  if (name.length === start) return 0;
  let number = 0;
  for (let index = start; index < name.length; index++) {
    const digit = name.charCodeAt(index) - 48;
    if (digit < 0 || digit > 9 || (index === start && digit === 0)) return 0;
    number = number * 10 + digit;
  }
  return number;
}

/**
 * parseListWireParams's result for a call shaped as the SDKs send it: `IpsecServerId.1` to
 * `.N` all there, beside the other fields. Its `IpsecServerId.N` names are read without a
 * regular expression each and placed by number without a sort, the rest checked by the same
 * schema. Anything else (a gap in the numbers, a bare IpsecServerId, an odd item name, a value
 * the schema refuses) is parsed by parseListWireParams itself, refusals worded as always.
 */
export function parseListParams(wire: Record<string, string>): ListIpsecServersQuery {
  const rest: Record<string, unknown> = {};
  const numbers: number[] = [];
  const values: string[] = [];
  let highest = 0;
  for (const name in wire) {
    const value = wire[name] as string;
    if (name.startsWith(ID_ITEM_PREFIX)) {
      const number = itemNumber(name);
      if (number === 0) return parseListWireParams(wire);
      numbers.push(number);
      values.push(value);
      if (number > highest) highest = number;
    } else if (name === 'IpsecServerId') {
      return parseListWireParams(wire);
    } else {
      rest[name] = value;
    }
  }
  if (numbers.length > 0) {
    // Distinct numbers from 1 whose highest is their count are exactly 1..N.
    if (highest !== numbers.length) return parseListWireParams(wire);
    const ids = new Array<string>(highest);
    for (let index = 0; index < numbers.length; index++)
      ids[(numbers[index] as number) - 1] = values[index] as string;
    rest.IpsecServerId = ids;
  }
  const parsed = listIpsecServersQuerySchema.safeParse(rest);
  return parsed.success ? parsed.data : parseListWireParams(wire);
}

/** A server as this listing shows it: live, or as a stale read still sees it. */
type Listed = LiveServer | { record: SimServerRecord; json: () => string };

function jsonOf(listed: Listed): string {
  return 'json' in listed ? listed.json() : listedJson(listed);
}

export function listIpsecServers(context: ActionContext): ActionResult {
  const query = parseParams(parseListParams, context.params);
  const { fleet } = context.state;
  const candidates = query.IpsecServerId
    ? fleet.ownedInById(context.key.accessKeyId, query.RegionId, query.IpsecServerId)
    : fleet.ownedIn(context.key.accessKeyId, query.RegionId);
  const now = context.now;
  const matches: Listed[] = [];
  for (const server of candidates) {
    const stale = server.staleReads === undefined ? undefined : staleReadAt(server, now);
    const record = stale ? stale.record : server.record;
    if (query.VpnGatewayId !== undefined && record.VpnGatewayId !== query.VpnGatewayId) continue;
    if (query.IpsecServerName !== undefined && record.IpsecServerName !== query.IpsecServerName) continue;
    if (query.ResourceGroupId !== undefined && record.ResourceGroupId !== query.ResourceGroupId) continue;
    matches.push(stale ? { record, json: () => staleListedJson(stale) } : server);
  }
  const pageSize = query.MaxResults ?? DEFAULT_PAGE_SIZE;
  const offset = decodeNextToken(query.NextToken, matches.length);
  const page = matches.slice(offset, offset + pageSize);
  // The last page carries no NextToken: that is how a caller knows to stop.
  const nextToken = offset + pageSize < matches.length ? encodeNextToken(offset + pageSize) : undefined;
  const requestId = context.requestId;
  return {
    requestId,
    // Made only if asked for (XML answers): JSON answers go out as `json`, from each server's kept JSON.
    get body() {
      const body: Record<string, unknown> = {
        RequestId: requestId,
        TotalCount: matches.length,
        MaxResults: pageSize,
      };
      if (nextToken !== undefined) body.NextToken = nextToken;
      body.IpsecServers = page.map((listed) => toListedServer(listed.record));
      return body;
    },
    json:
      `{"RequestId":${JSON.stringify(requestId)},"TotalCount":${matches.length},"MaxResults":${pageSize}` +
      (nextToken === undefined ? '' : `,"NextToken":${JSON.stringify(nextToken)}`) +
      `,"IpsecServers":[${page.map(jsonOf).join(',')}]}`,
  };
}
