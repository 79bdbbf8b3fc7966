import type { MutableParams } from '../ipsec/update-params.js';
import type { ChangeState, ChangeView } from './change.js';
import type { SecretBox } from './secret-box.js';

/** The change hash as Redis stores it: every value a string. */
export type ChangeRecord = Record<string, string>;

/**
 * The fields a worker needs to run a change, read in one HMGET by the acquire script (the first
 * six are the ones the script itself looks at). Audit timeline fields (`e:<stream id>`) are
 * never read on this path.
 */
export const RUN_FIELDS = [
  'state',
  'runs',
  'lastCode',
  'regionId',
  'profile',
  'nextAt',
  'ipsecServerId',
  'params',
  'pskSealed',
  'clientToken',
  'before',
  'sentConfigs',
  'mayHaveApplied',
  'busyCount',
  'busySince',
  'lockedCount',
  'lockedSince',
  'transientCount',
  'transientSince',
  'throttledCount',
  'throttledSince',
] as const;

export function recordFromValues(
  names: readonly string[],
  values: readonly (string | null)[],
  from = 0,
): ChangeRecord {
  const record: ChangeRecord = {};
  for (let i = 0; i < names.length; i++) {
    const value = values[i + from];
    if (value !== null && value !== undefined && value !== '') record[names[i] as string] = value;
  }
  return record;
}

const optionalNumber = (value: string | undefined) => (value ? Number(value) : undefined);
const optionalJson = (value: string | undefined) =>
  value ? (JSON.parse(value) as Record<string, unknown>) : undefined;

export function toChangeView(id: string, record: ChangeRecord): ChangeView {
  return {
    id,
    state: record.state as ChangeState,
    step: record.step,
    ipsecServerId: record.ipsecServerId ?? '',
    regionId: record.regionId ?? '',
    params: optionalJson(record.params) ?? {},
    actor: record.actor ?? '',
    note: record.note,
    clientToken: record.clientToken ?? '',
    profile: record.profile ?? 'default',
    runs: Number(record.runs ?? 0),
    lastCode: record.lastCode,
    nextAt: optionalNumber(record.nextAt),
    createdAt: Number(record.createdAt ?? 0),
    updatedAt: Number(record.updatedAt ?? 0),
    finishedAt: optionalNumber(record.finishedAt),
    before: optionalJson(record.before),
    after: optionalJson(record.after),
    approval: record.approvalsRequired
      ? {
          required: Number(record.approvalsRequired),
          approvers: record.approvers ? (JSON.parse(record.approvers) as string[]) : [],
          expiresAt: Number(record.expiresAt ?? 0),
          reason: record.reason,
        }
      : undefined,
  };
}

/** The params to send: the public params with the sealed Psk opened again. */
export function paramsToSend(id: string, record: ChangeRecord, secrets: SecretBox): MutableParams {
  const params = JSON.parse(record.params ?? '{}') as MutableParams;
  if (record.pskSealed) params.Psk = secrets.open(record.pskSealed, id);
  return params;
}
