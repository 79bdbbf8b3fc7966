import { Queue } from 'bullmq';
import type { RedisConnection } from '../orchestrator/scripts.js';

/** The controllers: one `run` job per rollout, active for the rollout's whole life. */
export const ROLLOUT_QUEUE = 'rollouts';
/**
 * Plans and approval-window expiries, apart from the controllers: a worker's controller slots
 * may all be held by long-lived (paused, baking) rollouts, and a new rollout must still be
 * planned and an approval window still close.
 */
export const ROLLOUT_TASK_QUEUE = 'rollout-tasks';

/** plan: dry runs and reads; run: the controller; expire: closes the approval window. */
export type RolloutJobName = 'plan' | 'run' | 'expire';

export const queueOfJob = (name: RolloutJobName) => (name === 'run' ? ROLLOUT_QUEUE : ROLLOUT_TASK_QUEUE);

export interface RolloutJobData {
  rolloutId: string;
}

/**
 * One job per rollout phase, its id derived from the rollout's (so adding it again is a no-op).
 * Every phase reads its progress from Redis when it starts, so a job resumed after its worker died
 * carries on where the last one stopped.
 */
export class RolloutQueue {
  private readonly queues: Record<string, Queue<RolloutJobData, unknown, RolloutJobName>>;

  constructor(connection: RedisConnection, prefix: string) {
    const queue = (name: string) =>
      new Queue<RolloutJobData, unknown, RolloutJobName>(name, { connection, prefix: `{${prefix}}` });
    this.queues = { [ROLLOUT_QUEUE]: queue(ROLLOUT_QUEUE), [ROLLOUT_TASK_QUEUE]: queue(ROLLOUT_TASK_QUEUE) };
  }

  async add(name: RolloutJobName, rolloutId: string, delayMs = 0): Promise<void> {
    await (this.queues[queueOfJob(name)] as Queue<RolloutJobData, unknown, RolloutJobName>).add(
      name,
      { rolloutId },
      {
        jobId: `${rolloutId}-${name}`,
        delay: delayMs,
        removeOnComplete: true,
        removeOnFail: true,
        attempts: 1_000,
        backoff: { type: 'fixed', delay: 2_000 },
      },
    );
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((queue) => queue.close()));
  }
}
