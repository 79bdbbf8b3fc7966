import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import { timelineOf } from '../audit/audit-log.js';
import { type AuditContext, type AuditEvent, encodeEvent } from '../audit/event.js';
import { parseOrThrow } from '../validation.js';
import {
  approvalReasonSchema,
  CANCELLABLE_STATES,
  type ChangeState,
  type ChangeSubmissionInput,
  type ChangeView,
  changeSubmissionSchema,
  type ListChangesQuery,
  listChangesQuerySchema,
  TERMINAL_STATES,
} from './change.js';
import type { ChangeJobData, ChangeQueue } from './change-queue.js';
import { toChangeView } from './change-record.js';
import {
  ApproverIsSubmitterError,
  ChangeNotFoundError,
  ChangeStateError,
  IdempotencyConflictError,
  RolloutNotRunningError,
  SecretKeyMissingError,
  UnexpectedScriptResultError,
} from './errors.js';
import { clientTokenFor, newChangeId } from './ids.js';
import type { OrchestratorKeys } from './keys.js';
import { type ApprovalPolicy, needsApproval } from './policy.js';
import type { RedisConnection, Scripts } from './scripts.js';
import type { SecretBox } from './secret-box.js';
import { delayUntilWoken, wakeJob } from './wake-job.js';

export const DEFAULT_PROFILE = 'default';
const EXPIRED_DETAILS = { reason: 'approval window closed' };

export interface ChangesDeps {
  redis: RedisConnection;
  keys: OrchestratorKeys;
  scripts: Scripts;
  queue: ChangeQueue;
  secrets: SecretBox;
  idempotencyRetentionMs: number;
  /** Which changes wait for approval; none when absent. */
  approval?: ApprovalPolicy | undefined;
  now?: () => number;
}

export interface SubmitOptions {
  /**
   * The change was approved already (a rollout's change, approved with its rollout): the approval
   * policy does not hold it again.
   */
  preApproved?: boolean;
  /**
   * The change of a rollout's target: submit.lua creates it only while the rollout is `running`,
   * and records it in the rollout's changes (target index → change id) in the
   * same script. Otherwise nothing is written and RolloutNotRunningError is thrown: a pause or
   * cancel the API acknowledged is never followed by a new change of that rollout.
   */
  rollout?: { id: string; targetIndex: number };
}

export interface SubmitResult {
  change: ChangeView;
  /** False when an earlier submission with the same idempotency key and body was returned. */
  created: boolean;
}

export interface LaneEntry {
  position: number;
  id: string;
  state: string;
  step: string | undefined;
  actor: string;
  createdAt: number;
}

export interface ChangePage {
  changes: ChangeView[];
  nextCursor: string | undefined;
}

export function auditContext(
  change: Pick<ChangeView, 'id' | 'ipsecServerId' | 'regionId' | 'runs'>,
  actor: string,
): AuditContext {
  return {
    actor,
    changeId: change.id,
    ipsecServerId: change.ipsecServerId,
    regionId: change.regionId,
    attempt: change.runs,
  };
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, inner]) => inner !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The library API of changes: submit, read, list, cancel, and the lane of a server. Every state
 * transition is one Lua script; this class validates at the border and translates results.
 */
export class Changes {
  private readonly now: () => number;

  constructor(private readonly deps: ChangesDeps) {
    this.now = deps.now ?? Date.now;
  }

