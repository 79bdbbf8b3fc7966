import {
  pickMutable,
  type UpdateIpsecServerParams,
  updateIpsecServerParamsSchema,
} from '../../ipsec/update-params.js';
import { parseWireParams } from '../../ipsec/wire.js';
import { type SimError, simErrors } from '../errors.js';
import {
  DRY_RUNS_KEPT,
  defaultIkeConfig,
  defaultIpsecConfig,
  keepStaleRead,
  type LiveServer,
  recordChanged,
  type SimHistoryEntry,
} from '../fleet.js';
import { parseParams, rememberingParser } from '../params.js';
import { simPskLabel } from '../psk-label.js';
import { checkAddressPlan } from '../rules.js';
import type { ActionContext, ActionResult } from './types.js';

// What a rollout sends to every server alike, and each server's id (its dry run, apply and
// retries); names, tokens and keys differ from call to call.
const parseUpdateParams = rememberingParser(updateIpsecServerParamsSchema, parseWireParams, [
  'IpsecServerId',
  'RegionId',
  'LocalSubnet',
  'ClientIpPool',
  'EffectImmediately',
  'IkeConfig',
  'IpsecConfig',
  'PskEnabled',
  'DryRun',
]);

/**
 * UpdateIpsecServer. The checks run in this order (the steps before it, in dispatch.ts: auth →
 * action → throttle → injected fail/reset-before, after the injected latency):
 *
 *   params (missing/invalid) → server lookup → ownership → financial lock → ClientToken
 *   replay/mismatch → configuring window → busyRate → business rules → DryRun → apply
 *
 * The token check comes before the configuring window on purpose: the typical retry with the
 * same token follows a lost response, when the first call's own configuring window is running;
 * it must get the first answer, not Configuring.
 */
export function updateIpsecServer(context: ActionContext): ActionResult | SimError {
  const { state, key, requestId, now } = context;
  const params = parseParams(parseUpdateParams, context.params);

  const server = state.fleet.get(params.IpsecServerId);
  // Another region's server is as unknown to this endpoint as a made-up id.
  if (!server || server.record.RegionId !== params.RegionId)
    throw simErrors.ipsecServerNotFound(params.IpsecServerId);
  if (server.record.ownerAccessKeyId !== key.accessKeyId) throw simErrors.forbidden();
  if (state.faults.isFinancialLocked(server.record.IpsecServerId, server.record.ownerAccessKeyId)) {
    throw simErrors.financialLocked();
  }

  const dryRun = params.DryRun === true;
  const clientToken = dryRun ? undefined : params.ClientToken;
  let paramsKey = '';
  if (clientToken !== undefined) {
    paramsKey = idempotencyKey(context.params);
    const found = state.tokens.lookup(key.accessKeyId, clientToken, paramsKey, now);
    if (found.kind === 'replay') {
      if (now - found.remembered.at < state.faults.tokenProcessingMs) return simErrors.lastTokenProcessing();
      state.stats.idempotentReplays++;
      return { requestId: found.remembered.requestId, body: found.remembered.body };
    }
    if (found.kind === 'mismatch') throw simErrors.idempotentParameterMismatch();
  }

  // A gateway still busy is an everyday answer too (pipelines back off and retry on it).
  if (server.configuringUntil > now) return simErrors.configuring();
  if (context.draw.busyRoll < state.faults.busyRate) return simErrors.configuring();
  checkAddressPlan(server.record, params);
  if (dryRun) {
    state.stats.dryRuns++;
    server.dryRuns.push(historyEntry(params, requestId, now));
    if (server.dryRuns.length > DRY_RUNS_KEPT) server.dryRuns.shift();
    return simErrors.dryRunPassed();
  }

  const staleReadMs = state.faults.staleReadMs;
  if (staleReadMs > 0) keepStaleRead(server, now + staleReadMs);
  apply(server, params, requestId, now, state.faults.partialConfigs);
  const configuringMs = state.faults.configuringMs;
  server.configuringUntil = configuringMs > 0 ? now + configuringMs : 0;
  state.stats.applies++;
  const body = { RequestId: requestId };
  if (clientToken !== undefined)
    state.tokens.remember(key.accessKeyId, clientToken, { paramsKey, requestId, body, at: now });
  return { requestId, body };
}

/** Not part of what a replay must repeat: the token itself, and whether the call was a dry run. */
const NOT_COMPARED = new Set(['ClientToken', 'DryRun']);

/**
 * The parameters that must repeat for a replay, as received: the cloud compares what was sent,
 * so a LocalSubnet written `a, b` or an IkeConfig with its keys in another order is another
 * request (IdempotentParameterMismatch) even though it parses to the same change. Only the order
 * of the parameters does not count, as neither query strings nor form bodies fix one. The
 * envelope (signature, nonce, timestamp, account parameters) is already gone from these.
 */
function idempotencyKey(received: Readonly<Record<string, string>>): string {
  const names = Object.keys(received)
    .filter((name) => !NOT_COMPARED.has(name))
    .sort();
  return JSON.stringify(names.map((name) => [name, received[name]]));
}

/**
 * Top-level fields a call leaves out stay as they are. A config the call names is merged into the
 * current one (`keep`), or replaces it over the documented defaults (`defaults`).
 */
function apply(
  server: LiveServer,
  params: UpdateIpsecServerParams,
  requestId: string,
  now: number,
  partialConfigs: 'keep' | 'defaults',
): void {
  const record = server.record;
  recordChanged(server);
  if (params.LocalSubnet !== undefined) record.LocalSubnet = params.LocalSubnet;
  if (params.ClientIpPool !== undefined) record.ClientIpPool = params.ClientIpPool;
  if (params.IpsecServerName !== undefined) record.IpsecServerName = params.IpsecServerName;
  if (params.EffectImmediately !== undefined) record.EffectImmediately = params.EffectImmediately;
  if (params.PskEnabled !== undefined) record.PskEnabled = params.PskEnabled;
  if (params.Psk !== undefined) record.Psk = params.Psk;
  if (params.IkeConfig) {
    if (partialConfigs === 'defaults') record.IkeConfig = defaultIkeConfig(record.InternetIp);
    for (const [name, value] of Object.entries(params.IkeConfig)) {
      if (value !== undefined) (record.IkeConfig as unknown as Record<string, unknown>)[name] = value;
    }
  }
  if (params.IpsecConfig) {
    if (partialConfigs === 'defaults') record.IpsecConfig = defaultIpsecConfig();
    for (const [name, value] of Object.entries(params.IpsecConfig)) {
      if (value !== undefined) (record.IpsecConfig as unknown as Record<string, unknown>)[name] = value;
    }
  }
  server.history.push(historyEntry(params, requestId, now));
}

/** What a call asked for, as the history keeps it: the mutable fields, the Psk as its label. */
function historyEntry(params: UpdateIpsecServerParams, requestId: string, now: number): SimHistoryEntry {
  const asked: Record<string, unknown> = { ...pickMutable(params) };
  if (typeof asked.Psk === 'string') asked.Psk = simPskLabel(asked.Psk);
  const entry: SimHistoryEntry = { at: new Date(now).toISOString(), requestId, params: asked };
  if (params.ClientToken !== undefined) entry.clientToken = params.ClientToken;
  return entry;
}
