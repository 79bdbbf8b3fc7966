import { parseOrThrow } from '../validation.js';
import { IKE_CONFIG_KEYS, type IkeConfig } from './ike-config.js';
import { IPSEC_CONFIG_KEYS, type IpsecConfig } from './ipsec-config.js';
import { type ListIpsecServersQuery, listIpsecServersQuerySchema } from './list-request.js';
import {
  MUTABLE_FIELDS,
  type UpdateIpsecServerParams,
  updateIpsecServerParamsSchema,
} from './update-params.js';

/**
 * RPC wire encoding: every parameter is a string in the query string.
 *
 * IkeConfig/IpsecConfig go out as canonical JSON (documented key order, absent keys left out) so
 * that the same change always produces the same bytes: the ClientToken of a retried apply must
 * come with identical parameters or the cloud answers IdempotentParameterMismatch, and audit
 * records of the same change compare equal.
 */

/** Wire parameters: names to string values, nothing undefined. */
export type WireParams = Record<string, string>;

const UPDATE_PARAM_ORDER = ['IpsecServerId', 'RegionId', ...MUTABLE_FIELDS, 'ClientToken', 'DryRun'] as const;

export function canonicalIkeConfigJson(config: IkeConfig): string {
  return canonicalJson(IKE_CONFIG_KEYS, config);
}

export function canonicalIpsecConfigJson(config: IpsecConfig): string {
  return canonicalJson(IPSEC_CONFIG_KEYS, config);
}

function canonicalJson<K extends string>(keys: readonly K[], config: Partial<Record<K, unknown>>): string {
  const ordered: Record<string, unknown> = {};
  for (const key of keys) {
    if (config[key] !== undefined) ordered[key] = config[key];
  }
  return JSON.stringify(ordered);
}

/** Validated UpdateIpsecServer params → the string parameters the client signs and sends. */
export function toWireParams(params: UpdateIpsecServerParams): WireParams {
  const wire: WireParams = {};
  for (const name of UPDATE_PARAM_ORDER) {
    const value = params[name];
    if (value === undefined) continue;
    if (name === 'IkeConfig') wire[name] = canonicalIkeConfigJson(value as IkeConfig);
    else if (name === 'IpsecConfig') wire[name] = canonicalIpsecConfigJson(value as IpsecConfig);
    else wire[name] = String(value);
  }
  return wire;
}

/**
 * The inverse of toWireParams, for the receiving side (the simulator): wire strings → typed
 * params, with every rule checked. Common parameters (Action, Version, signature fields) must be
 * removed first; anything left that UpdateIpsecServer does not take is refused.
 * Throws InvalidInputError naming each bad field.
 */
export function parseWireParams(wire: Readonly<Record<string, string | undefined>>): UpdateIpsecServerParams {
  return parseOrThrow(updateIpsecServerParamsSchema, wire, 'UpdateIpsecServer parameters');
}

/**
 * RPC list parameters are flattened as the official SDK does (openapi-core's flatMap):
 * `IpsecServerId.1=a&IpsecServerId.2=b`, numbered from 1 in list order.
 */
export function toListWireParams(query: ListIpsecServersQuery): WireParams {
  const wire: WireParams = {};
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        wire[`${name}.${index + 1}`] = String(item);
      });
    } else {
      wire[name] = String(value);
    }
  }
  return wire;
}

const ID_LIST_ITEM = /^IpsecServerId\.([1-9]\d*)$/;

/**
 * The inverse of toListWireParams: gathers `IpsecServerId.N` into a list ordered by N (gaps are
 * tolerated, as the SDK skips null items without renumbering) and validates the whole query.
 * Throws InvalidInputError naming each bad field.
 */
export function parseListWireParams(
  wire: Readonly<Record<string, string | undefined>>,
): ListIpsecServersQuery {
  const rest: Record<string, unknown> = {};
  const items: Array<[number, string | undefined]> = [];
  for (const [name, value] of Object.entries(wire)) {
    const item = ID_LIST_ITEM.exec(name);
    if (item) items.push([Number(item[1]), value]);
    else rest[name] = value;
  }
  if (items.length > 0) {
    rest.IpsecServerId = items.sort(([a], [b]) => a - b).map(([, value]) => value);
  }
  return parseOrThrow(listIpsecServersQuerySchema, rest, 'ListIpsecServers parameters');
}
