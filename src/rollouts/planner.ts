import { setTimeout as sleep } from 'node:timers/promises';
import { AliyunApiError } from '../aliyun/errors.js';
import type { RpcCaller } from '../aliyun/types.js';
import { IpsecFleetError } from '../errors.js';
import { listIpsecServers, sendDryRun } from '../ipsec/api.js';
import { classifyError } from '../ipsec/classify-error.js';
import { completeConfigs } from '../ipsec/complete-configs.js';
import { diffConfig } from '../ipsec/diff.js';
import { IpsecServerNotFoundError } from '../ipsec/errors.js';
import { MAX_PAGE_SIZE } from '../ipsec/list-request.js';
import type { PskFingerprint } from '../ipsec/psk.js';
import type { IpsecServer } from '../ipsec/server.js';
import type { MutableParams } from '../ipsec/update-params.js';
import { DEFAULT_PROFILE } from '../orchestrator/changes.js';
import { UnknownProfileError } from '../orchestrator/errors.js';
import { type PipelinePolicy, pipelinePolicySchema, retryDelay } from '../orchestrator/policy.js';
import type { ServerReader } from '../orchestrator/server-reader.js';
import { RolloutStateError } from './errors.js';
import { encodeRolloutEvent } from './events.js';
import { globMatches } from './glob.js';
import {
  MAX_TARGETS,
  type PlanKind,
  type RolloutSelector,
  type RolloutSettings,
  RUN_VERDICTS,
  type TargetPlan,
} from './rollout.js';
import type { Rollouts, RunnableTarget } from './rollouts.js';

export interface PlannerDeps {
  rollouts: Rollouts;
  /** The deployment's Psk labels, for a plan's diff of a Psk rotation. */
  pskFingerprint: PskFingerprint;
  /** The cloud client of a credential profile for a region; throws UnknownProfileError. */
  cloud(profile: string, regionId: string): { caller: RpcCaller; reader: ServerReader };
  /** Targets looked at at once (a dry run and a batched read each). */
  concurrency: number;
  callTimeoutMs: number;
  /**
   * How busy, transient and throttled answers are retried (the pipeline policy's rules; DESIGN's
   * defaults unless told). A target still failing when the rule gives up is `unknown`.
   */
  policy?: Pick<PipelinePolicy, 'busy' | 'transient' | 'throttled'>;
  /** The longest one target's retries may wait in all, whatever the rules allow (default 60 s). */
  maxWaitMs?: number;
}

/** The default cap on one target's retries in a plan. */
export const PLAN_MAX_WAIT_MS = 60_000;

const DEFAULT_POLICY = pipelinePolicySchema.parse({});

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
  const base: Omit<TargetPlan, 'kind'> = {
    index: target.index,
    ipsecServerId: target.ipsecServerId,
    regionId: target.regionId,
  };
  if (target.profile !== DEFAULT_PROFILE) base.profile = target.profile;
  let cloud: { caller: RpcCaller; reader: ServerReader };
  try {
    cloud = deps.cloud(target.profile, target.regionId);
  } catch (error) {
    // A profile this worker does not know: the change would be rejected, so is the target.
    if (error instanceof UnknownProfileError)
      return { ...base, kind: 'rejected', code: error.code, message: error.message };
    throw error;
  }
  const { caller, reader } = cloud;
  const policy = deps.policy ?? DEFAULT_POLICY;
  const maxWaitMs = deps.maxWaitMs ?? PLAN_MAX_WAIT_MS;
  const started = Date.now();
  const attempts = { busy: 0, transient: 0, throttled: 0 };
  for (;;) {
    const { failure, current } = await dryRunAndRead(deps, target, caller, reader);
    if (failure === undefined && current !== undefined) {
      const diff = diffConfig(current, target.params, deps.pskFingerprint);
      return diff.length === 0 ? { ...base, kind: 'no-op' } : { ...base, kind: 'would-change', diff };
    }
    const { code, message } = codeOf(failure);
    const errorClass = failure instanceof IpsecServerNotFoundError ? 'permanent' : classifyError(failure);
    if (BLOCKING_CODES.has(code) || errorClass === 'account-locked')
      return { ...base, kind: 'blocked', code, message };
    if (errorClass === 'permanent') return { ...base, kind: 'rejected', code, message };
    // Busy, throttled or transient: retried as the change pipeline would, within a bounded wait.
    const kind = errorClass === 'busy' || errorClass === 'throttled' ? errorClass : 'transient';
    const rule = policy[kind];
    attempts[kind]++;
    const delay = retryDelay(rule, attempts[kind], failure);
    const waitLimit = Math.min(maxWaitMs, rule.giveUpAfterMs ?? maxWaitMs);
    if (
      (rule.maxAttempts !== undefined && attempts[kind] >= rule.maxAttempts) ||
      Date.now() - started + delay > waitLimit
    )
      return { ...base, kind: 'unknown', code, message };
    await sleep(delay);
  }
}

/**
 * One dry run of the params the pipeline will send, and the server's current config. A named
 * config is sent whole, filled in from the server (completeConfigs), so the read comes first and
 * the dry run checks that; otherwise both go out side by side.
 */
