import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

// What a connection reports while Redis is away, once per reconnect attempt.
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
]);

function isConnectionError(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (code !== undefined && CONNECTION_CODES.has(code)) || /Connection is closed/.test(error.message);
}

/**
 * The 'error' listener of a worker's BullMQ workers: an outage of Redis is logged once when it
 * starts and once when Redis answers again, not once per reconnect attempt of every connection
 * (hundreds of stack traces a minute, which bury whatever else is in the log). Any other error is
 * logged as it comes.
 */
export function outageLog(redis: Redis, log: Logger, source: string): (error: Error) => void {
  let downSince: number | undefined;
  let repeats = 0;
  redis.on('ready', () => {
    if (downSince === undefined) return;
    log.warn({ source, downMs: Date.now() - downSince, repeats }, 'Redis answers again');
    downSince = undefined;
    repeats = 0;
  });
  return (error) => {
    if (!isConnectionError(error)) {
      log.error({ err: error, source }, `${source} error`);
      return;
    }
    if (downSince !== undefined) {
      repeats++;
      return;
    }
    downSince = Date.now();
    log.error({ err: error, source }, 'Redis does not answer; retrying (logged again when it does)');
  };
}
