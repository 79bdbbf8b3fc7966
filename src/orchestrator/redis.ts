import type { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { IpsecFleetError } from '../errors.js';

/**
 * Connections for the orchestrator. Worker connections must never give up on a command
 * (BullMQ refuses a blocking connection with a retry limit); producer connections fail fast so an
 * HTTP request gets an answer instead of waiting for Redis forever.
 */
export function connectRedis(url: string, role: 'producer' | 'worker'): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    // A Redis that holds the connection open but does not answer (frozen, or a partition) would
    // hold an HTTP request for ever; past this the request is answered 503.
    ...(role === 'producer' ? { commandTimeout: PRODUCER_COMMAND_TIMEOUT_MS } : {}),
    enableAutoPipelining: true,
    connectionName: `ipsec-fleet-${role}`,
  });
}

export const PRODUCER_COMMAND_TIMEOUT_MS = 3_000;

/** Redis refused the connection's credentials or rights: waiting will not change its answer. */
export class RedisRefusedError extends IpsecFleetError {
  constructor(message: string, options?: ErrorOptions) {
    super('REDIS_REFUSED', message, options);
  }
}

// A missing or wrong password, or an ACL user without the right to a command.
const REFUSALS = /^(NOAUTH|WRONGPASS|NOPERM)\b/;

/**
 * The error as a RedisRefusedError when Redis refused the connection's credentials or rights,
 * else as it is. The URL is not quoted: it may hold the password.
 */
export function asRefusal(error: unknown): unknown {
  if (!(error instanceof Error) || !REFUSALS.test(error.message)) return error;
  const advice = error.message.startsWith('NOPERM')
    ? `its user lacks a right ipsec-fleet needs: ${error.message}`
    : `${error.message.split(' ', 1)[0]}: give the password (and the user, if Redis has ACL users) as ` +
      'redis://user:password@host:port/db';
  return new RedisRefusedError(`REDIS_URL: Redis refused the connection, ${advice}`, { cause: error });
}

/**
 * Resolves once Redis answers; a worker connection waits out an outage here as it would later.
 * A refusal is thrown as RedisRefusedError: left alone, ioredis reconnects and is refused again
 * every second, and the process neither works nor exits.
 */
export async function reachRedis(redis: Redis): Promise<void> {
  await redis.ping().catch((error: unknown) => {
    throw asRefusal(error);
  });
  // ioredis selects the URL's db on connect, and when Redis refuses it only emits an error and
  // goes on in db 0: another deployment's keys. Asked once more here, the refusal is an answer.
  const db = redis.options.db ?? 0;
  if (db !== 0) {
    await redis.select(db).catch((error: unknown) => {
      throw new RedisRefusedError(
        `REDIS_URL: Redis has no database ${db} (${error instanceof Error ? error.message : String(error)}); ` +
          "use one below its 'databases' setting (16 unless configured)",
        { cause: error },
      );
    });
  }
}

/**
 * A BullMQ queue re-emits its connection's errors, and with no listener prints the error object
 * itself, whose ioredis `command` holds the AUTH password of a refused handshake. The trouble
 * reaches the callers anyway, as the commands that fail (and workers log their own 'error'
 * events), so a producer's queue takes the event and drops it.
 */
export function keepConnectionErrorsQuiet(queue: Queue): void {
  queue.on('error', () => undefined);
}