  async submit(input: ChangeSubmissionInput, options: SubmitOptions = {}): Promise<SubmitResult> {
    const submission = parseOrThrow(changeSubmissionSchema, input, 'change');
    const { keys, scripts, secrets, queue } = this.deps;
    const { Psk, ...rest } = submission.params;
    if (Psk !== undefined && !secrets.canSeal) throw new SecretKeyMissingError();

    const now = this.now();
    const id = newChangeId(now);
    const publicParams = Psk === undefined ? rest : { ...rest, Psk: secrets.fingerprint(Psk) };
    const fields: Record<string, string> = {
      ipsecServerId: submission.ipsecServerId,
      regionId: submission.regionId,
      params: JSON.stringify(publicParams),
      actor: submission.actor,
      clientToken: clientTokenFor(id),
      profile: submission.profile ?? DEFAULT_PROFILE,
    };
    if (submission.note) fields.note = submission.note;
    if (Psk !== undefined) fields.pskSealed = secrets.seal(Psk, id);
    const policy = this.deps.approval;
    const approval =
      !options.preApproved && policy && needsApproval(policy, submission.params)
        ? { required: policy.required, expiresAt: now + policy.expiresMs }
        : undefined;
    if (approval) {
      fields.approvalsRequired = String(approval.required);
      fields.expiresAt = String(approval.expiresAt);
      // Before the change exists: a crash after this leaves a job that finds nothing to expire.
      await queue.scheduleExpiry(id, submission.ipsecServerId, policy?.expiresMs ?? 0);
    }
    const initialState: ChangeState = approval ? 'awaiting_approval' : 'queued';
    // The idempotency body is the submission as sent, with its Psk as the keyed label, so a retry
    // with another Psk is told apart from one with the same, and the stored hash is no test of a
    // guessed Psk for whoever reads Redis (a plain hash of a body with the Psk in clear would be).
    // A rollout's change is idempotent per target, under a record of its own (keyed by rollout
    // and target, apart from client keys): a controller resumed after a crash submits it once.
    const { rollout } = options;
    const bodyHash =
      submission.idempotencyKey || rollout
        ? createHash('sha256')
            .update(
              canonicalJson({
                ...submission,
                params: publicParams,
                actor: undefined,
                idempotencyKey: undefined,
              }),
            )
            .digest('hex')
        : '';
    const idempotencyKey = rollout
      ? keys.rolloutChangeIdempotency(rollout.id, rollout.targetIndex)
      : keys.idempotency(submission.actor, submission.idempotencyKey ?? '-');

    const result = (await scripts.run(
      'submit',
      [
        keys.change(id),
        keys.lane(submission.ipsecServerId),
        keys.changes,
        keys.serverChanges(submission.ipsecServerId),
        idempotencyKey,
        keys.audit,
        ...(rollout ? [keys.rollout(rollout.id), keys.rolloutChanges(rollout.id)] : []),
      ],
      [
        id,
        now,
        bodyHash,
        this.deps.idempotencyRetentionMs,
        JSON.stringify(fields),
        initialState,
        rollout ? String(rollout.targetIndex) : '',
        encodeEvent(
          {
            actor: submission.actor,
            changeId: id,
            ipsecServerId: submission.ipsecServerId,
            regionId: submission.regionId,
            attempt: 0,
          },
          'submitted',
          { details: { params: publicParams, note: submission.note, approval } },
          now,
        ),
      ],
    )) as [string, string, number?];

    const [outcome, changeId] = result;
    if (approval && outcome !== 'created') await queue.discardExpiry(id);
    if (outcome === 'mismatch') throw new IdempotencyConflictError(changeId);
    if (outcome === 'held' && rollout) throw new RolloutNotRunningError(rollout.id, changeId);
    if (outcome === 'existing') {
      // The first submitter may have died before making its change runnable; doing it again is free.
      const change = await this.get(changeId);
      await this.makeHeadRunnable(change.ipsecServerId);
      return { change, created: false };
    }
    if (outcome !== 'created') throw new UnexpectedScriptResultError('submit', result);
    if (result[2] === 1) await queue.makeRunnable(id, submission.ipsecServerId);
    const stored = {
      ...fields,
      state: initialState,
      runs: '0',
      createdAt: String(now),
      updatedAt: String(now),
    };
    return { change: toChangeView(id, stored), created: true };
  }

  async get(id: string): Promise<ChangeView> {
    const record = await this.deps.redis.hgetall(this.deps.keys.change(id));
    if (!record.state) throw new ChangeNotFoundError(id);
    return toChangeView(id, record);
  }

  /** The change and its audit timeline, from the one hash that holds both (one read). */
  async getWithTimeline(id: string): Promise<{ change: ChangeView; timeline: AuditEvent[] }> {
    const record = await this.deps.redis.hgetall(this.deps.keys.change(id));
    if (!record.state) throw new ChangeNotFoundError(id);
    return { change: toChangeView(id, record), timeline: timelineOf(record) };
  }

