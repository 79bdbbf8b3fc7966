import type { Logger } from 'pino';

/**
 * Runs a process part's start; if it throws, closes whatever it had opened (`close(true)`: force,
 * nothing is running yet) and throws the start's error. A start that fails half-way must not
 * leave a connection reconnecting behind it: that keeps the process alive, neither working nor
 * exiting.
 */
export async function startOrClose<T>(
  start: () => Promise<T>,
  close: (force: boolean) => Promise<void>,
  log: Logger,
): Promise<T> {
  try {
    return await start();
  } catch (error) {
    await close(true).catch((closeError: unknown) =>
      log.warn({ err: closeError }, 'closing after a failed start failed'),
    );
    throw error;
  }
}
