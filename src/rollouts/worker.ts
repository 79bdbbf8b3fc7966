import { hostname } from 'node:os';
import { DelayedError, type Job, Worker } from 'bullmq';
import { CloudClients } from '../orchestrator/cloud-clients.js';
import { type ChangeWorkerSettings, Orchestrator } from '../orchestrator/orchestrator.js';
import { outageLog } from '../orchestrator/outage-log.js';
import { rateLimiterFor } from '../orchestrator/rate-limiter.js';
import { asRefusal, connectRedis, reachRedis } from '../orchestrator/redis.js';
import { delayUntilWoken } from '../orchestrator/wake-job.js';
import { runEvery } from '../periodic.js';
import { startOrClose } from '../start-or-close.js';
import { runRollout } from './controller.js';
import { expireRollout, planRollout } from './planner.js';
import {
  ROLLOUT_QUEUE,
  ROLLOUT_TASK_QUEUE,
  type RolloutJobData,
  type RolloutJobName,
} from './rollout-queue.js';
import { Rollouts } from './rollouts.js';

export interface RolloutWorkerSettings
  extends Omit<ChangeWorkerSettings, 'concurrency' | 'repairIntervalMs'> {
  /**
   * Rollout controllers at once (each one a rollout with something to do; it mostly sleeps). A
   * paused one, one in a long bake, or one whose changes in flight all back off for long (a
   * financially locked account) parks and holds no slot (see controller.ts).
   */
  concurrency?: number;
  /** Plans and approval-window expiries at once, on their own slots (4 unless told). */
  taskConcurrency?: number;
  /** Targets one plan looks at at once. */
  planConcurrency?: number;
  /** The longest a plan retries one busy, throttled or transient target (default 60 s). */
  planMaxWaitMs?: number;
  /** How often a controller reads its changes' states. */
  pollMs?: number;
  /** The window of a rollout's maxChangesPerMinute: a minute, shorter only in tests. */
  rateWindowMs?: number;
  /** The longest a parked controller stays off its slot unless woken (a minute; see controller.ts). */
  parkMs?: number;
  /**
   * How often unfinished rollouts left without their job are looked for (0: only at start). A
   * process that dies between a transition and the job that follows it (create, approve, plan)
   * must not leave its rollout waiting for the next worker restart.
   */
  resumeIntervalMs?: number;
}

export interface RolloutWorker {
  /** The controllers' worker and the plans' and expiries' one. */
  readonly workers: readonly Worker<RolloutJobData, unknown, RolloutJobName>[];
  readonly rollouts: Rollouts;
  close(): Promise<void>;
}

/**
 * The workers of the `rollouts` queue (controllers, which submit the changes) and the
 * `rollout-tasks` queue (plans, approval-window expiries), started beside the change worker with
 * the same settings. The changes themselves run on the change workers.
 */
