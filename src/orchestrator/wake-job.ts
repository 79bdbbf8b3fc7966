import { ErrorCode, type Job, type Queue } from 'bullmq';

/** Promotes a delayed job; one no longer delayed (taken up meanwhile, or just ended) is left as it is. */
async function promoteDelayed(job: Job): Promise<void> {
  try {
    await job.promote();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== ErrorCode.JobNotInState && code !== ErrorCode.JobNotExist) throw error;
  }
}

/**
 * Moves a delayed job (a change backing off, a parked rollout controller) to the front of its
 * queue now. Answers false when the queue holds no job of that id at all.
 */
export async function wakeJob(queue: Queue, jobId: string): Promise<boolean> {
  const job = await queue.getJob(jobId);
  if (!job) return false;
  await promoteDelayed(job);
  return true;
}

/**
 * Delays the job its processor holds until `until`, to be woken early by whoever ends the wait.
 * A wake sent while the job is still active cannot promote it and is lost, so once the job is
 * delayed, `stillWaiting` is asked again, and the job wakes itself if the wait ended meanwhile.
 * That second look is best effort: if it fails, the job runs at `until`, as it would have.
 */
export async function delayUntilWoken(
  job: Job,
  token: string | undefined,
  until: number,
  stillWaiting: () => Promise<boolean>,
): Promise<void> {
  await job.moveToDelayed(until, token);
  try {
    if (!(await stillWaiting())) await promoteDelayed(job);
  } catch {
    // Runs at `until`.
  }
}
