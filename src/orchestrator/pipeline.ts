import { performance } from 'node:perf_hooks';
import { DelayedError, type Job } from 'bullmq';
import { ReplyError } from 'ioredis';
import { AliyunApiError } from '../aliyun/errors.js';
import type { RpcCaller } from '../aliyun/types.js';
import { type AuditContext, encodeEvent } from '../audit/event.js';
import { sendDryRun, sendUpdateIpsecServer } from '../ipsec/api.js';
import { classifyError, type ErrorClass } from '../ipsec/classify-error.js';
import { completeConfigs } from '../ipsec/complete-configs.js';
import { isSatisfiedBy } from '../ipsec/diff.js';
import { DryRunNotHonouredError } from '../ipsec/errors.js';
import { type IpsecServer, redactServer } from '../ipsec/server.js';
import type { MutableParams } from '../ipsec/update-params.js';
import type { Logger } from '../log.js';
import { sleep } from '../sleep.js';
import { type ChangeState, TERMINAL_STATES } from './change.js';
import { type ChangeJobData, EXPIRE_JOB } from './change-queue.js';
import { type ChangeRecord, paramsToSend, RUN_FIELDS, recordFromValues } from './change-record.js';
import { type Changes, DEFAULT_PROFILE } from './changes.js';
import { LeaseLostError, UnexpectedScriptResultError, VerifyMismatchError } from './errors.js';
import type { OrchestratorKeys } from './keys.js';
import { LeaseKeeper } from './lease-keeper.js';
import { type BackoffRule, type PipelinePolicy, retryDelay } from './policy.js';
import type { Scripts } from './scripts.js';
import type { SecretBox } from './secret-box.js';
import type { ServerReader } from './server-reader.js';

export interface PipelineDeps {
  changes: Changes;
  keys: OrchestratorKeys;
  scripts: Scripts;
  secrets: SecretBox;
  policy: PipelinePolicy;
  /** The cloud client of a credential profile for a region, and a batching reader over it. */
  cloud(profile: string, regionId: string): { caller: RpcCaller; reader: ServerReader };
  /** Names this worker in leases and audit events. */
  workerId: string;
  log: Logger;
  /**
   * Whether this worker has begun to stop. BullMQ can still hand it a job then: one whose wake-up
   * arrived on its blocking connection just before the close, is moved to active without a second
   * look at the close. Such a job is handed back untouched, for another worker.
   */
  stopping?: () => boolean;
  now?: () => number;
  random?: () => number;
}

type Phase = 'read' | 'dry-run' | 'apply' | 'verify';

/** Counters kept on the change hash per error class: how often, and since when. */
const CLASS_FIELDS: Partial<
  Record<ErrorClass, { count: string; since: string; rule: keyof PipelinePolicy }>
> = {
  busy: { count: 'busyCount', since: 'busySince', rule: 'busy' },
  'account-locked': { count: 'lockedCount', since: 'lockedSince', rule: 'accountLocked' },
  transient: { count: 'transientCount', since: 'transientSince', rule: 'transient' },
  throttled: { count: 'throttledCount', since: 'throttledSince', rule: 'throttled' },
};

interface RunningChange {
  job: Job<ChangeJobData>;
  token: string | undefined;
  id: string;
  owner: string;
  record: ChangeRecord;
  audit: AuditContext;
  profile: string;
  /**
   * Events of steps whose state needs no script of their own (an apply that went through): they
   * ride on the change's next transition, with their own timestamps, which saves a Redis round
   * trip per change. A crash in between loses that event alone: the change was marked as maybe
   * applied before the apply went out, and its retry applies again with the same ClientToken, the
   * cloud answering with the first apply's RequestId, which is recorded. A retry that never gets
   * to its apply (its dry run refused, a give-up) ends failed, maybe applied, without that id.
   */
  pending: string[];
  /** The server as this run read it before its dry run (JSON, redacted); absent on a retry. */
  before?: string;
}

/**
 * The BullMQ processor of a change: lease the server, read, dry run, apply with the change's
 * ClientToken, verify, and end the change; or back off keeping the lane place (the job is
 * delayed, the worker slot freed), or end it as rejected/failed per DESIGN.md's error table.
 */
