import { setTimeout as sleep } from 'node:timers/promises';
import { AliyunApiError } from '../aliyun/errors.js';
import type { RpcCaller } from '../aliyun/types.js';
import { sendDryRun } from '../ipsec/api.js';
import { classifyError } from '../ipsec/classify-error.js';
import { diffConfig } from '../ipsec/diff.js';
import { IpsecServerNotFoundError } from '../ipsec/errors.js';
import type { ServerReader } from '../orchestrator/server-reader.js';
import { RolloutStateError } from './errors.js';
import { encodeRolloutEvent } from './events.js';
import type { PlanKind, RolloutSettings, TargetPlan } from './rollout.js';
import type { Rollouts, RunnableTarget } from './rollouts.js';

export interface PlannerDeps {
  rollouts: Rollouts;
  cloud(regionId: string): { caller: RpcCaller; reader: ServerReader };
  /** Targets looked at at once (a dry run and a batched read each). */
  concurrency: number;
  callTimeoutMs: number;
  /** Retries of a busy, throttled or transient answer before the target is `unknown`. */
  retries?: number;
  retryBaseMs?: number;
}

/** Codes that mean "this account or server may not be changed now", not "these params are wrong". */
const BLOCKING_CODES = new Set(['VpnGateway.FinancialLocked', 'Forbidden']);

function codeOf(error: unknown): { code: string; message: string } {
  if (error instanceof AliyunApiError) return { code: error.code, message: error.message };
  if (error instanceof IpsecServerNotFoundError)
    return { code: 'IpsecServerNotFound', message: error.message };
  const code = (error as { code?: unknown }).code;
  return {
    code: typeof code === 'string' ? code : 'Error',
    message: (error as Error).message ?? String(error),
  };
}

/**
 * Judges one target: a dry run (which changes nothing, so it needs no lane) and a read of its
 * current config, side by side. The dry run's verdict comes first: a target the cloud refuses is
 * rejected or blocked whatever its config; one it accepts is a no-op when the server shows
 * everything the params set, else a would-change with the field diff.
 */
export async function planTarget(deps: PlannerDeps, target: RunnableTarget): Promise<TargetPlan> {
  const { caller, reader } = deps.cloud(target.regionId);
  const base = { index: target.index, ipsecServerId: target.ipsecServerId, regionId: target.regionId };
  const retries = deps.retries ?? 4;
  for (let attempt = 0; ; attempt++) {
    const [dryRun, read] = await Promise.allSettled([
      sendDryRun(
        caller,
        { ...target.params, IpsecServerId: target.ipsecServerId, RegionId: target.regionId },
        { timeoutMs: deps.callTimeoutMs },
      ),
      reader.read(target.regionId, target.ipsecServerId),
    ]);
    const failure =
      dryRun.status === 'rejected' ? dryRun.reason : read.status === 'rejected' ? read.reason : undefined;
    if (failure === undefined && read.status === 'fulfilled') {
      const diff = diffConfig(read.value, target.params);
      return diff.length === 0 ? { ...base, kind: 'no-op' } : { ...base, kind: 'would-change', diff };
    }
    const { code, message } = codeOf(failure);
    const errorClass = failure instanceof IpsecServerNotFoundError ? 'permanent' : classifyError(failure);
    if (BLOCKING_CODES.has(code) || errorClass === 'account-locked')
      return { ...base, kind: 'blocked', code, message };
    if (errorClass === 'permanent') return { ...base, kind: 'rejected', code, message };
    if (attempt >= retries) return { ...base, kind: 'unknown', code, message };
    await sleep(Math.round(Math.random() * (deps.retryBaseMs ?? 250) * 2 ** attempt));
  }
}

/**
 * Plans a rollout: every target not judged yet (a resumed job skips those a dead worker finished),
 * `concurrency` at a time, each verdict stored as it comes; then `planned` (planOnly) or
 * `awaiting_approval` with the approval window opened.
 */
export async function planRollout(deps: PlannerDeps, rolloutId: string): Promise<void> {
  const { rollouts } = deps;
  const { redis, keys, queue } = rollouts.deps;
  const rollout = await rollouts.get(rolloutId);
  if (rollout.state !== 'planning') return;
  const done = new Set(Object.keys(await redis.hgetall(keys.rolloutPlan(rolloutId))).map(Number));
  const todo = (await rollouts.targets(rolloutId)).filter((target) => !done.has(target.index));

  let next = 0;
  const lane = async () => {
    while (next < todo.length) {
      const target = todo[next++] as RunnableTarget;
      const verdict = await planTarget(deps, target);
      await redis.hset(keys.rolloutPlan(rolloutId), String(target.index), JSON.stringify(verdict));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(deps.concurrency, todo.length)) }, lane));

  const counts: Record<PlanKind, number> = {
    'would-change': 0,
    'no-op': 0,
    rejected: 0,
    blocked: 0,
    unknown: 0,
  };
  for (const verdict of await rollouts.plan(rolloutId)) counts[verdict.kind]++;
  const settings: RolloutSettings = rollout.settings;
  const now = Date.now();
  const fields: Record<string, string> = {
    plan: JSON.stringify(counts),
    total: String(counts['would-change']),
  };
  const planned = encodeRolloutEvent(rolloutId, 'system', 'rollout_planned', { plan: counts }, now);
  try {
    if (settings.planOnly) {
      fields.finishedAt = String(now);
      await rollouts.transition(rolloutId, ['planning'], 'planned', 'plan', { fields, events: [planned] });
      return;
    }
    const expiresAt = now + settings.approvals.expiresMs;
    fields.expiresAt = String(expiresAt);
    await rollouts.transition(rolloutId, ['planning'], 'awaiting_approval', 'plan', {
      fields,
      events: [
        planned,
        encodeRolloutEvent(rolloutId, 'system', 'rollout_awaiting_approval', { expiresAt }, now),
      ],
    });
  } catch (error) {
    // Cancelled while it was being planned: the plan stays readable, nothing else follows.
    if (error instanceof RolloutStateError) return;
    throw error;
  }
  await queue.add('expire', rolloutId, settings.approvals.expiresMs);
}

/** The `expire` job: closes the approval window of a rollout still waiting for approvals. */
export async function expireRollout(rollouts: Rollouts, rolloutId: string): Promise<void> {
  const rollout = await rollouts.get(rolloutId);
  if (rollout.state !== 'awaiting_approval') return;
  // A delayed job may wake a little early; approve() refuses late approvals in any case.
  const early = (rollout.expiresAt ?? 0) - Date.now();
  if (early > 5_000) return;
  if (early > 0) await sleep(early);
  const now = Date.now();
  try {
    await rollouts.transition(rolloutId, ['awaiting_approval'], 'expired', 'expire', {
      fields: { finishedAt: String(now), reason: 'approval window closed' },
      events: [
        encodeRolloutEvent(rolloutId, 'system', 'rollout_expired', { reason: 'approval window closed' }, now),
      ],
    });
  } catch {
    // Approved, rejected or cancelled meanwhile: nothing to expire.
  }
}
