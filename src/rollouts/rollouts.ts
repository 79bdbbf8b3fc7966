import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { compareStreamIds } from '../audit/audit-log.js';
import { type AuditEvent, parseStoredEvent } from '../audit/event.js';
import { rememberingLabels } from '../ipsec/psk.js';
import type { MutableParams } from '../ipsec/update-params.js';
import {
  type ChangeState,
  type ChangeView,
  TERMINAL_STATES as TERMINAL_CHANGE_STATES,
} from '../orchestrator/change.js';
import { type Changes, DEFAULT_PROFILE } from '../orchestrator/changes.js';
import {
  ChangeStateError,
  SecretKeyMissingError,
  UnexpectedScriptResultError,
} from '../orchestrator/errors.js';
import { newChangeId } from '../orchestrator/ids.js';
import type { OrchestratorKeys } from '../orchestrator/keys.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import { type ApprovalPolicy, needsApproval } from '../orchestrator/policy.js';
import type { RedisConnection, Scripts } from '../orchestrator/scripts.js';
import type { SecretBox } from '../orchestrator/secret-box.js';
import { pageQueryShape } from '../page-query.js';
import { parseOrThrow } from '../validation.js';
import {
  ApprovalRefusedError,
  NothingToRollBackError,
  RollbackInProgressError,
  RollbackTooEarlyError,
  RolloutExpiredError,
  RolloutNotFoundError,
  RolloutStateError,
} from './errors.js';
import { encodeRolloutEvent } from './events.js';
import { batchCount } from './rate-control.js';
import {
  mergeParams,
  type RolloutSpec as ParsedRollout,
  type PlanKind,
  type RolloutInput,
  type RolloutSelector,
  type RolloutSettings,
  type RolloutState,
  type RolloutView,
  rolloutInputSchema,
  type TargetPlan,
} from './rollout.js';
import { RolloutQueue } from './rollout-queue.js';
import type { RolloutSpec } from './rollout-spec.js';

export interface RolloutsDeps {
  redis: RedisConnection;
  keys: OrchestratorKeys;
  scripts: Scripts;
  changes: Changes;
  secrets: SecretBox;
  queue: RolloutQueue;
  /**
   * The deployment's approval policy: a rollout's changes run pre-approved, so a rollout whose
   * params the policy catches needs at least the policy's approvers itself.
   */
  approval?: ApprovalPolicy | undefined;
  now?: () => number;
}

/** A target as stored: public params (Psk as fingerprint) and the sealed Psk apart. */
interface StoredTarget {
  ipsecServerId: string;
  regionId: string;
  profile?: string;
  params?: Record<string, unknown>;
  pskSealed?: string;
}

/** A target ready to send: its merged params with the Psk opened. */
export interface RunnableTarget {
  index: number;
  ipsecServerId: string;
  regionId: string;
  /** The credential profile (`default` unless the target named one). */
  profile: string;
  params: MutableParams;
}

/** Targets per command while a rollout's targets are written (some 2.6 KB each at most). */
const STAGE_CHUNK = 250;
/** How long staged targets outlive a creator that died before its create script ran. */
const STAGING_TTL_MS = 10 * 60_000;

/** The one field of the library's input a spec does not carry. */
const actorSchema = z.strictObject({ actor: rolloutInputSchema.shape.actor });

export const listRolloutsQuerySchema = z.strictObject(pageQueryShape);
export type ListRolloutsQuery = z.input<typeof listRolloutsQuerySchema>;

/** A rollout as a create left it; `created` is false when one existed under the id asked for. */
export interface RolloutCreation {
  rollout: RolloutView;
  created: boolean;
}

export interface RolloutPage {
  rollouts: RolloutView[];
  nextCursor?: string;
}

/** A rollback that ended like this did not do its work: asking again makes a new one. */
const REDOABLE_ROLLBACK_STATES: ReadonlySet<RolloutState> = new Set([
  'rejected',
  'expired',
  'cancelled',
  'halted',
]);
/** How long a claimed rollback may take to be stored before a new claim may replace it. */
const ROLLBACK_CREATION_MS = 30_000;

export function newRolloutId(now: number = Date.now()): string {
  return `rol-${newChangeId(now).slice(4)}`;
}