export function createChangeProcessor(deps: PipelineDeps) {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const { keys, scripts, policy } = deps;

  return async function processChange(job: Job<ChangeJobData>, token?: string): Promise<void> {
    const { changeId: id, ipsecServerId } = job.data;
    if (deps.stopping?.()) return delay(job, token, 0);
    if (job.name === EXPIRE_JOB) {
      const early = await deps.changes.expire(id);
      if (early > 0) await delay(job, token, early);
      return;
    }
    const owner = `${deps.workerId}/${token ?? job.id}`;
    const template = JSON.stringify({ ts: now(), actor: deps.workerId, changeId: id, ipsecServerId });
    const acquireSentAt = performance.now();
    const acquired = (await scripts.run(
      'acquire',
      [keys.change(id), keys.lane(ipsecServerId), keys.lock(ipsecServerId), keys.audit],
      [id, owner, policy.leaseMs, now(), template, keys.circuit(''), ...RUN_FIELDS],
    )) as [string, ...(string | null)[]];

    switch (acquired[0]) {
      case 'missing':
      case 'not_head':
        return;
      case 'terminal':
        // Ended, perhaps by a finish whose answer was lost: the next change may still lack its job.
        await deps.changes.makeHeadRunnable(ipsecServerId);
        return;
      case 'locked':
        return delay(job, token, Number(acquired[1]) + 20);
      case 'early':
        return delay(job, token, Number(acquired[1]));
      case 'circuit': {
        const delayMs = Math.max(Number(acquired[1]) - now(), 1_000) + Math.round(random() * 1_000);
        await deps.changes.waitOnCircuit(job, token, String(acquired[2]), now() + delayMs);
        throw new DelayedError();
      }
      case 'acquired':
        break;
      default:
        throw new UnexpectedScriptResultError('acquire', acquired);
    }

    const record = recordFromValues(RUN_FIELDS, acquired, 1);
    const change: RunningChange = {
      job,
      token,
      id,
      owner,
      record,
      profile: record.profile ?? DEFAULT_PROFILE,
      audit: {
        actor: deps.workerId,
        changeId: id,
        ipsecServerId,
        regionId: record.regionId ?? '',
        attempt: Number(record.runs ?? 1),
      },
      pending: [],
    };
    const keeper = new LeaseKeeper(scripts, keys.lock(ipsecServerId), owner, policy.leaseMs, acquireSentAt);
    try {
      await run(change, keeper.signal);
    } finally {
      keeper.stop();
    }
  };

  async function delay(job: Job<ChangeJobData>, token: string | undefined, delayMs: number): Promise<never> {
    await job.moveToDelayed(now() + delayMs, token);
    throw new DelayedError();
  }

  async function run(change: RunningChange, signal: AbortSignal): Promise<void> {
    const { id, record, audit } = change;
    const { ipsecServerId, regionId } = audit;
    const callOptions = { signal, timeoutMs: policy.callTimeoutMs };
    // A throttled call is retried in place, lease held: it is the quota speaking, not the gateway,
    // and restarting the change from its dry run would only spend more of the quota.
    const call = <T>(fn: () => Promise<T>): Promise<T> =>
      retryThrottled(fn, policy.throttled, random, signal);
    let phase: Phase = 'read';

    try {
      // Inside the try: a Psk this worker cannot open (another secret key, or none) and a profile
      // it does not know (PROFILE_UNKNOWN) are permanent errors of the read phase, so the change
      // ends `rejected` and hands its lane on, instead of failing its job run after run.
      const requested = paramsToSend(id, record, deps.secrets);
      const { caller, reader } = deps.cloud(change.profile, regionId);
      const read = () => call(() => reader.read(regionId, ipsecServerId));
      const before = record.before ? undefined : redactServer(await read(), deps.secrets.fingerprint);
      if (before) change.before = JSON.stringify(before);
      // The configs are made whole once, with the first dry run, and recorded with it: every retry
      // of the apply sends exactly what the first one sent, with its ClientToken (invariant 4).
      // Only an apply the cloud refused outright lets the next run start afresh (handleFailure).
      const { params, filled, refused } = before
        ? completeConfigs(requested, before)
        : { params: withSentConfigs(requested, record.sentConfigs), filled: [] as string[], refused: [] };
      const request = { IpsecServerId: ipsecServerId, RegionId: regionId, ...params };
      phase = 'dry-run';
      const dryRun = await call(() => sendDryRun(caller, request, callOptions));
      // Recorded, and the lease checked, before the apply: no apply without a dry run that passed
      // just before it under the same lease (DESIGN invariant 1).
      // From here on an apply with this change's ClientToken may reach the cloud: recorded first,
      // so that a run that dies while it is out still counts (a cancel must not end it then).
      const recorded: Record<string, string> = { mayHaveApplied: '1' };
      if (change.before) recorded.before = change.before;
      const notes: Record<string, string[]> = {};
      if (filled.length > 0) {
        recorded.sentConfigs = JSON.stringify({
          IkeConfig: params.IkeConfig,
          IpsecConfig: params.IpsecConfig,
        });
        notes.filledFromServer = filled;
      }
      if (refused.length > 0) notes.notFilledServerValueRefused = refused;
      const dryRunPassed = {
        cloudRequestId: dryRun.RequestId,
        ...(Object.keys(notes).length > 0 ? { details: notes } : {}),
      };
      await step(change, 'dry_run_passed', recorded, [
        encodeEvent(audit, 'dry_run_passed', dryRunPassed, now()),
      ]);
      phase = 'apply';
      const applied = await call(() =>
        sendUpdateIpsecServer(caller, { ...request, ClientToken: record.clientToken }, callOptions),
      );
      change.pending.push(
        encodeEvent(
          audit,
          'applied',
          { cloudRequestId: applied.RequestId, details: { clientToken: record.clientToken } },
          now(),
        ),
      );
      phase = 'verify';
      const after = await verify(id, read, params, signal);
      await end(
        change,
        'succeeded',
        { after: JSON.stringify(redactServer(after, deps.secrets.fingerprint)) },
        {},
      );
    } catch (error) {
      if (error instanceof LeaseLostError) {
        // Failing the job hands it back to BullMQ: if another worker holds the change now, the
        // retry finds it running under that lease and waits; if nobody does, the retry resumes it.
        deps.log.warn({ changeId: id }, 'lease lost mid-run; handing the job back');
        throw error;
      }
      if (error instanceof ReplyError) {
        // Redis refused a command of this run (a step, the shared rate bucket): says nothing about
        // the change, which must not end on it. Handed back like a lost lease, and resumed.
        deps.log.error({ changeId: id, err: error }, 'Redis refused a command mid-run; handing the job back');
        throw error;
      }
      await handleFailure(change, phase, error);
    }
  }

  async function step(change: RunningChange, name: string, fields: Record<string, string>, events: string[]) {
    const result = await scripts.run(
      'step',
      [keys.change(change.id), keys.lock(change.audit.ipsecServerId), keys.audit],
      [
        change.owner,
        policy.leaseMs,
        now(),
        name,
        JSON.stringify(fields),
        ...change.pending.splice(0),
        ...events,
      ],
    );
    if (result !== 'ok') throw new LeaseLostError(change.id);
  }

  async function verify(
    changeId: string,
    read: () => Promise<IpsecServer>,
    params: MutableParams,
    signal: AbortSignal,
  ): Promise<IpsecServer> {
    for (let attempt = 1; ; attempt++) {
      // The lease is gone (or could not be confirmed): the change is another worker's to finish.
      if (signal.aborted) throw new LeaseLostError(changeId);
      const current = await read();
      if (isSatisfiedBy(current, params)) return current;
      if (attempt >= policy.verifyAttempts) throw new VerifyMismatchError(changeId, attempt);
      await sleep(policy.verifyIntervalMs, signal).catch(() => {
        throw new LeaseLostError(changeId);
      });
    }
  }

  async function end(
    change: RunningChange,
    state: 'succeeded' | 'rejected' | 'failed',
    fields: Record<string, string>,
    extra: Parameters<typeof encodeEvent>[2],
  ): Promise<void> {
    const result = await deps.changes.finish(
      { id: change.id, ipsecServerId: change.audit.ipsecServerId, profile: change.profile },
      {
        state,
        allowedFrom: ['running'],
        owner: change.owner,
        fields,
        events: [...change.pending.splice(0), encodeEvent(change.audit, state, extra, now())],
        mayBeProbe: change.record.lockedCount !== undefined,
      },
    );
    // Another state than `running` and not a terminal one (this very call, answered twice) means
    // somebody else moved the change on: this run is void, like one whose lease was lost.
    if (
      result[0] === 'lost_lease' ||
      (result[0] === 'wrong_state' && !TERMINAL_STATES.has(result[1] as ChangeState))
    )
      throw new LeaseLostError(change.id);
  }

  async function handleFailure(change: RunningChange, phase: Phase, error: unknown): Promise<void> {
    const errorClass = error instanceof VerifyMismatchError ? 'permanent' : classifyError(error);
    const code = errorCode(error);
    const cloudRequestId =
      error instanceof AliyunApiError || error instanceof DryRunNotHonouredError
        ? error.requestId
        : undefined;
    const details = { phase, class: errorClass, message: messageOf(error) };

    // An apply of an earlier run (its answer lost, or its worker gone) may have taken effect.
    const appliedBefore = change.record.mayHaveApplied === '1';
    const counters = CLASS_FIELDS[errorClass];
    if (!counters) {
      // Permanent (or a dry run reported where an apply was expected): nothing to retry.
      // `rejected` says nothing was applied, which only a change whose apply never went out shows.
      // A dry run the cloud answered as done was an apply (without the ClientToken): the change
      // keeps what a rollback reads to put the server back, as after an apply whose answer was lost.
      const dryRunApplied = error instanceof DryRunNotHonouredError;
      const state =
        (phase === 'read' || phase === 'dry-run') && !appliedBefore && !dryRunApplied ? 'rejected' : 'failed';
      const fields: Record<string, string> = { lastCode: code };
      if (dryRunApplied) {
        fields.mayHaveApplied = '1';
        if (change.before) fields.before = change.before;
      }
      await end(change, state, fields, { code, cloudRequestId, details });
      return;
    }

    const rule = policy[counters.rule] as BackoffRule;
    const count = Number(change.record[counters.count] ?? 0) + 1;
    const since = Number(change.record[counters.since] ?? now());
    const exhausted =
      (rule.maxAttempts !== undefined && count >= rule.maxAttempts) ||
      (rule.giveUpAfterMs !== undefined && now() - since >= rule.giveUpAfterMs);
    if (exhausted) {
      await end(
        change,
        'failed',
        { lastCode: code },
        { code, cloudRequestId, details: { ...details, gaveUp: true } },
      );
      return;
    }

    const delayMs = Math.max(retryDelay(rule, count, error, random), 50);
    const result = await scripts.run(
      'backoff',
      [
        keys.change(change.id),
        keys.lock(change.audit.ipsecServerId),
        keys.audit,
        keys.circuit(change.profile),
      ],
      [
        change.id,
        change.owner,
        now(),
        delayMs,
        code,
        JSON.stringify({
          ...(errorClass === 'account-locked' ? streaksEndedByLock(change.record) : {}),
          [counters.count]: String(count),
          [counters.since]: String(since),
          // The first apply refused outright: none went out, so the change may be cancelled again,
          // and nothing binds the next apply to what this one sent. The next run reads the server
          // again and makes the configs whole from what it finds: filling them from this run's
          // snapshot, perhaps hours old by then, would undo an edit made in the meantime.
          ...(phase === 'apply' && !appliedBefore && refusedOutright(error, errorClass)
            ? { mayHaveApplied: '', before: '', sentConfigs: '' }
            : {}),
        }),
        errorClass === 'account-locked' ? '1' : '0',
        ...change.pending.splice(0),
        encodeEvent(change.audit, 'backoff', { code, cloudRequestId, delayMs, details }, now()),
      ],
    );
    if (result !== 'ok') throw new LeaseLostError(change.id);
    await delay(change.job, change.token, delayMs);
  }
}

