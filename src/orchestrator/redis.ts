import { Redis } from 'ioredis';

/**
 * Connections for the orchestrator. Worker connections must never give up on a command
 * (BullMQ refuses a blocking connection with a retry limit); producer connections fail fast so an
 * HTTP request gets an answer instead of waiting for Redis forever.
 */
export function connectRedis(url: string, role: 'producer' | 'worker'): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    enableAutoPipelining: true,
    connectionName: `ipsec-fleet-${role}`,
  });
}
