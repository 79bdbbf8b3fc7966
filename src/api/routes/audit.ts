import { Readable } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditQuery } from '../../audit/audit-log.js';
import type { AuditEvent } from '../../audit/event.js';
import { changeSubmissionSchema } from '../../orchestrator/change.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import { type Authorizer, BEARER_SECURITY } from '../auth/authorize.js';
import { auditEventResponseSchema, queryInt } from '../schemas.js';
import { changeIdSchema } from './changes.js';

export interface AuditRoutesOptions {
  orchestrator: Orchestrator;
  auth: Authorizer;
}

export const JSONL_CONTENT_TYPE = 'application/x-ndjson';

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;
const TIME_RULE =
  'must be epoch milliseconds or an ISO 8601 date or time with its offset, e.g. 2025-01-31T12:00:00Z';

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Why the date of an ISO 8601 value is not on the calendar, if it is not. Date.parse takes any day
 * up to 31 and rolls over: 2025-02-30 would silently be March 2.
 */
function calendarProblem(value: string): string | undefined {
  const [year = 0, month = 0, day = 0] = value.slice(0, 10).split('-').map(Number);
  if (month < 1 || month > 12) return `must be a real calendar date: there is no month ${month}`;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day < 1 || day > days) {
    return `must be a real calendar date: ${value.slice(0, 7)} has ${days} days (got ${value.slice(0, 10)})`;
  }
  return undefined;
}

/** Epoch milliseconds or ISO 8601 (a date alone is midnight UTC), output as epoch ms. */
const timeParam = z.string().transform((value, ctx) => {
  if (/^\d{1,15}$/.test(value)) return Number(value);
  const calendar = ISO_8601.test(value) ? calendarProblem(value) : undefined;
  if (calendar) {
    ctx.addIssue(calendar);
    return z.NEVER;
  }
  const ms = ISO_8601.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue(TIME_RULE);
    return z.NEVER;
  }
  // Times become stream ids (milliseconds since 1970): an earlier one is no id, and Redis would
  // refuse the XRANGE with an error the client did not cause.
  if (ms < 0) {
    ctx.addIssue('must be 1970-01-01 or later');
    return z.NEVER;
  }
  return ms;
});

const auditQuerySchema = z
  .strictObject({
    change: changeIdSchema.optional().describe('only the events of this change'),
    server: changeSubmissionSchema.shape.ipsecServerId.optional().describe('only the events of this server'),
    from: timeParam.optional().describe('inclusive lower bound: epoch ms or ISO 8601'),
    to: timeParam.optional().describe('inclusive upper bound: epoch ms or ISO 8601'),
    limit: queryInt(
      z
        .number()
        .int('must be from 1 to 10000')
        .min(1, 'must be from 1 to 10000')
        .max(10_000, 'must be from 1 to 10000'),
    )
      .optional()
      .describe('1 to 10000; default 1000 for json, everything for jsonl'),
    format: z.enum(['json', 'jsonl']).default('json').describe('`jsonl`: application/x-ndjson, streamed'),
  })
  .superRefine((query, ctx) => {
    if (query.from !== undefined && query.to !== undefined && query.from > query.to) {
      ctx.addIssue({ code: 'custom', path: ['from'], message: 'must not be after `to`' });
    }
  });

const DEFAULT_JSON_LIMIT = 1_000;

export const auditRoutes: FastifyPluginAsyncZod<AuditRoutesOptions> = async (app, options) => {
  const { orchestrator, auth } = options;

  app.get(
    '/v1/audit',
    {
      onRequest: auth.require('viewer'),
      schema: {
        summary: 'Audit events, oldest first',
        description:
          'Role: viewer. `format=jsonl` streams every matching event as one JSON object per line ' +
          '(application/x-ndjson), without a limit unless one is given.',
        tags: ['audit'],
        security: BEARER_SECURITY,
        querystring: auditQuerySchema,
        response: {
          200: {
            description: 'the matching events',
            content: {
              'application/json': { schema: z.object({ events: z.array(auditEventResponseSchema) }) },
              [JSONL_CONTENT_TYPE]: {
                schema: z.string().describe('one AuditEvent JSON object per line'),
              },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const { change, server, from, to, limit, format } = request.query;
      const query: AuditQuery = {};
      if (change !== undefined) query.changeId = change;
      else if (server !== undefined) query.ipsecServerId = server;
      if (from !== undefined) query.from = from;
      if (to !== undefined) query.to = to;
      // A change's own timeline is read whole; the server filter then applies to it here.
      const keep = (event: AuditEvent) =>
        change === undefined || server === undefined || event.ipsecServerId === server;

      if (format === 'json') {
        const max = limit ?? DEFAULT_JSON_LIMIT;
        const events: AuditEvent[] = [];
        for await (const event of orchestrator.audit.stream(query)) {
          if (!keep(event)) continue;
          events.push(event);
          if (events.length >= max) break;
        }
        return reply.type('application/json').send({ events });
      }

      // The first read happens before the answer starts, so a store that does not answer is
      // still a problem+json error rather than a cut stream.
      const events = orchestrator.audit.stream(query)[Symbol.asyncIterator]();
      const first = await events.next();
      async function* lines(): AsyncGenerator<string> {
        let sent = 0;
        let next = first;
        try {
          while (!next.done && (limit === undefined || sent < limit)) {
            if (keep(next.value)) {
              yield `${JSON.stringify(next.value)}\n`;
              sent++;
            }
            if (limit !== undefined && sent >= limit) break;
            next = await events.next();
          }
        } finally {
          await events.return?.(undefined);
        }
      }
      // A stream is sent as is; the response schemas only describe it.
      return reply.type(JSONL_CONTENT_TYPE).send(Readable.from(lines()) as never);
    },
  );
};