  async list(query: ListChangesQuery = {}): Promise<ChangePage> {
    const { server, state, cursor, limit } = parseOrThrow(listChangesQuerySchema, query, 'list query');
    const { redis, keys } = this.deps;
    const index = server ? keys.serverChanges(server) : keys.changes;
    let max = '+inf';
    let skipUntilAfter: string | undefined;
    if (cursor) {
      const [score, id] = cursor.split(':') as [string, string];
      max = score;
      skipUntilAfter = id;
    }
    const changes: ChangeView[] = [];
    const batch = Math.max(limit * 2, 20);
    // Batches resume after the last entry read, the offset counting only the entries of its score
    // read already: an offset into the whole index moved with every change submitted while a page
    // was gathered, and the entries last read came again in the same page.
    let offset = 0;
    for (;;) {
      const ids = await redis.zrevrangebyscore(index, max, '-inf', 'WITHSCORES', 'LIMIT', offset, batch);
      if (ids.length === 0) return { changes, nextCursor: undefined };
      const lastId = ids[ids.length - 2] as string;
      const lastScore = ids[ids.length - 1] as string;
      let atLastScore = 0;
      for (let i = ids.length - 1; i > 0 && ids[i] === lastScore; i -= 2) atLastScore++;
      const candidates: Array<{ id: string; score: string }> = [];
      for (let i = 0; i < ids.length; i += 2) {
        const id = ids[i] as string;
        const score = ids[i + 1] as string;
        // Changes created in the same millisecond share a score: resume after the cursor's id.
        if (skipUntilAfter && score === max && id >= skipUntilAfter) continue;
        candidates.push({ id, score });
      }
      const pipeline = redis.pipeline();
      for (const { id } of candidates) pipeline.hgetall(keys.change(id));
      const records = (await pipeline.exec()) ?? [];
      for (let i = 0; i < candidates.length; i++) {
        const record = records[i]?.[1] as Record<string, string> | undefined;
        const candidate = candidates[i] as { id: string; score: string };
        if (!record?.state || (state && record.state !== state)) continue;
        changes.push(toChangeView(candidate.id, record));
        if (changes.length === limit) return { changes, nextCursor: `${candidate.score}:${candidate.id}` };
      }
      offset = lastScore === max ? offset + atLastScore : atLastScore;
      max = lastScore;
      skipUntilAfter = lastId;
    }
  }

  async cancel(id: string, actor: string): Promise<ChangeView> {
    const change = await this.get(id);
    const now = this.now();
    const result = await this.finish(change, {
      state: 'cancelled',
      allowedFrom: CANCELLABLE_STATES,
      events: [encodeEvent(auditContext(change, actor), 'cancelled', {}, now)],
      // A cancelled probe must close its circuit, or the account's other changes wait for hours.
      mayBeProbe: true,
    });
    // 'again': this very cancel, its answer lost with the connection and sent again by ioredis;
    // not a conflict, and its job is still to be discarded.
    if (result[0] === 'wrong_state' && result[2] !== 'again') {
      const why =
        result[2] === 'may_have_applied'
          ? 'after an apply that may have taken effect: it will be retried with the same ClientToken and verified'
          : undefined;
      throw new ChangeStateError(id, String(result[1]), 'cancel', why);
    }
    await this.deps.queue.discard(id);
    if (change.state === 'awaiting_approval') await this.deps.queue.discardExpiry(id);
    return this.get(id);
  }