export async function startRolloutWorker(settings: RolloutWorkerSettings): Promise<RolloutWorker> {
  const redis = connectRedis(settings.redisUrl, 'worker');
  const orchestrator = new Orchestrator(redis, settings);
  const rollouts = Rollouts.for(orchestrator);
  // Plans call the cloud too (a dry run and a batched read per target): they take their tokens
  // from the same shared buckets as the change workers, or a plan of thousands of targets would
  // run into the cloud's throttling and starve the changes of the quota.
  const cloud = new CloudClients(
    settings.cloud,
    rateLimiterFor(orchestrator.policy, orchestrator.scripts, orchestrator.keys),
  );
  const workerId = settings.workerId ?? `rollouts:${hostname()}:${process.pid}`;
  const planner = {
    rollouts,
    pskFingerprint: orchestrator.secrets.fingerprint,
    cloud: (profile: string, regionId: string) => cloud.get(profile, regionId),
    concurrency: settings.planConcurrency ?? 16,
    callTimeoutMs: orchestrator.policy.callTimeoutMs,
    policy: orchestrator.policy,
    ...(settings.planMaxWaitMs !== undefined ? { maxWaitMs: settings.planMaxWaitMs } : {}),
  };
  const stopping = new AbortController();
  const leaseMs = orchestrator.policy.leaseMs;
  const processor = async (job: Job<RolloutJobData, unknown, RolloutJobName>, token?: string) => {
    const { rolloutId } = job.data;
    // A rollout deleted under its job (a test's cleanup, a manual repair) leaves nothing to do.
    if (!(await redis.exists(orchestrator.keys.rollout(rolloutId)))) return;
    switch (job.name) {
      case 'plan':
        return planRollout(planner, rolloutId);
      case 'expire': {
        const early = await expireRollout(rollouts, rolloutId);
        if (early === 0) return;
        await job.moveToDelayed(Date.now() + early, token);
        throw new DelayedError();
      }
      case 'run': {
        // BullMQ renews a job's lock by job id, and a run that parked drops the renewal of its id
        // only once the fetch that follows it has answered: a controller woken at once and taken
        // up again by this worker before then would go unrenewed, be taken for stalled, and run
        // twice. So a controller renews its own lock too.
        const renewal = setInterval(() => {
          job.extendLock(token ?? '', leaseMs).catch(() => undefined);
        }, leaseMs / 4);
        let result: Awaited<ReturnType<typeof runRollout>>;
        try {
          result = await runRollout(rollouts, rolloutId, {
            pollMs: settings.pollMs ?? 1_000,
            log: settings.log,
            signal: stopping.signal,
            ...(settings.rateWindowMs ? { rateWindowMs: settings.rateWindowMs } : {}),
            ...(settings.parkMs ? { parkMs: settings.parkMs } : {}),
          });
        } finally {
          clearInterval(renewal);
        }
        if (result === 'ended') return;
        if (result === 'stopped') {
          // Shutting down: hand the controller back to the queue at once, without spending an
          // attempt, for any worker (this one included, once restarted) to resume from Redis.
          await job.moveToDelayed(Date.now(), token);
          throw new DelayedError();
        }
        // Parked: off its slot, without spending an attempt, until `until` or a resume or cancel
        // wakes it (one acknowledged since the controller read the state is caught on parking).
        await delayUntilWoken(
          job,
          token,
          result.until,
          async () => (await redis.hget(orchestrator.keys.rollout(rolloutId), 'state')) === result.state,
        );
        throw new DelayedError();
      }
    }
  };
  const reportError = outageLog(redis, settings.log, 'rollout worker');
  const startWorker = (queue: string, concurrency: number) => {
    const worker = new Worker<RolloutJobData, unknown, RolloutJobName>(queue, processor, {
      connection: redis,
      prefix: `{${settings.prefix}}`,
      concurrency,
      lockDuration: leaseMs,
      stalledInterval: leaseMs,
      // Plans and controllers resume from Redis, so a stalled job is always taken up again.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      name: workerId,
    });
    worker.on('error', reportError);
    worker.on('failed', (job, error) =>
      settings.log.warn({ err: error, rolloutId: job?.data.rolloutId, job: job?.name }, 'rollout job failed'),
    );
    return worker;
  };
  const workers: Worker<RolloutJobData, unknown, RolloutJobName>[] = [];
  let stopResuming = () => {};
  // The one way down, from any point of the start or after it.
  const closeAll = async (force: boolean) => {
    stopResuming();
    stopping.abort();
    await Promise.all(workers.map((worker) => worker.close(force)));
    await cloud.close();
    await rollouts.close();
    await orchestrator.close();
  };
  await startOrClose(
    async () => {
      await reachRedis(redis);
      workers.push(
        startWorker(ROLLOUT_QUEUE, settings.concurrency ?? 50),
        startWorker(ROLLOUT_TASK_QUEUE, settings.taskConcurrency ?? 4),
      );
      // BullMQ's INFO, and our scripts, can meet an ACL user's NOPERM.
      await Promise.all(workers.map((worker) => worker.waitUntilReady())).catch((error: unknown) => {
        throw asRefusal(error);
      });
      await rollouts.resumeUnfinished();
      stopResuming = runEvery(
        settings.resumeIntervalMs ?? 300_000,
        () => rollouts.resumeUnfinished(),
        (error) => settings.log.warn({ err: error }, 'resuming unfinished rollouts failed'),
      );
    },
    closeAll,
    settings.log,
  );
  return { workers, rollouts, close: () => closeAll(false) };
}
