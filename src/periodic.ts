/**
 * Runs `task` every `intervalMs` without keeping the process alive, for the housekeeping a worker
 * does beside its jobs (heartbeat, lane repair, resuming rollouts). A failed run goes to
 * `onFailure` and the next tick tries again. `intervalMs` 0 never runs it. Returns the stop.
 */
export function runEvery(
  intervalMs: number,
  task: () => Promise<unknown>,
  onFailure: (error: unknown) => void,
): () => void {
  if (intervalMs === 0) return () => undefined;
  const timer = setInterval(() => {
    task().catch(onFailure);
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
