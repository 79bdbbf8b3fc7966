import { Queue } from 'bullmq';
import type { RedisConnection } from '../orchestrator/scripts.js';

export const ROLLOUT_QUEUE = 'rollouts';

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
export class RolloutQueue {
  readonly queue: Queue<RolloutJobData, unknown, RolloutJobName>;

  constructor(connection: RedisConnection, prefix: string) {
    this.queue = new Queue<RolloutJobData, unknown, RolloutJobName>(ROLLOUT_QUEUE, {
      connection,
      prefix: `{${prefix}}`,
    });
  }

  async add(name: RolloutJobName, rolloutId: string, delayMs = 0): Promise<void> {
    await this.queue.add(
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

  close(): Promise<void> {
    return this.queue.close();
  }
}
