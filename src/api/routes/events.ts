import type { FastifyPluginAsync, FastifyReply, preHandlerHookHandler } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { compareStreamIds } from '../../audit/audit-log.js';
import type { AuditEvent } from '../../audit/event.js';
import { type ChangeState, TERMINAL_STATES } from '../../orchestrator/change.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import type { AuditTail } from '../audit-tail.js';
import { problem, problemResponses, sendProblem } from '../problem.js';
import { noQuerySchema } from '../schemas.js';
import { SseStreams, sseHeadersSchema } from '../sse.js';
import { changeParamsSchema } from './changes.js';

export interface EventsRoutesOptions {
  orchestrator: Orchestrator;
  tail: AuditTail;
  /** The auth check (role `viewer`), run before the route's handler. */
  preHandler?: preHandlerHookHandler | preHandlerHookHandler[] | undefined;
  /** Comment lines that keep idle connections (and proxies) open; default 15 s. */
  heartbeatMs?: number | undefined;
}

function isTerminal(event: AuditEvent): boolean {
  return TERMINAL_STATES.has(event.type as ChangeState);
}

function frame(event: AuditEvent): string {
  return `id: ${event.id}\nevent: audit\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * `GET /v1/changes/:id/events`: a change's audit events as server-sent events. The subscription
 * to the audit tail is taken before the timeline is read, so nothing falls between the two; what
 * the tail delivers that the timeline already had is dropped by stream id, which also keeps the
 * order. The stream ends after the terminal event. A client that reconnects with `Last-Event-ID`
 * gets only what follows that id.
 */
export const eventsRoutes: FastifyPluginAsync<EventsRoutesOptions> = async (fastify, options) => {
  const { orchestrator, tail } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  const streams = new SseStreams(app, heartbeatMs);

  app.get(
    '/v1/changes/:id/events',
    {
      schema: {
        summary: "A change's audit events, then each new one live, as server-sent events",
        description:
          'Role: viewer. First the timeline so far, then each new event as it happens, each as ' +
          '`id: <stream id>` / `event: audit` / `data: <AuditEvent JSON>`; a `: heartbeat` comment ' +
          'every 15 s; the stream ends after the terminal event. With `Last-Event-ID`, only the ' +
          'events after that id.',
        tags: ['changes'],
        params: changeParamsSchema,
        querystring: noQuerySchema,
        headers: sseHeadersSchema,
        produces: ['text/event-stream'],
        response: {
          200: {
            description: 'server-sent events',
            content: { 'text/event-stream': { schema: z.string() } },
          },
          ...problemResponses(404),
        },
      },
      ...(options.preHandler ? { preHandler: options.preHandler } : {}),
    },
    async (request, reply) => {
      const { id } = request.params;
      let deliver: ((event: AuditEvent) => void) | undefined;
      const early: AuditEvent[] = [];
      const unsubscribe = tail.subscribe(id, (event) => {
        if (deliver) deliver(event);
        else early.push(event);
      });

      let timeline: AuditEvent[];
      try {
        timeline = await orchestrator.audit.forChange(id);
      } catch (error) {
        unsubscribe();
        throw error;
      }
      // Every change has its `submitted` event, written with the change itself.
      if (timeline.length === 0) {
        unsubscribe();
        return sendProblem(reply, problem(404, 'CHANGE_NOT_FOUND', `change ${id} does not exist`));
      }

      const sse = streams.start(request, reply, unsubscribe);
      let lastSent = sse.lastEventId;
      const send = (event: AuditEvent) => {
        if (sse.ended) return;
        if (lastSent === undefined || compareStreamIds(event.id, lastSent) > 0) {
          lastSent = event.id;
          sse.write(frame(event));
        }
        if (isTerminal(event)) sse.end();
      };

      for (const event of timeline) send(event);
      for (const event of early.splice(0)) send(event);
      deliver = send;

      return (reply as FastifyReply).send(sse.body);
    },
  );
};
