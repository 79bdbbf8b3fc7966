import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import type { AuditTail } from '../audit-tail.js';
import { AuditMetrics, type MetricsOptions } from '../metrics.js';

export interface MetricsRoutesOptions extends MetricsOptions {
  orchestrator: Orchestrator;
  tail: AuditTail;
}

/**
 * `GET /metrics` (anonymous): Prometheus text from a registry of this app's own. The change
 * metrics follow the audit tail from the moment the plugin is registered, so register it before
 * the tail is started: a tail that starts from the beginning of the stream then replays history
 * into them. Every API process reports the same audit-derived totals; aggregate them with `max`,
 * not `sum`.
 */
export const metricsRoutes: FastifyPluginAsync<MetricsRoutesOptions> = async (app, options) => {
  const metrics = new AuditMetrics(options.orchestrator, options);
  const stop = options.tail.onEvent((event) => metrics.observe(event));
  app.addHook('onClose', async () => stop());

  app.get(
    '/metrics',
    {
      // Its Redis reads have their own timeout: a scrape answers while Redis does not.
      config: { needsRedis: false },
      schema: {
        summary: 'Prometheus metrics',
        tags: ['operations'],
        description: 'Anonymous. Prometheus text exposition format (prom-client).',
        response: {
          200: { description: 'Prometheus text', content: { 'text/plain': { schema: z.string() } } },
        },
      },
    },
    async (_request, reply) => {
      const text = await metrics.metrics();
      return reply.type(metrics.contentType).send(text);
    },
  );
};
