import { Queue } from 'bullmq';
import { keepConnectionErrorsQuiet } from './redis.js';
import type { RedisConnection } from './scripts.js';

export const CHANGE_QUEUE = 'changes';
/** The name of the delayed job that expires a change still awaiting approval at its deadline. */
export const EXPIRE_JOB = 'expire';
const expireJobId = (changeId: string) => `${changeId}-expire`;

/**
 * The change hash is the record, so finished jobs are removed at once. Unexpected failures (Redis
 * gone mid-step, a bug) retry the job: every step of a change is safe to run again, and a job
 * that stalls is simply resumed, hence no stall limit worth failing on (see the worker options).
 */
const JOB_OPTIONS = (jobId: string) => ({
  jobId,
  removeOnComplete: true,
  removeOnFail: true,
  attempts: 1_000,
  backoff: { type: 'fixed' as const, delay: 2_000 },
});

export interface ChangeJobData {
  changeId: string;
  /** Carried so the worker can name the lane and lease keys without reading the change first. */
  ipsecServerId: string;
}

/**
 * Only the head of each server's lane has a job: a change queued behind another is a list entry
 * and nothing more, so it costs no Redis work while it waits (DESIGN invariant 9). Adding a job
 * is idempotent (job id = change id), which is what lets any process "make the head runnable"
 * again after a crash without coordination.
 */
export class ChangeQueue {
  readonly queue: Queue<ChangeJobData>;

  constructor(connection: RedisConnection, prefix: string) {
    this.queue = new Queue<ChangeJobData>(CHANGE_QUEUE, { connection, prefix: `{${prefix}}` });
    keepConnectionErrorsQuiet(this.queue);
  }

  async makeRunnable(changeId: string, ipsecServerId: string): Promise<void> {
    await this.queue.add('change', { changeId, ipsecServerId }, JOB_OPTIONS(changeId));
  }

  /**
   * One delayed job per change awaiting approval, due at its deadline: the wait costs no polling.
   * Added before the change is stored, so a crash in between leaves at most a job that finds
   * nothing to expire, never a change that waits forever.
   */
  async scheduleExpiry(changeId: string, ipsecServerId: string, delayMs: number): Promise<void> {
    await this.queue.add(
      EXPIRE_JOB,
      { changeId, ipsecServerId },
      { ...JOB_OPTIONS(expireJobId(changeId)), delay: Math.max(0, delayMs) },
    );
  }

  /** Best effort: an expiry job that stays finds the change approved or ended and does nothing. */
  async discardExpiry(changeId: string): Promise<void> {
    await this.discard(expireJobId(changeId));
  }

  /** BullMQ's key of a job's hash, for scripts that check whether a lane head has a job. */
  jobKeyPrefix(): string {
    return this.queue.toKey('');
  }

  /** Best effort: a delayed job of a cancelled change would wake, see the state, and end anyway. */
  async discard(changeId: string): Promise<void> {
    try {
      await this.queue.remove(changeId);
    } catch {
      // The job is running or gone: either way the acquire step will find the change ended.
    }
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
