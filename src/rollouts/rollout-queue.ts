import { Queue } from 'bullmq';
import { keepConnectionErrorsQuiet } from '../orchestrator/redis.js';
import type { RedisConnection } from '../orchestrator/scripts.js';
import { wakeJob } from '../orchestrator/wake-job.js';

/**
 * The controllers: one `run` job per rollout for the rollout's whole life, active while it has
 * something to do and delayed while it is parked (paused, a long bake, or changes in flight that
 * all back off for long: see controller.ts).
 */
export const ROLLOUT_QUEUE = 'rollouts';
/**
 * Plans and approval-window expiries, apart from the controllers: a worker's controller slots
 * may all be held by rollouts following their changes, and a new rollout must still be planned
 * and an approval window still close.
 */
export const ROLLOUT_TASK_QUEUE = 'rollout-tasks';

/** plan: dry runs and reads; run: the controller; expire: closes the approval window. */
export type RolloutJobName = 'plan' | 'run' | 'expire';

export interface RolloutJobData {
  rolloutId: string;
}

/**
 * One job per rollout phase, its id derived from the rollout's (so adding it again is a no-op).
 * Every phase reads its progress from Redis when it starts, so a job resumed after its worker died
 * carries on where the last one stopped.
 */
function jobId(name: RolloutJobName, rolloutId: string): string {
  return `${rolloutId}-${name}`;
}

type RolloutJobQueue = Queue<RolloutJobData, unknown, RolloutJobName>;

export class RolloutQueue {
  private readonly controllers: RolloutJobQueue;
  private readonly tasks: RolloutJobQueue;

  constructor(connection: RedisConnection, prefix: string) {
    const options = { connection, prefix: `{${prefix}}` };
    this.controllers = new Queue(ROLLOUT_QUEUE, options);
    this.tasks = new Queue(ROLLOUT_TASK_QUEUE, options);
    keepConnectionErrorsQuiet(this.controllers);
    keepConnectionErrorsQuiet(this.tasks);
  }

  async add(name: RolloutJobName, rolloutId: string, delayMs = 0): Promise<void> {
    await (name === 'run' ? this.controllers : this.tasks).add(
      name,
      { rolloutId },
      {
        jobId: jobId(name, rolloutId),
        delay: delayMs,
        removeOnComplete: true,
        removeOnFail: true,
        attempts: 1_000,
        backoff: { type: 'fixed', delay: 2_000 },
      },
    );
  }

  /**
   * Makes a parked controller runnable at once (a no-op for one that is runnable or running);
   * answers false when the rollout has no `run` job at all.
   */
  async wake(rolloutId: string): Promise<boolean> {
    return wakeJob(this.controllers, jobId('run', rolloutId));
  }

  async close(): Promise<void> {
    await Promise.all([this.controllers.close(), this.tasks.close()]);
  }
}
