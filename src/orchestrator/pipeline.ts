import { DelayedError, type Job } from 'bullmq';
import { AliyunApiError } from '../aliyun/errors.js';
import type { RpcCaller } from '../aliyun/types.js';
import { dryRunUpdateIpsecServer, updateIpsecServer } from '../ipsec/api.js';
import { classifyError, type ErrorClass } from '../ipsec/classify-error.js';
import { isSatisfiedBy } from '../ipsec/diff.js';
import { type IpsecServer, redactServer } from '../ipsec/server.js';
import type { Logger } from '../log.js';
import type { ChangeJobData } from './change-queue.js';
import { type ChangeRecord, paramsToSend, recordFromPairs } from './change-record.js';
import { type Changes, DEFAULT_PROFILE } from './changes.js';
import { LeaseLostError, UnexpectedScriptResultError, VerifyMismatchError } from './errors.js';
import type { OrchestratorKeys } from './keys.js';
import { LeaseKeeper } from './lease-keeper.js';
import { type BackoffRule, backoffDelay, type PipelinePolicy } from './policy.js';
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
  now?: () => number;
  random?: () => number;
}

type Phase = 'read' | 'dry-run' | 'apply' | 'verify';

const RUNNABLE_FROM = ['running'] as const;

/** Counters kept on the change hash per error class: how often, and since when. */
const CLASS_FIELDS: Partial<
  Record<ErrorClass, { count: string; since: string; rule: keyof PipelinePolicy }>