/**
 * The other classes' counters, emptied: a financial lock holds the whole account, so a gateway
 * found busy before it is no evidence about the gateway after it, and hours spent behind the lock
 * must not count against the busy or transient give-up deadlines.
 */
function streaksEndedByLock(record: ChangeRecord): Record<string, string> {
  const cleared: Record<string, string> = {};
  for (const [errorClass, fields] of Object.entries(CLASS_FIELDS)) {
    if (errorClass === 'account-locked' || !fields) continue;
    if (record[fields.count] !== undefined) cleared[fields.count] = '';
    if (record[fields.since] !== undefined) cleared[fields.since] = '';
  }
  return cleared;
}

/**
 * Throttled calls wait and go again, up to the rule's attempts (default 20); then the change backs
 * off. A lease given up meanwhile ends the retries, with the last error.
 */
async function retryThrottled<T>(
  fn: () => Promise<T>,
  rule: BackoffRule,
  random: () => number,
  signal: AbortSignal,
): Promise<T> {
  const limit = rule.maxAttempts ?? 20;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= limit || classifyError(error) !== 'throttled' || signal.aborted) throw error;
      await sleep(Math.max(retryDelay(rule, attempt, error, random), 10), signal).catch(() => {
        throw error;
      });
    }
  }
}

function errorCode(error: unknown): string {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string')
    return error.code;
  return 'InternalError';
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The params as the first dry run of this change sent them: with the configs it made whole, or
 * as requested when it filled nothing (or ran on a version that did not fill, whose apply a retry
 * must repeat as it was). The record holds no secret: configs carry none.
 */
function withSentConfigs(requested: MutableParams, sentConfigs: string | undefined): MutableParams {
  if (!sentConfigs) return requested;
  const sent = JSON.parse(sentConfigs) as Pick<MutableParams, 'IkeConfig' | 'IpsecConfig'>;
  return {
    ...requested,
    ...(sent.IkeConfig ? { IkeConfig: sent.IkeConfig } : {}),
    ...(sent.IpsecConfig ? { IpsecConfig: sent.IpsecConfig } : {}),
  };
}

/**
 * An answer that says the cloud did not take the apply: a busy gateway, a locked account or the
 * quota. Not LastTokenProcessing (busy too, but an earlier request with the token is being
 * processed), nor a server error or a lost answer, after which the apply may have been done.
 */
function refusedOutright(error: unknown, errorClass: string): boolean {
  return (
    error instanceof AliyunApiError &&
    error.code !== 'LastTokenProcessing' &&
    (errorClass === 'busy' || errorClass === 'account-locked' || errorClass === 'throttled')
  );
}