  /**
   * One approval of a change awaiting approval, by someone other than its submitter; the same
   * approver counts once. The approval that makes the required number puts the change in its
   * server's lane (approve.lua), and it runs when it reaches the head.
   */
  async approve(id: string, actor: string): Promise<ChangeView> {
    const { keys, scripts, queue } = this.deps;
    const change = await this.get(id);
    const now = this.now();
    const context = auditContext(change, actor);
    const required = change.approval?.required ?? 1;
    const result = (await scripts.run(
      'approve',
      [keys.change(id), keys.lane(change.ipsecServerId), keys.audit],
      [
        id,
        actor,
        now,
        encodeEvent(auditContext(change, 'system'), 'expired', { details: EXPIRED_DETAILS }, now),
        encodeEvent(context, 'approval', { details: { required } }, now),
        encodeEvent(context, 'approved', { details: { required } }, now),
      ],
    )) as [string, (string | number)?];
    switch (result[0]) {
      case 'approved':
        await queue.discardExpiry(id);
        if (result[1] === 1) await queue.makeRunnable(id, change.ipsecServerId);
        break;
      case 'recorded':
      case 'duplicate':
        break;
      case 'missing':
        throw new ChangeNotFoundError(id);
      case 'expired':
        await queue.discardExpiry(id);
        throw new ChangeStateError(id, 'expired', 'approve');
      case 'self':
        throw new ApproverIsSubmitterError(id);
      case 'wrong_state':
        // Approved by this very call, its answer lost with the connection (ioredis sent it again):
        // the same approval, not a conflict. Whoever approved it may not have made it runnable.
        if (result[1] === 'queued') {
          const again = await this.get(id);
          if (again.approval?.approvers.includes(actor)) {
            await this.makeHeadRunnable(change.ipsecServerId);
            return again;
          }
        }
        throw new ChangeStateError(id, String(result[1]), 'approve');
      default:
        throw new UnexpectedScriptResultError('approve', result);
    }
    return this.get(id);
  }

  /** Rejects a change awaiting approval, with a reason: it ends `rejected`, never applied. */
  async reject(id: string, actor: string, reason: string): Promise<ChangeView> {
    const why = parseOrThrow(approvalReasonSchema, reason, 'reason');
    const change = await this.get(id);
    if (change.state === 'awaiting_approval' && change.actor === actor)
      throw new ApproverIsSubmitterError(id);
    const now = this.now();
    const result = await this.finish(change, {
      state: 'rejected',
      allowedFrom: ['awaiting_approval'],
      fields: { reason: why },
      events: [encodeEvent(auditContext(change, actor), 'rejected', { details: { reason: why } }, now)],
    });
    // 'again': this very rejection sent again, as with a cancel.
    if (result[0] === 'wrong_state' && result[2] !== 'again')
      throw new ChangeStateError(id, String(result[1]), 'reject');
    await this.deps.queue.discardExpiry(id);
    return this.get(id);
  }

  /**
   * The expiry job of a change awaiting approval: past its deadline it ends `expired`. Answers
   * how many ms early the job woke (0 when it is done), for the job to sleep again.
   */
  async expire(id: string): Promise<number> {
    const { redis, keys } = this.deps;
    const [state, expiresAt, ipsecServerId, regionId] = await redis.hmget(
      keys.change(id),
      'state',
      'expiresAt',
      'ipsecServerId',
      'regionId',
    );
    if (state !== 'awaiting_approval' || !ipsecServerId) return 0;
    const now = this.now();
    const early = Number(expiresAt ?? 0) - now;
    if (early > 0) return early;
    const context = { actor: 'system', changeId: id, ipsecServerId, regionId: regionId ?? '', attempt: 0 };
    await this.finish(
      { id, ipsecServerId },
      {
        state: 'expired',
        allowedFrom: ['awaiting_approval'],
        events: [encodeEvent(context, 'expired', { details: EXPIRED_DETAILS }, now)],
      },
    );
    return 0;
  }

  /** The changes waiting on a server, in the order they will run (head first). */
  async laneOf(ipsecServerId: string): Promise<LaneEntry[]> {
    const { redis, keys } = this.deps;
    const ids = await redis.lrange(keys.lane(ipsecServerId), 0, -1);
    const pipeline = redis.pipeline();
    for (const id of ids) pipeline.hmget(keys.change(id), 'state', 'step', 'actor', 'createdAt');
    const rows = (await pipeline.exec()) ?? [];
    return ids.map((id, index) => {
      const [state, step, actor, createdAt] = (rows[index]?.[1] ?? []) as (string | null)[];
      return {
        position: index + 1,
        id,
        state: state ?? 'unknown',
        step: step ?? undefined,
        actor: actor ?? '',
        createdAt: Number(createdAt ?? 0),
      };
    });
  }

  /** Adds a job for the server's lane head (a no-op when it has one). */
  async makeHeadRunnable(ipsecServerId: string): Promise<void> {
    const head = await this.deps.redis.lindex(this.deps.keys.lane(ipsecServerId), 0);
    if (head) await this.deps.queue.makeRunnable(head, ipsecServerId);
  }

