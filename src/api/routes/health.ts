import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import { withTimeout } from '../../with-timeout.js';

export interface HealthRoutesOptions {
  orchestrator: Orchestrator;
  /** How long Redis may take to answer a PING before the process counts as not ready. */
  redisTimeoutMs?: number;
}

const readinessSchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  redis: z.enum(['ok', 'unavailable']),
  workers: z.number().int().describe('workers that reported a heartbeat in the last 15 s'),
  failing: z
    .array(z.enum(['redis', 'workers']))
    .optional()
    .describe('what makes the process not ready'),
});

/**
 * Anonymous: liveness (the process answers) and readiness (Redis answers, a worker is alive).
 * Neither answers a problem when Redis does not: readiness reports it.
 */
export const healthRoutes: FastifyPluginAsyncZod<HealthRoutesOptions> = async (app, options) => {
  const { orchestrator } = options;
  const timeoutMs = options.redisTimeoutMs ?? 1_000;

  app.get(
    '/healthz',
    {
      logLevel: 'warn',
      config: { needsRedis: false },
      schema: {
        summary: 'Liveness: the process is up',
        tags: ['operations'],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      logLevel: 'warn',
      config: { needsRedis: false },
      schema: {
        summary: 'Readiness: Redis answers and a worker reported in the last 15 s',
        tags: ['operations'],
        response: { 200: readinessSchema, 503: readinessSchema },
      },
    },
    async (_request, reply) => {
      let workers = 0;
      let redis: 'ok' | 'unavailable' = 'ok';
      try {
        workers = await withTimeout(
          orchestrator.redis.ping().then(() => orchestrator.liveWorkers()),
          timeoutMs,
        ).then((ids) => ids.length);
      } catch {
        redis = 'unavailable';
      }
      const failing: Array<'redis' | 'workers'> = [];
      if (redis !== 'ok') failing.push('redis');
      else if (workers === 0) failing.push('workers');
      if (failing.length === 0) return { status: 'ready' as const, redis, workers };
      return reply.code(503).send({ status: 'not_ready' as const, redis, workers, failing });
    },
  );
};