async function dryRunAndRead(
  deps: PlannerDeps,
  target: RunnableTarget,
  caller: RpcCaller,
  reader: ServerReader,
): Promise<{ failure?: unknown; current?: IpsecServer }> {
  const dryRun = (params: MutableParams) =>
    sendDryRun(
      caller,
      { ...params, IpsecServerId: target.ipsecServerId, RegionId: target.regionId },
      { timeoutMs: deps.callTimeoutMs },
    );
  const read = () => reader.read(target.regionId, target.ipsecServerId);
  if (target.params.IkeConfig !== undefined || target.params.IpsecConfig !== undefined) {
    try {
      const current = await read();
      await dryRun(completeConfigs(target.params, current).params);
      return { current };
    } catch (failure) {
      return { failure };
    }
  }
  const [checked, current] = await Promise.allSettled([dryRun(target.params), read()]);
  if (checked.status === 'rejected') return { failure: checked.reason };
  if (current.status === 'rejected') return { failure: current.reason };
  return { current: current.value };
}

/** A selector that cannot become targets: too many, none, or a listing the cloud refused. */
export class SelectorError extends IpsecFleetError {
  constructor(message: string) {
    super('SELECTOR_INVALID', message);
  }
}

/**
 * The targets of a selector: ListIpsecServers per region (per VPN gateway when given, which the
 * API filters on), names matched against the glob, each server once, in region/gateway order as
 * listed, so that a plan resumed after a crash finds the same targets at the same indexes. More
 * than MAX_TARGETS matches is an error (stopping at the first one too many), as is none.
 */
export async function resolveSelector(
  deps: Pick<PlannerDeps, 'cloud' | 'callTimeoutMs'>,
  selector: RolloutSelector,
  maxTargets = MAX_TARGETS,
): Promise<{ ipsecServerId: string; regionId: string; profile?: string }[]> {
  const profile = selector.profile ?? DEFAULT_PROFILE;
  const { namePattern } = selector;
  const seen = new Set<string>();
  const found: { ipsecServerId: string; regionId: string; profile?: string }[] = [];
  for (const regionId of selector.regions) {
    let caller: RpcCaller;
    try {
      caller = deps.cloud(profile, regionId).caller;
    } catch (error) {
      if (error instanceof UnknownProfileError) throw new SelectorError(`selector: ${error.message}`);
      throw error;
    }
    for (const vpnGatewayId of selector.vpnGatewayIds ?? [undefined]) {
      const query = {
        RegionId: regionId,
        MaxResults: MAX_PAGE_SIZE,
        ...(vpnGatewayId ? { VpnGatewayId: vpnGatewayId } : {}),
      };
      try {
        for await (const server of listIpsecServers(caller, query, { timeoutMs: deps.callTimeoutMs })) {
          if (seen.has(server.IpsecServerId)) continue;
          if (namePattern && !globMatches(namePattern, server.IpsecServerName ?? '')) continue;
          seen.add(server.IpsecServerId);
          if (found.length >= maxTargets) {
            throw new SelectorError(
              `selector matches more than ${maxTargets} IPsec servers; narrow it (regions, vpnGatewayIds, namePattern) or split the rollout`,
            );
          }
          found.push({
            ipsecServerId: server.IpsecServerId,
            regionId,
            ...(profile !== DEFAULT_PROFILE ? { profile } : {}),
          });
        }
      } catch (error) {
        if (error instanceof SelectorError) throw error;
        // Busy, throttled or transient: the plan job is retried. Anything else will not pass.
        if (classifyError(error) === 'permanent' || classifyError(error) === 'account-locked') {
          const { code, message } = codeOf(error);
          throw new SelectorError(`selector: ListIpsecServers in ${regionId} failed: ${code}: ${message}`);
        }
        throw error;
      }
    }
  }
  if (found.length === 0) throw new SelectorError('selector matches no IPsec server');
  return found;
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
  if (rollout.selector && !(await redis.hget(keys.rollout(rolloutId), 'targetsResolved'))) {
    const found = await resolveSelector(deps, rollout.selector).catch((error: unknown) => {
      if (error instanceof SelectorError) return error;
      throw error;
    });
    if (found instanceof SelectorError) {
      const now = Date.now();
      await rollouts
        .transition(rolloutId, ['planning'], 'rejected', 'plan', {
          fields: { finishedAt: String(now), reason: found.message },
          events: [
            encodeRolloutEvent(rolloutId, 'system', 'rollout_rejected', { reason: found.message }, now),
          ],
        })
        .catch((error) => {
          if (!(error instanceof RolloutStateError)) throw error;
        });
      return;
    }
    await rollouts.storeResolvedTargets(rolloutId, found);
  }
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
    // What the run will submit, as the approvers should see it (the controller counts the same).
    total: String([...RUN_VERDICTS].reduce((sum, kind) => sum + counts[kind], 0)),
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

/**
 * The `expire` job: closes the approval window of a rollout still waiting for approvals. Answers
 * how many ms too early it came (0 once done, or with nothing to do), for the job to wait again.
 */
export async function expireRollout(rollouts: Rollouts, rolloutId: string): Promise<number> {
  const rollout = await rollouts.get(rolloutId);
  if (rollout.state !== 'awaiting_approval') return 0;
  // Woken early (its worker's clock ahead of the one that set the window): its job waits again.
  // Ended instead, it would leave the window open for good; approve() refuses late approvals,
  // but nothing would close the rollout.
  const early = (rollout.expiresAt ?? 0) - Date.now();
  if (early > 0) return early;
  const now = Date.now();
  try {
    await rollouts.transition(rolloutId, ['awaiting_approval'], 'expired', 'expire', {
      fields: { finishedAt: String(now), reason: 'approval window closed' },
      events: [
        encodeRolloutEvent(rolloutId, 'system', 'rollout_expired', { reason: 'approval window closed' }, now),
      ],
    });
  } catch (error) {
    // Approved, rejected or cancelled meanwhile: nothing to expire. Anything else (Redis away)
    // fails the job, which BullMQ retries, rather than leaving the window open for good.
    if (!(error instanceof RolloutStateError)) throw error;
  }
  return 0;
}