  /**
   * Finds lane heads left without a job by a process that died between a transition and adding
   * the next job, and makes them runnable. Runs at worker start and now and then: it costs a few
   * commands per non-empty lane, never anything per waiting change.
   */
  async repairLanes(): Promise<string[]> {
    const { redis, keys, queue } = this.deps;
    const repaired: string[] = [];
    const lanePrefix = keys.lane('');
    const jobKeyPrefix = queue.jobKeyPrefix();
    let cursor = '0';
    do {
      const [next, laneKeys] = await redis.scan(cursor, 'MATCH', keys.lanePattern, 'COUNT', 500);
      cursor = next;
      const heads = await Promise.all(laneKeys.map((key) => redis.lindex(key, 0)));
      const exists = await Promise.all(heads.map((head) => (head ? redis.exists(jobKeyPrefix + head) : 1)));
      for (let i = 0; i < laneKeys.length; i++) {
        const head = heads[i];
        if (!head || exists[i]) continue;
        await queue.makeRunnable(head, (laneKeys[i] as string).slice(lanePrefix.length));
        repaired.push(head);
      }
    } while (cursor !== '0');
    return repaired;
  }

  /**
   * Ends a change through the finish script and makes the next lane head runnable. Used by cancel
   * here and by the pipeline for every terminal state.
   */
  async finish(
    change: Pick<ChangeView, 'id' | 'ipsecServerId'> & { profile?: string },
    options: {
      state: string;
      allowedFrom: readonly string[];
      owner?: string;
      fields?: Record<string, string>;
      /** The terminal event last, after any steps not yet recorded. */
      events: string[];
      /** The change may be its account's circuit probe (it met a financial lock, or is cancelled). */
      mayBeProbe?: boolean;
    },
  ): Promise<string[]> {
    const { keys, scripts, queue } = this.deps;
    const profile = change.profile ?? DEFAULT_PROFILE;
    const result = (await scripts.run('finish', keys.finishKeys(change.id, change.ipsecServerId, profile), [
      change.id,
      options.owner ?? '',
      this.now(),
      options.state,
      JSON.stringify(options.fields ?? {}),
      options.allowedFrom.join(','),
      options.mayBeProbe ? '1' : '0',
      ...options.events,
    ])) as string[];
    if (result[0] === 'done') {
      const [, nextHead, ...waiters] = result;
      if (nextHead) await queue.makeRunnable(nextHead, change.ipsecServerId);
      for (const waiter of waiters) await this.wake(waiter);
    } else if (result[0] === 'missing') {
      throw new ChangeNotFoundError(change.id);
    } else if (result[0] === 'wrong_state' && TERMINAL_STATES.has(result[1] as ChangeState)) {
      // Ended already, perhaps by this very call: its answer lost with the connection, ioredis sent
      // it again. Whoever ended it may not have handed the lane on, nor woken the circuit's
      // waiters (the script answers them again); doing it again is free.
      await this.makeHeadRunnable(change.ipsecServerId);
      for (const waiter of result.slice(3)) await this.wake(waiter);
    }
    return result;
  }

  /**
   * Delays the job of a change that acquire.lua listed as a waiter on its account's circuit, until
   * `until`. The probe may end between that acquire and this delay: its wake then found the job
   * still active and could not promote it, so once delayed the job checks it is still listed, or
   * it would sleep until the closed circuit's deadline (up to the lock backoff's hours).
   */
  async waitOnCircuit(
    job: Job<ChangeJobData>,
    token: string | undefined,
    profile: string,
    until: number,
  ): Promise<void> {
    const listed = () => this.deps.redis.sismember(this.deps.keys.circuitWaiters(profile), job.data.changeId);
    await delayUntilWoken(job, token, until, async () => (await listed()) === 1);
  }

  /** Moves a delayed change job to the front of the queue (a circuit closed, a waiter may go). */
  async wake(changeId: string): Promise<void> {
    // Best effort, after the transition that frees it is stored: a waiter left asleep by an
    // unanswered call still runs at its own deadline.
    await wakeJob(this.deps.queue.queue, changeId).catch(() => undefined);
  }
}