/** States a rollout may be cancelled from. */
const CANCELLABLE: readonly RolloutState[] = [
  'planning',
  'awaiting_approval',
  'approved',
  'running',
  'paused',
];

const toNumber = (value: string | undefined) => (value ? Number(value) : 0);
const optionalNumber = (value: string | undefined) => (value ? Number(value) : undefined);
const optionalJson = <T>(value: string | undefined) => (value ? (JSON.parse(value) as T) : undefined);

function sealPsk(
  params: MutableParams | undefined,
  secrets: SecretBox,
  boundTo: string,
  label: (psk: string) => string = secrets.fingerprint,
): { params?: Record<string, unknown>; pskSealed?: string } {
  if (!params) return {};
  const { Psk, ...rest } = params;
  if (Psk === undefined) return { params: rest };
  return { params: { ...rest, Psk: label(Psk) }, pskSealed: secrets.seal(Psk, boundTo) };
}

/**
 * The library API of rollouts: create (which plans), read, approve or reject, pause, resume,
 * cancel, roll back. Every state transition is one Lua script with its audit event; the plan and
 * the run happen in the rollout worker (worker.ts).
 */
export class Rollouts {
  private readonly now: () => number;

  constructor(readonly deps: RolloutsDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** Rollouts over an orchestrator's connection, keys and changes (its own BullMQ queue). */
  static for(orchestrator: Orchestrator): Rollouts {
    return new Rollouts({
      redis: orchestrator.redis,
      keys: orchestrator.keys,
      scripts: orchestrator.scripts,
      changes: orchestrator.changes,
      secrets: orchestrator.secrets,
      queue: new RolloutQueue(orchestrator.redis, orchestrator.keys.prefix),
      approval: orchestrator.policy.approval,
    });
  }

  /**
   * `id`: the id to create it under (an Idempotency-Key slot reserves one before creating). The
   * create script is a no-op for an id that exists, so a retry under the same id is safe.
   */
  async create(input: RolloutInput, options: { id?: string } = {}): Promise<RolloutView> {
    return (await this.store(parseOrThrow(rolloutInputSchema, input, 'rollout'), options)).rollout;
  }

  /**
   * Creates a rollout from a spec that already passed rolloutSpecSchema (the API's body, parsed at
   * the border), for `actor`. The spec is trusted, not parsed again: its schema applies every rule
   * rolloutInputSchema does but the actor's, checked here; a second parse of 10,000 targets took
   * seconds. `created` tells the API's 201 from its 200: a request under an Idempotency-Key that
   * another request reserved creates the rollout only if that one has not yet.
   */
  async createParsed(
    spec: RolloutSpec,
    actor: string,
    options: { id?: string } = {},
  ): Promise<RolloutCreation> {
    const checked = parseOrThrow(actorSchema, { actor }, 'rollout');
    return this.store({ ...spec, actor: checked.actor }, options);
  }

  private async store(spec: ParsedRollout, options: { id?: string }): Promise<RolloutCreation> {
    const { keys, scripts, secrets } = this.deps;
    const carriesPsk =
      spec.params?.Psk !== undefined || (spec.targets ?? []).some((t) => t.params?.Psk !== undefined);
    if (carriesPsk && !secrets.canSeal) throw new SecretKeyMissingError();

    const now = this.now();
    const id = options.id ?? newRolloutId(now);
    const common = sealPsk(spec.params, secrets, id);
    // With a selector the targets are found (and stored) by the plan.
    const targets = spec.targets ?? [];
    const label = rememberingLabels(secrets.fingerprint);
    const storedTarget = (index: number) => {
      const target = targets[index] as (typeof targets)[number];
      const stored: StoredTarget = {
        ipsecServerId: target.ipsecServerId,
        regionId: target.regionId,
        ...(target.profile ? { profile: target.profile } : {}),
        ...sealPsk(target.params, secrets, `${id}/${index}`, label),
      };
      return JSON.stringify(stored);
    };
    // Its changes are submitted pre-approved: a rollout must not be a way round the approval
    // policy, so one whose params the policy catches needs as many approvers as a change would.
    const policy = this.deps.approval;
    const caught =
      policy !== undefined &&
      [spec.params, ...(spec.targets ?? []).map((target) => target.params)].some(
        (params) => params !== undefined && needsApproval(policy, { ...spec.params, ...params }),
      );
    const approvals = caught
      ? { ...spec.approvals, required: Math.max(spec.approvals.required, policy.required) }
      : spec.approvals;
    const settings: RolloutSettings = {
      strategy: spec.strategy,
      maxErrors: spec.maxErrors,
      pause: spec.pause,
      bakeMs: spec.bakeMs,
      ...(spec.maxChangesPerMinute ? { maxChangesPerMinute: spec.maxChangesPerMinute } : {}),
      approvals,
      planOnly: spec.planOnly,
    };
    const fields: Record<string, string> = {
      actor: spec.actor,
      settings: JSON.stringify(settings),
      targetCount: String(targets.length),
      approvalsRequired: String(approvals.required),
      approvals: '0',
    };
    if (spec.note) fields.note = spec.note;
    if (spec.selector) fields.selector = JSON.stringify(spec.selector);
    if (spec.rollbackOf) fields.rollbackOf = spec.rollbackOf;
    if (common.params) fields.params = JSON.stringify(common.params);
    if (common.pskSealed) fields.pskSealed = common.pskSealed;

    const event = encodeRolloutEvent(
      id,
      spec.actor,
      'rollout_created',
      {
        targets: targets.length,
        selector: spec.selector,
        params: common.params,
        settings,
        note: spec.note,
        rollbackOf: spec.rollbackOf,
      },
      now,
    );
    const staging = keys.rolloutTargetsStaging(id, randomBytes(8).toString('hex'));
    let result: string[];
    try {
      await this.stageTargets(staging, targets.length, storedTarget);
      result = (await scripts.run(
        'rollout-create',
        [keys.rollout(id), keys.rollouts, keys.rolloutTargets(id), keys.audit, staging],
        [id, now, JSON.stringify(fields), targets.length, event],
      )) as string[];
    } catch (error) {
      // Gone already if the script ran (renamed, or dropped); otherwise it would wait out its TTL.
      await this.deps.redis.del(staging).catch(() => undefined);
      throw error;
    }
    if (result[0] !== 'created' && result[0] !== 'existing')
      throw new UnexpectedScriptResultError('rollout-create', result);
    // An existing one still gets its plan job: whoever created it may have died before adding it.
    await this.deps.queue.add('plan', id);
    return { rollout: await this.get(id), created: result[0] === 'created' };
  }

  /**
   * Writes a rollout's `count` targets (`stored(i)`: target i as stored) into `staging` for the
   * create script to rename into place, STAGE_CHUNK at a time. Each command stays small and quick
   * for Redis, well inside the producer's command timeout whatever the rollout's size; the next
   * chunk is made (its Psks sealed) while Redis stores the one before, and only two chunks of
   * stored text are held at a time.
   */
  private async stageTargets(
    staging: string,
    count: number,
    stored: (index: number) => string,
  ): Promise<void> {
    const { redis } = this.deps;
    let previous: Promise<unknown> = Promise.resolve();
    for (let first = 0; first < count; first += STAGE_CHUNK) {
      const chunk: string[] = [];
      for (let index = first; index < Math.min(first + STAGE_CHUNK, count); index++) {
        chunk.push(String(index), stored(index));
      }
      await previous;
      // The first write sets the TTL with it: a creator that dies after it leaves nothing for long.
      previous =
        first === 0
          ? redis
              .multi()
              .hset(staging, ...chunk)
              .pexpire(staging, STAGING_TTL_MS)
              .exec()
              .then((replies) => {
                const failed = replies?.find(([error]) => error);
                if (failed) throw failed[0];
              })
          : redis.hset(staging, ...chunk);
      // Not awaited until the next chunk is ready: a failure meanwhile must not go unhandled.
      previous.catch(() => undefined);
    }
    await previous;
  }

  async get(id: string): Promise<RolloutView> {
    const record = await this.deps.redis.hgetall(this.deps.keys.rollout(id));
    if (!record.state) throw new RolloutNotFoundError(id);
    const settings = JSON.parse(record.settings ?? '{}') as RolloutSettings;
    const total = toNumber(record.total);
    const succeeded = toNumber(record.succeeded);
    const errors = toNumber(record.errors);
    return {
      id,
      state: record.state as RolloutState,
      actor: record.actor ?? '',
      note: record.note,
      params: optionalJson(record.params),
      settings,
      targetCount: toNumber(record.targetCount),
      selector: optionalJson<RolloutSelector>(record.selector),
      plan: optionalJson<Record<PlanKind, number>>(record.plan),
      approvalsRequired: toNumber(record.approvalsRequired),
      approvals: toNumber(record.approvals),
      expiresAt: optionalNumber(record.expiresAt),
      rollbackOf: record.rollbackOf,
      reason: record.reason,
      progress: {
        total,
        submitted: toNumber(record.submitted),
        inFlight: toNumber(record.inFlight),
        succeeded,
        errors,
        byState: optionalJson<Record<string, number>>(record.byState) ?? {},
        percent:
          total === 0
            ? record.state === 'completed'
              ? 100
              : 0
            : Math.floor(((succeeded + errors) * 100) / total),
        currentBatch: toNumber(record.currentBatch),
        batchCount: record.plan ? batchCount(settings.strategy, total) : undefined,
      },
      createdAt: toNumber(record.createdAt),
      updatedAt: toNumber(record.updatedAt),
      finishedAt: optionalNumber(record.finishedAt),
    };
  }

  /** The plan report, target by target (empty until planning has looked at them). */
  async plan(id: string): Promise<TargetPlan[]> {
    const entries = await this.deps.redis.hgetall(this.deps.keys.rolloutPlan(id));
    return Object.values(entries)
      .map((body) => JSON.parse(body) as TargetPlan)
      .sort((a, b) => a.index - b.index);
  }

  /** Target index → id of the change the rollout submitted for it. */
  async changeIds(id: string): Promise<Map<number, string>> {
    const entries = await this.deps.redis.hgetall(this.deps.keys.rolloutChanges(id));
    return new Map(Object.entries(entries).map(([index, changeId]) => [Number(index), changeId]));
  }

  /** The rollout's own timeline (its changes keep theirs), oldest first. */
  async events(id: string): Promise<AuditEvent[]> {
    const fields = await this.deps.redis.hgetall(this.deps.keys.rollout(id));
    const events: AuditEvent[] = [];
    for (const [name, body] of Object.entries(fields)) {
      if (name.startsWith('e:')) events.push(parseStoredEvent(name.slice(2), body));
    }
    return events.sort((a, b) => compareStreamIds(a.id, b.id));
  }

  /**
   * Stores the targets a selector resolved to (the plan does this once, before judging them): they
   * replace any stored by an earlier attempt of the same plan, which found them in the same order.
   */
  async storeResolvedTargets(
    id: string,
    targets: readonly { ipsecServerId: string; regionId: string; profile?: string | undefined }[],
  ): Promise<void> {
    const { redis, keys } = this.deps;
    const multi = redis.multi().del(keys.rolloutTargets(id));
    for (let i = 0; i < targets.length; i += 1_000) {
      const chunk: Record<string, string> = {};
      targets.slice(i, i + 1_000).forEach((target, offset) => {
        const stored: StoredTarget = {
          ipsecServerId: target.ipsecServerId,
          regionId: target.regionId,
          ...(target.profile ? { profile: target.profile } : {}),
        };
        chunk[String(i + offset)] = JSON.stringify(stored);
      });
      multi.hset(keys.rolloutTargets(id), chunk);
    }
    multi.hset(keys.rollout(id), { targetCount: String(targets.length), targetsResolved: '1' });
    await multi.exec();
  }

  /** Every target with its merged params and the Psk opened: what plan and run send. */
  async targets(id: string): Promise<RunnableTarget[]> {
    const { redis, keys, secrets } = this.deps;
    const [common, commonSealed] = await redis.hmget(keys.rollout(id), 'params', 'pskSealed');
    const commonParams = common ? (JSON.parse(common) as MutableParams) : undefined;
    if (commonParams && commonSealed) commonParams.Psk = secrets.open(commonSealed, id);
    const stored = await redis.hgetall(keys.rolloutTargets(id));
    const targets: RunnableTarget[] = [];
    for (const [field, body] of Object.entries(stored)) {
      const index = Number(field);
      const target = JSON.parse(body) as StoredTarget;
      const own = target.params as MutableParams | undefined;
      if (own && target.pskSealed) own.Psk = secrets.open(target.pskSealed, `${id}/${index}`);
      targets.push({
        index,
        ipsecServerId: target.ipsecServerId,
        regionId: target.regionId,
        profile: target.profile ?? DEFAULT_PROFILE,
        params: mergeParams(commonParams, own),
      });
    }
    return targets.sort((a, b) => a.index - b.index);
  }

  async approve(id: string, actor: string): Promise<RolloutView> {
    const { keys, scripts } = this.deps;
    const now = this.now();
    const result = (await scripts.run(
      'rollout-approve',
      [keys.rollout(id), keys.rolloutApprovals(id), keys.audit],
      [
        actor,
        now,
        encodeRolloutEvent(id, 'system', 'rollout_expired', { reason: 'approval window closed' }, now),
        encodeRolloutEvent(id, actor, 'rollout_approval', undefined, now),
        encodeRolloutEvent(id, actor, 'rollout_approved', undefined, now),
      ],
    )) as [string, (string | number)?];
    switch (result[0]) {
      case 'approved':
        await this.deps.queue.add('run', id);
        break;
      case 'recorded':
        break;
      case 'missing':
        throw new RolloutNotFoundError(id);
      case 'wrong_state':
        // Approved by this very call, its answer lost with the connection (ioredis sent it again),
        // or by this approver's retry after a failure: the same approval, not a conflict, while
        // the rollout still needs its controller. Whoever approved it may not have added the run
        // job; adding it again is free (one job id).
        if (
          (await this.deps.redis.sismember(keys.rolloutApprovals(id), actor)) === 1 &&
          (await this.addJobOf(id, String(result[1]), null))
        )
          break;
        throw new RolloutStateError(id, String(result[1]), 'approve');
      case 'expired':
        throw new RolloutExpiredError(id);
      case 'self':
      case 'duplicate':
        throw new ApprovalRefusedError(id, result[0]);
      default:
        throw new UnexpectedScriptResultError('rollout-approve', result);
    }
    return this.get(id);
  }

  async reject(id: string, actor: string, reason: string): Promise<RolloutView> {
    const submitter = await this.deps.redis.hget(this.deps.keys.rollout(id), 'actor');
    if (submitter === null) throw new RolloutNotFoundError(id);
    if (submitter === actor) throw new ApprovalRefusedError(id, 'self');
    const now = this.now();
    await this.transition(id, ['awaiting_approval'], 'rejected', 'reject', {
      fields: { reason, finishedAt: String(now) },
      events: [encodeRolloutEvent(id, actor, 'rollout_rejected', { reason }, now)],
    });
    return this.get(id);
  }

  /** Starts no new change until resumed; changes in flight finish. */
  async pause(id: string, actor: string): Promise<RolloutView> {
    await this.transition(id, ['running'], 'paused', 'pause', {
      fields: { reason: 'paused by user' },
      events: [encodeRolloutEvent(id, actor, 'rollout_paused', undefined, this.now())],
    });
    return this.get(id);
  }

  async resume(id: string, actor: string): Promise<RolloutView> {
    await this.transition(id, ['paused'], 'running', 'resume', {
      fields: { reason: '' },
      events: [encodeRolloutEvent(id, actor, 'rollout_resumed', undefined, this.now())],
    });
    await this.wakeController(id);
    return this.get(id);
  }

  /** Ends the rollout: queued changes are cancelled, changes talking to the cloud finish. */
  async cancel(id: string, actor: string): Promise<RolloutView> {
    const now = this.now();
    await this.transition(id, CANCELLABLE, 'cancelled', 'cancel', {
      fields: { finishedAt: String(now) },
      events: [encodeRolloutEvent(id, actor, 'rollout_cancelled', undefined, now)],
    });
    await this.wakeController(id);
    await this.cancelWaitingChanges(id, actor);
    return this.get(id);
  }

  /**
   * Wakes the rollout's controller, which may be parked (controller.ts) in the state the rollout
   * just left, so that it runs now rather than when its park runs out; gives the rollout its job
   * if it has none (see resumeUnfinished). A controller that parks after this, on a state it read
   * before the transition, wakes itself (worker.ts).
   */
  private async wakeController(id: string): Promise<void> {
    if (!(await this.deps.queue.wake(id))) await this.ensureJob(id);
  }

  /** Cancels the rollout's changes still waiting in their lanes (best effort: one may start meanwhile). */
  async cancelWaitingChanges(id: string, actor: string): Promise<void> {
    const { redis, keys, changes } = this.deps;
    const [submitted, outcomes] = await Promise.all([
      redis.hgetall(keys.rolloutChanges(id)),
      redis.hgetall(keys.rolloutOutcomes(id)),
    ]);
    for (const [index, changeId] of Object.entries(submitted)) {
      if (outcomes[index]) continue;
      try {
        await changes.cancel(changeId, actor);
      } catch (error) {
        if (!(error instanceof ChangeStateError)) throw error;
      }
    }
  }

  /**
   * A new rollout putting back what this one applied: for each target whose change succeeded, the
   * fields that change set, with the values of its `before` snapshot, newest change first. A Psk
   * cannot be put back (snapshots hold only its fingerprint) and is left out. The new rollout is
   * planned and approved like any other.
   *
   * A rollout has one rollback at a time: asked again (a retry, a second operator), this answers
   * the one it made, `created: false`, unless that one ended without doing its work (rejected,
   * expired, cancelled, halted), when a new one replaces it.
   */
  async rollback(
    id: string,
    actor: string,
    note?: string,
  ): Promise<{ rollout: RolloutView; created: boolean }> {
    const original = await this.get(id);
    if (!['completed', 'halted', 'cancelled'].includes(original.state)) {
      throw new RolloutStateError(id, original.state, 'roll back');
    }
    const { redis, keys } = this.deps;
    // Built once, and only when a rollback is to be made: a repeated ask returns the one made.
    let input: RolloutInput | undefined;
    const [rollbackId, claimedAt] = await redis.hmget(keys.rollout(id), 'rollbackId', 'rollbackClaimedAt');
    let seen = rollbackId ?? '';
    let seenClaimedAt = Number(claimedAt ?? 0);
    for (;;) {
      if (seen) {
        const existing = await this.get(seen).catch((error: unknown) => {
          if (error instanceof RolloutNotFoundError) return undefined;
          throw error;
        });
        if (existing && !REDOABLE_ROLLBACK_STATES.has(existing.state)) {
          // Its first creator may have died before adding its job (a plan, say): free if it has one.
          await this.ensureJob(existing.id);
          return { rollout: existing, created: false };
        }
        // Claimed, and not stored yet: another call is creating it right now.
        if (!existing && this.now() - seenClaimedAt < ROLLBACK_CREATION_MS) {
          throw new RollbackInProgressError(id, seen);
        }
      }
      input ??= await this.rollbackInput(original, actor, note);
      const newId = newRolloutId(this.now());
      const claim = (await this.deps.scripts.run(
        'rollout-claim-rollback',
        [keys.rollout(id)],
        [seen, newId, this.now()],
      )) as [string, string?, string?];
      if (claim[0] === 'missing') throw new RolloutNotFoundError(id);
      if (claim[0] === 'claimed') {
        try {
          return { rollout: await this.create(input, { id: newId }), created: true };
        } catch (error) {
          // Give the claim back (as an old one, free to take), or every ask for 30 s would hear
          // that a rollback is being created. Best effort: an old claim is taken over anyway.
          if (!(await this.exists(newId))) {
            await this.deps.scripts
              .run('rollout-claim-rollback', [keys.rollout(id)], [newId, seen, 0])
              .catch(() => undefined);
          }
          throw error;
        }
      }
      if (claim[0] !== 'taken') throw new UnexpectedScriptResultError('rollout-claim-rollback', claim);
      seen = claim[1] ?? '';
      seenClaimedAt = Number(claim[2] ?? 0);
    }
  }

  /**
   * What a rollback of `original` puts back: for each target whose change took effect, the fields
   * it set, with their `before` values, newest change first. Taking effect is read from each
   * change, not from the outcomes the controller noted: a cancelled rollout ends before the changes
   * that were talking to the cloud, and a change that ended `failed` may have been applied (its
   * verify never saw the value, or its apply's answer never came); putting back the `before`
   * values of one that was not is a no-op for the plan to show.
   */
  private async rollbackInput(original: RolloutView, actor: string, note?: string): Promise<RolloutInput> {
    const { redis, keys, changes } = this.deps;
    const id = original.id;
    const changeIds = [...(await this.changeIds(id)).values()];
    const pipeline = redis.pipeline();
    for (const changeId of changeIds) pipeline.hmget(keys.change(changeId), 'state', 'mayHaveApplied');
    const rows = ((await pipeline.exec()) ?? []).map(([, row]) => (row ?? []) as (string | null)[]);
    const unfinished = rows.filter(([state]) => state && !isTerminalChange(state)).length;
    if (unfinished > 0) throw new RollbackTooEarlyError(id, unfinished);
    const applied = await Promise.all(
      changeIds
        .filter((_changeId, i) => {
          const [state, mayHaveApplied] = rows[i] as (string | null)[];
          return state === 'succeeded' || (state === 'failed' && mayHaveApplied === '1');
        })
        .map((changeId) => changes.get(changeId)),
    );
    applied.sort((a, b) => (b.finishedAt ?? 0) - (a.finishedAt ?? 0));
    const targets = [];
    for (const change of applied) {
      const params = restoreParams(change);
      if (params)
        targets.push({
          ipsecServerId: change.ipsecServerId,
          regionId: change.regionId,
          ...(change.profile !== DEFAULT_PROFILE ? { profile: change.profile } : {}),
          params,
        });
    }
    if (targets.length === 0) throw new NothingToRollBackError(id);
    const { strategy, maxErrors, pause, bakeMs, approvals, maxChangesPerMinute } = original.settings;
    return {
      targets,
      strategy,
      maxErrors,
      // A concurrency rollout stored before pause and bakeMs were refused with it may carry them;
      // they never did anything there, and would now fail its rollback.
      ...('batches' in strategy ? { pause, bakeMs } : {}),
      ...(maxChangesPerMinute ? { maxChangesPerMinute } : {}),
      approvals,
      actor,
      note: note ?? `rollback of ${id}`,
      rollbackOf: id,
    } as RolloutInput;
  }

  private async exists(id: string): Promise<boolean> {
    return (await this.deps.redis.exists(this.deps.keys.rollout(id))) === 1;
  }

  /**
   * Gives every unfinished rollout its job again (a no-op for those that have one: job ids are
   * derived from rollout ids). Covers a process that died between a transition and adding the
   * job that follows it; the rollout worker calls it when it starts.
   */
  async resumeUnfinished(): Promise<string[]> {
    const { redis, keys } = this.deps;
    const resumed: string[] = [];
    const page = 500;
    for (let offset = 0; ; offset += page) {
      const ids = await redis.zrange(keys.rollouts, String(offset), String(offset + page - 1));
      if (ids.length === 0) return resumed;
      const pipeline = redis.pipeline();
      for (const id of ids) pipeline.hmget(keys.rollout(id), 'state', 'expiresAt');
      const rows = (await pipeline.exec()) ?? [];
      for (let i = 0; i < ids.length; i++) {
        const id = ids[i] as string;
        const [state, expiresAt] = (rows[i]?.[1] ?? []) as (string | null)[];
        if (await this.addJobOf(id, state, expiresAt)) resumed.push(id);
      }
    }
  }

  /** Gives one rollout the job its state needs, if it has none (see resumeUnfinished). */
  async ensureJob(id: string): Promise<void> {
    const [state, expiresAt] = await this.deps.redis.hmget(this.deps.keys.rollout(id), 'state', 'expiresAt');
    await this.addJobOf(id, state, expiresAt);
  }

  /** Answers whether the state needs a job (and then it has one). */
  private async addJobOf(
    id: string,
    state: string | null | undefined,
    expiresAt: string | null | undefined,
  ): Promise<boolean> {
    const { queue } = this.deps;
    if (state === 'planning') await queue.add('plan', id);
    else if (state === 'approved' || state === 'running' || state === 'paused') await queue.add('run', id);
    else if (state === 'awaiting_approval')
      await queue.add('expire', id, Math.max(0, Number(expiresAt ?? 0) - this.now()));
    else return false;
    return true;
  }

  /** One transition script call; throws RolloutStateError when the rollout is elsewhere. */
  async transition(
    id: string,
    from: readonly RolloutState[],
    to: RolloutState,
    operation: string,
    options: { fields?: Record<string, string>; events: string[] },
  ): Promise<RolloutState> {
    const { keys, scripts } = this.deps;
    const result = (await scripts.run(
      'rollout-transition',
      [keys.rollout(id), keys.audit],
      [this.now(), from.join(','), to, JSON.stringify(options.fields ?? {}), ...options.events],
    )) as string[];
    if (result[0] === 'done') return result[1] as RolloutState;
    if (result[0] === 'missing') throw new RolloutNotFoundError(id);
    if (result[0] === 'wrong_state') {
      // Already there: this very call ran before and its answer was lost (ioredis sent it again).
      if (result[1] === to) return to;
      throw new RolloutStateError(id, String(result[1]), operation);
    }
    throw new UnexpectedScriptResultError('rollout-transition', result);
  }

  /** Rollouts newest first, `limit` at a time; `nextCursor` resumes after the last one. */
  async list(query: ListRolloutsQuery = {}): Promise<RolloutPage> {
    const { cursor, limit } = parseOrThrow(listRolloutsQuerySchema, query, 'list query');
    const { redis, keys } = this.deps;
    let max = '+inf';
    let after: string | undefined;
    if (cursor) [max, after] = cursor.split(':') as [string, string];
    const rollouts: RolloutView[] = [];
    for (let offset = 0; ; ) {
      const rows = await redis.zrevrangebyscore(
        keys.rollouts,
        max,
        '-inf',
        'WITHSCORES',
        'LIMIT',
        offset,
        limit + 1,
      );
      if (rows.length === 0) return { rollouts };
      offset += rows.length / 2;
      for (let i = 0; i < rows.length; i += 2) {
        const id = rows[i] as string;
        const score = rows[i + 1] as string;
        // Rollouts created in the same millisecond share a score: resume after the cursor's id.
        if (after && score === max && id >= after) continue;
        try {
          rollouts.push(await this.get(id));
        } catch (error) {
          if (error instanceof RolloutNotFoundError) continue;
          throw error;
        }
        if (rollouts.length === limit) return { rollouts, nextCursor: `${score}:${id}` };
      }
    }
  }

  close(): Promise<void> {
    return this.deps.queue.close();
  }
}

export function isTerminalChange(state: string): boolean {
  return TERMINAL_CHANGE_STATES.has(state as ChangeState);
}

/** The params that put back, from a change's `before`, the fields the change set. */
export function restoreParams(change: ChangeView): Record<string, unknown> | undefined {
  const before = change.before;
  if (!before) return undefined;
  const set = change.params;
  const params: Record<string, unknown> = {};
  for (const field of ['LocalSubnet', 'ClientIpPool', 'IpsecServerName', 'EffectImmediately'] as const) {
    if (set[field] !== undefined && before[field] !== undefined) params[field] = before[field];
  }
  // PskEnabled can only be set to true; a server that had it off cannot be put back by this API.
  if (set.PskEnabled !== undefined && before.PskEnabled === true) params.PskEnabled = true;
  for (const nested of ['IkeConfig', 'IpsecConfig'] as const) {
    const named = set[nested] as Record<string, unknown> | undefined;
    const was = before[nested] as Record<string, unknown> | undefined;
    if (!named || !was) continue;
    const restored: Record<string, unknown> = {};
    for (const key of Object.keys(named)) if (was[key] !== undefined) restored[key] = was[key];
    if (Object.keys(restored).length > 0) params[nested] = restored;
  }
  return Object.keys(params).length > 0 ? params : undefined;
}
