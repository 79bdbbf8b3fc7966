import type { MutableParams } from '../ipsec/update-params.js';
import type { ChangeState, ChangeView } from './change.js';
import type { SecretBox } from './secret-box.js';

/** The change hash as Redis stores it: every value a string. */
export type ChangeRecord = Record<string, string>;

export function recordFromPairs(pairs: readonly string[], from = 0): ChangeRecord {
  const record: ChangeRecord = {};
  for (let i = from; i + 1 < pairs.length; i += 2) record[pairs[i] as string] = pairs[i + 1] as string;
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
    runs: Number(record.runs ?? 0),
    lastCode: record.lastCode,
    nextAt: optionalNumber(record.nextAt),
    createdAt: Number(record.createdAt ?? 0),
    updatedAt: Number(record.updatedAt ?? 0),
    finishedAt: optionalNumber(record.finishedAt),
    before: optionalJson(record.before),
    after: optionalJson(record.after),
  };
}

/** The params to send: the public params with the sealed Psk opened again. */
export function paramsToSend(id: string, record: ChangeRecord, secrets: SecretBox): MutableParams {
  const params = JSON.parse(record.params ?? '{}') as MutableParams;
  if (record.pskSealed) params.Psk = secrets.open(record.pskSealed, id);
  return params;
}
