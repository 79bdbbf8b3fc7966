import { ErrorCode, type Queue } from 'bullmq';

/**
 * Moves a delayed job (a change backing off, a parked rollout controller) to the front of its
 * queue now. A job no longer delayed, because it was taken up meanwhile or has just ended, is left
 * as it is. Answers false when the queue holds no job of that id at all.
 */
export async function wakeJob(queue: Queue, jobId: string): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (!job) return false;
  try {
    await job.promote();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== ErrorCode.JobNotInState && code !== ErrorCode.JobNotExist) throw error;
  }
  return true;
}