> = {
  busy: { count: 'busyCount', since: 'busySince', rule: 'busy' },
  'account-locked': { count: 'lockedCount', since: 'lockedSince', rule: 'accountLocked' },
  transient: { count: 'transientCount', since: 'transientSince', rule: 'transient' },
  throttled: { count: 'throttledCount', since: 'throttledSince', rule: 'throttled' },
};

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
    const owner = `${deps.workerId}/${token ?? job.id}`;
    const acquired = (await scripts.run('acquire', acquireKeys(id, ipsecServerId), [
      id,
      owner,
      policy.leaseMs,
      now(),
      deps.workerId,
    ])) as [string, ...string[]];

    switch (acquired[0]) {
      case 'missing':
      case 'terminal':
      case 'not_head':
        return;
      case 'locked':
        return delay(job, token, Number(acquired[1]) + 20);
      case 'circuit':
        return delay(job, token, Math.max(Number(acquired[1]) - now(), 1_000) + Math.round(random() * 1_000));
      case 'acquired':
        break;
      default:
        throw new UnexpectedScriptResultError('acquire', acquired);
    }

    const record = recordFromPairs(acquired, 1);
    const keeper = new LeaseKeeper(scripts, keys.lock(ipsecServerId), owner, policy.leaseMs);
    try {
      await run(job, token, id, owner, record, keeper);
    } finally {
      keeper.stop();
    }
  };

  function acquireKeys(id: string, server: string): string[] {
    return [
      keys.change(id),
      keys.changeEvents(id),
      keys.lane(server),
      keys.lock(server),
      keys.audit,
      keys.circuit(DEFAULT_PROFILE),
      keys.circuitWaiters(DEFAULT_PROFILE),
    ];
  }

  async function delay(job: Job<ChangeJobData>, token: string | undefined, delayMs: number): Promise<never> {
    await job.moveToDelayed(now() + delayMs, token);
    throw new DelayedError();
  }

  async function run(
    job: Job<ChangeJobData>,
    token: string | undefined,
    id: string,
    owner: string,
    record: ChangeRecord,
    keeper: LeaseKeeper,
  ): Promise<void> {
    const server = record.ipsecServerId as string;
    const regionId = record.regionId as string;
    const profile = record.profile ?? DEFAULT_PROFILE;
    const { caller, reader } = deps.cloud(profile, regionId);
    const params = paramsToSend(id, record, deps.secrets);
    const request = { IpsecServerId: server, RegionId: regionId, ...params };
    const callOptions = { signal: keeper.signal, timeoutMs: policy.callTimeoutMs };
    const change = { id, ipsecServerId: server, profile };
    let phase: Phase = 'read';

    const step = async (name: string, fields: Record<string, string>, details: Record<string, unknown>) => {
      const result = await scripts.run(
        'step',
        [keys.change(id), keys.changeEvents(id), keys.lock(server), keys.audit],
        [
          id,
          owner,
          policy.leaseMs,
          now(),
          deps.workerId,
          name,
          JSON.stringify(fields),
          JSON.stringify(details),
        ],
      );
      if (result !== 'ok') throw new LeaseLostError(id);
    };

    // A throttled call is retried in place, lease held: it is the quota speaking, not the gateway,
    // and restarting the change from its dry run would only spend more of the quota.
    const call = <T>(fn: () => Promise<T>): Promise<T> => retryThrottled(fn, policy.throttled, random);

    try {
      const before = record.before
        ? undefined
        : redactServer(await call(() => reader.read(regionId, server)));
      phase = 'dry-run';
      const dryRun = await call(() => dryRunUpdateIpsecServer(caller, request, callOptions));
      await step('dry_run_passed', before ? { before: JSON.stringify(before) } : {}, {
        cloudRequestId: dryRun.RequestId,
      });
      phase = 'apply';
      const applied = await call(() =>
        updateIpsecServer(caller, { ...request, ClientToken: record.clientToken }, callOptions),
      );
      await step(
        'applied',
        {},
        { cloudRequestId: applied.RequestId, details: { clientToken: record.clientToken } },
      );
      phase = 'verify';
      const after = await verify(
        id,
        (regionId, server) => call(() => reader.read(regionId, server)),
        regionId,
        server,
        params,
      );
      await end(change, owner, 'succeeded', { after: JSON.stringify(redactServer(after)) }, {});
    } catch (error) {
      if (error instanceof LeaseLostError) {
        deps.log.warn({ changeId: id }, 'lease lost mid-run; leaving the change to the lease holder');
        return;
      }
      await handleFailure(job, token, change, owner, record, phase, error);
    }
  }

  async function verify(
    changeId: string,
    read: (regionId: string, server: string) => Promise<IpsecServer>,
    regionId: string,
    server: string,
    params: ReturnType<typeof paramsToSend>,
  ): Promise<IpsecServer> {
    for (let attempt = 1; ; attempt++) {
      const current = await read(regionId, server);
      if (isSatisfiedBy(current, params)) return current;
      if (attempt >= policy.verifyAttempts) throw new VerifyMismatchError(changeId, attempt);
      await new Promise((resolve) => setTimeout(resolve, policy.verifyIntervalMs));
    }
  }

  async function end(
    change: { id: string; ipsecServerId: string; profile: string },
    owner: string,
    state: 'succeeded' | 'rejected' | 'failed',
    fields: Record<string, string>,
    details: Record<string, unknown>,
  ): Promise<void> {
    const result = await deps.changes.finish(change, {
      actor: deps.workerId,
      state,
      allowedFrom: RUNNABLE_FROM,
      owner,
      fields,
      details,
    });
    if (result[0] === 'lost_lease') throw new LeaseLostError(change.id);
  }

  async function handleFailure(
    job: Job<ChangeJobData>,
    token: string | undefined,
    change: { id: string; ipsecServerId: string; profile: string },
    owner: string,
    record: ChangeRecord,
    phase: Phase,
    error: unknown,
  ): Promise<void> {
    const errorClass = error instanceof VerifyMismatchError ? 'permanent' : classifyError(error);
    const code = errorCode(error);
    const cloudRequestId = error instanceof AliyunApiError ? error.requestId : undefined;
    const failure = {
      code,
      cloudRequestId,
      details: { phase, class: errorClass, message: messageOf(error) },
    };

    const counters = CLASS_FIELDS[errorClass];
    if (!counters) {
      // Permanent (or a dry run reported where an apply was expected): nothing to retry.
      const state = phase === 'read' || phase === 'dry-run' ? 'rejected' : 'failed';
      await end(change, owner, state, { lastCode: code }, failure);
      return;
    }

    const rule = policy[counters.rule] as BackoffRule;
    const count = Number(record[counters.count] ?? 0) + 1;
    const since = Number(record[counters.since] ?? now());
    const exhausted =
      (rule.maxAttempts !== undefined && count >= rule.maxAttempts) ||
      (rule.giveUpAfterMs !== undefined && now() - since >= rule.giveUpAfterMs);
    if (exhausted) {
      await end(
        change,
        owner,
        'failed',
        { lastCode: code },
        { ...failure, details: { ...failure.details, gaveUp: true } },
      );
      return;
    }

    const delayMs = Math.max(backoffDelay(rule, count, random), 50);
    const result = await scripts.run(
      'backoff',
      [
        keys.change(change.id),
        keys.changeEvents(change.id),
        keys.lock(change.ipsecServerId),
        keys.audit,
        keys.circuit(change.profile),
      ],
      [
        change.id,
        owner,
        now(),
        deps.workerId,
        delayMs,
        code,
        JSON.stringify({ [counters.count]: String(count), [counters.since]: String(since) }),
        JSON.stringify({ cloudRequestId, details: failure.details }),
        errorClass === 'account-locked' ? '1' : '0',
      ],
    );
    if (result !== 'ok') return;
    await delay(job, token, delayMs);
  }
}

/** Throttled calls wait and go again, up to the rule's attempts (default 20); then the change backs off. */
async function retryThrottled<T>(fn: () => Promise<T>, rule: BackoffRule, random: () => number): Promise<T> {
  const limit = rule.maxAttempts ?? 20;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= limit || classifyError(error) !== 'throttled') throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.max(backoffDelay(rule, attempt, random), 10)));
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
