import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { compareStreamIds } from '../../audit/audit-log.js';
import { IpsecFleetError } from '../../errors.js';
import { boundedText } from '../../ipsec/field-rules.js';
import { type PskFingerprint, rememberingLabels } from '../../ipsec/psk.js';
import { UnexpectedScriptResultError } from '../../orchestrator/errors.js';
import { RolloutNotFoundError } from '../../rollouts/errors.js';
import { ROLLOUT_STATES, type RolloutView, TERMINAL_ROLLOUT_STATES } from '../../rollouts/rollout.js';
import { type RolloutSpec, rolloutSpecSchema } from '../../rollouts/rollout-spec.js';
import { listRolloutsQuerySchema, newRolloutId, type Rollouts } from '../../rollouts/rollouts.js';
import { InvalidInputError } from '../../validation.js';
import { type Authorizer, BEARER_SECURITY, principalOf } from '../auth/authorize.js';
import { problemResponses } from '../problem.js';
import { auditEventResponseSchema, noQuerySchema, queryInt } from '../schemas.js';
import { SseStreams, sseHeadersSchema } from '../sse.js';

export interface RolloutsRoutesOptions {
  rollouts: Rollouts;
  auth: Authorizer;
  /** How often an event stream looks for new events and progress; default 500 ms. */
  pollMs?: number | undefined;
  /** Comment lines that keep idle connections (and proxies) open; default 15 s. */
  heartbeatMs?: number | undefined;
}

/** The id of a rollout in a path; ids the store does not know are a 404, not a 400. */
const rolloutIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a rollout id such as rol-01jq8x2m3n4p5q6r7s8t9v0w');
const paramsSchema = z.strictObject({ id: rolloutIdSchema });

/** RolloutView of src/rollouts/rollout.ts. */
export const rolloutSchema = z
  .object({
    id: z.string(),
    state: z.enum(ROLLOUT_STATES),
    actor: z.string(),
    note: z.string().optional(),
    params: z.record(z.string(), z.unknown()).optional().describe('the common params (Psk as fingerprint)'),
    settings: z.object({
      strategy: z.record(z.string(), z.unknown()),
      maxErrors: z.union([z.number(), z.string()]),
      pause: z.enum(['none', 'first', 'every']),
      bakeMs: z.number(),
      maxChangesPerMinute: z.number().optional(),
      approvals: z.object({ required: z.number(), expiresMs: z.number() }),
      planOnly: z.boolean(),
    }),
    targetCount: z.number(),
    selector: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('how the targets are chosen, when not listed (resolved by the plan)'),
    plan: z.record(z.string(), z.number()).optional().describe('targets by plan verdict'),
    approvalsRequired: z.number(),
    approvals: z.number(),
    expiresAt: z.number().optional(),
    rollbackOf: z.string().optional(),
    reason: z.string().optional(),
    progress: z.object({
      total: z.number(),
      submitted: z.number(),
      inFlight: z.number(),
      succeeded: z.number(),
      errors: z.number(),
      byState: z.record(z.string(), z.number()),
      percent: z.number(),
      currentBatch: z.number(),
      batchCount: z.number().optional(),
    }),
    createdAt: z.number(),
    updatedAt: z.number(),
    finishedAt: z.number().optional(),
  })
  .meta({ id: 'Rollout' });

export const targetPlanSchema = z
  .object({
    index: z.number(),
    ipsecServerId: z.string(),
    regionId: z.string(),
    kind: z.enum(['would-change', 'no-op', 'rejected', 'blocked', 'unknown']),
    code: z.string().optional(),
    message: z.string().optional(),
    diff: z.array(z.object({ field: z.string(), from: z.unknown(), to: z.unknown() })).optional(),
  })
  .meta({ id: 'TargetPlan' });

const rolloutResponse = z.object({ rollout: rolloutSchema });

const listQuerySchema = z.strictObject({
  cursor: listRolloutsQuerySchema.shape.cursor.describe('nextCursor of the previous page'),
  limit: queryInt(listRolloutsQuerySchema.shape.limit.unwrap()).optional().describe('1 to 500, default 50'),
});

const idempotencyHeadersSchema = z.looseObject({
  'idempotency-key': z
    .string()
    .regex(/^[\x20-\x7e]{1,256}$/, 'must be 1 to 256 printable ASCII characters')
    .optional()
    .describe('makes retries safe: the same key and body return the rollout created first'),
});

/**
 * The body limit of `POST /v1/rollouts` (every other route keeps the app's 64 KiB), 32 MiB
 * (33,554,432 bytes): a spec may list MAX_TARGETS (10,000) targets, which 64 KiB cut off at about
 * 1,100. A target at its largest is 2,592 bytes of compact JSON: ids and profile at their length
 * limits (a region id of 64 characters), every params field at its longest (a name of 128 4-byte
 * characters, a Psk of 100 characters JSON escapes, both configs as JSON strings with
 * 253-character identities, LocalSubnet of 32 blocks). 10,000 of them and the rest of a spec at
 * its largest (note, common params, 1,000 batches) make 25,955,629 bytes, 27,252,753 indented
 * by two spaces. Only a submitter's body is read at all: the token is checked first.
 */
export const ROLLOUT_BODY_LIMIT = 32 * 1024 * 1024;

/** How long an Idempotency-Key of a rollout is remembered. */
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The body's hash for its Idempotency-Key, each Psk in it replaced by its keyed label: a plain
 * hash of a body with a Psk in clear would let whoever reads Redis test guesses of the Psk
 * against it (everything else in the body is stored beside it).
 */
export function rolloutBodyHash(body: RolloutSpec, pskLabel: PskFingerprint): string {
  const label = rememberingLabels(pskLabel);
  const labelled = <T extends { Psk?: string | undefined }>(params: T | undefined) =>
    params?.Psk === undefined ? params : { ...params, Psk: label(params.Psk) };
  return sha256(
    JSON.stringify({
      ...body,
      params: labelled(body.params),
      targets: body.targets?.map((target) => ({ ...target, params: labelled(target.params) })),
    }),
  );
}

const rejectBodySchema = z.strictObject({ reason: boundedText(1024) });
const rollbackBodySchema = z.strictObject({ note: boundedText(1024).optional() }).nullish();

function isTerminal(rollout: RolloutView): boolean {
  return TERMINAL_ROLLOUT_STATES.has(rollout.state);
}

/** Bodiless POSTs: nothing, `{}` or an empty body with a JSON content type. */
function requireEmptyBody(request: FastifyRequest): void {
  const body: unknown = request.body;
  const empty =
    body === undefined ||
    body === null ||
    body === '' ||
    (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty) throw new InvalidInputError('request', [{ field: 'body', rule: 'must be empty' }]);
}

/** What a progress frame carries: enough to draw a bar and an ETA. */
function progressOf(rollout: RolloutView) {
  return {
    id: rollout.id,
    state: rollout.state,
    reason: rollout.reason,
    plan: rollout.plan,
    progress: rollout.progress,
    createdAt: rollout.createdAt,
    updatedAt: rollout.updatedAt,
    finishedAt: rollout.finishedAt,
  };
}

export const rolloutsRoutes: FastifyPluginAsyncZod<RolloutsRoutesOptions> = async (app, options) => {
  const { rollouts, auth } = options;
  const pollMs = options.pollMs ?? 500;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const streams = new SseStreams(app, heartbeatMs);

  app.post(
    '/v1/rollouts',
    {
      bodyLimit: ROLLOUT_BODY_LIMIT,
      onRequest: auth.require('submitter'),
      schema: {
        summary: 'Create a rollout: one params patch to many servers, planned then approved',
        description:
          'Role: submitter; the token name is the actor. The rollout is planned (a dry run and a read ' +
          'of each target) by the rollout workers, then waits for approval by someone else ' +
          '(`planOnly: true` stops after the plan, in state `planned`). With an Idempotency-Key (per ' +
          'submitter, kept 7 days), a retry with the same body returns the first rollout (200); another ' +
          'body is a 409.',
        tags: ['rollouts'],
        security: BEARER_SECURITY,
        querystring: noQuerySchema,
        headers: idempotencyHeadersSchema,
        body: rolloutSpecSchema,
        response: {
          200: rolloutResponse.describe('an earlier creation with the same Idempotency-Key and body'),
          201: rolloutResponse.describe('the rollout was created (state planning)'),
          ...problemResponses(409),
        },
      },
    },
    async (request, reply) => {
      const actor = principalOf(request).name;
      const key = request.headers['idempotency-key'];
      if (key === undefined) {
        // The id is new: one that exists was made by this very request, its answer lost and resent.
        const { rollout } = await rollouts.createParsed(request.body, actor);
        reply.header('location', `/v1/rollouts/${rollout.id}`);
        return reply.code(201).send({ rollout });
      }
      // Per submitter: the key is reserved with the body's hash and the id the rollout will have,
      // before anything is created. A retry then finds that rollout, or (its first request died
      // before creating it) creates it under the same id: the create is a no-op for an id that
      // exists, so concurrent retries and a crash anywhere in between make one rollout.
      const { redis, keys } = rollouts.deps;
      const slot = keys.rolloutIdempotency(actor, key);
      const hash = rolloutBodyHash(request.body, rollouts.deps.secrets.fingerprint);
      let id = newRolloutId();
      const reserved = await redis.set(
        slot,
        JSON.stringify({ hash, id }),
        'EX',
        IDEMPOTENCY_TTL_SECONDS,
        'NX',
      );
      if (reserved === null) {
        const held = JSON.parse((await redis.get(slot)) ?? '{}') as { hash?: string; id?: string };
        if (held.hash !== hash || !held.id) {
          throw new IpsecFleetError(
            'IDEMPOTENCY_KEY_REUSED',
            'the idempotency key was already used for a rollout with another body',
          );
        }
        const existing = await rollouts.get(held.id).catch((error: unknown) => {
          if (error instanceof RolloutNotFoundError) return undefined;
          throw error;
        });
        if (existing) {
          // Its first request may have died between creating it and adding its plan job.
          await rollouts.ensureJob(held.id);
          return reply.code(200).send({ rollout: existing });
        }
        id = held.id;
      }
      try {
        const { rollout, created } = await rollouts.createParsed(request.body, actor, { id });
        // Requests under the same key race to create it under the reserved id (the one that
        // reserved it may still be staging its targets): only the one that did answers 201.
        if (!created) return reply.code(200).send({ rollout });
        reply.header('location', `/v1/rollouts/${rollout.id}`);
        return reply.code(201).send({ rollout });
      } catch (error) {
        // Refused before anything was written (a rule, no secret key): the key is free again. Any
        // other failure may come after the rollout was stored, and the slot must keep its id.
        if (error instanceof IpsecFleetError && !(error instanceof UnexpectedScriptResultError))
          await redis.del(slot).catch(() => undefined);
        throw error;
      }
    },
  );

  app.get(
    '/v1/rollouts/:id',
    {
      onRequest: auth.require('viewer'),
      schema: {
        summary: 'A rollout, its progress and its plan report',
        description:
          'Role: viewer. `plan` has one entry per target once planning looked at it (empty before).',
        tags: ['rollouts'],
        security: BEARER_SECURITY,
        params: paramsSchema,
        querystring: noQuerySchema,
        response: {
          200: z.object({ rollout: rolloutSchema, plan: z.array(targetPlanSchema) }),
          ...problemResponses(404),
        },
      },
    },
    async (request) => {
      const rollout = await rollouts.get(request.params.id);
      return { rollout, plan: await rollouts.plan(rollout.id) };
    },
  );

  app.get(
    '/v1/rollouts',
    {
      onRequest: auth.require('viewer'),
      schema: {
        summary: 'Rollouts, newest first',
        description: 'Role: viewer. Pages follow `nextCursor` until it is absent.',
        tags: ['rollouts'],
        security: BEARER_SECURITY,
        querystring: listQuerySchema,
        response: {
          200: z.object({ rollouts: z.array(rolloutSchema), nextCursor: z.string().optional() }),
        },
      },
    },
    async (request) => rollouts.list(request.query),
  );

  const actions = [
    {
      name: 'approve',
      role: 'approver',
      summary: 'Approve a rollout awaiting approval',
      description:
        'Role: approver. Someone other than the submitter (403 APPROVER_IS_SUBMITTER); once enough ' +
        'distinct approvers agreed, the rollout runs. No body.',
      run: (id: string, actor: string) => rollouts.approve(id, actor),
    },
    {
      name: 'pause',
      role: 'submitter',
      summary: 'Pause a running rollout',
      description: 'Role: submitter. No new change starts until resumed; changes in flight finish. No body.',
      run: (id: string, actor: string) => rollouts.pause(id, actor),
    },
    {
      name: 'resume',
      role: 'submitter',
      summary: 'Resume a paused rollout',
      description: 'Role: submitter. No body.',
      run: (id: string, actor: string) => rollouts.resume(id, actor),
    },
    {
      name: 'cancel',
      role: 'submitter',
      summary: 'Cancel a rollout',
      description:
        'Role: submitter. Changes still waiting are cancelled; changes talking to the cloud finish. ' +
        'No body.',
      run: (id: string, actor: string) => rollouts.cancel(id, actor),
    },
  ] as const;

  for (const action of actions) {
    app.post(
      `/v1/rollouts/:id/${action.name}`,
      {
        onRequest: auth.require(action.role),
        schema: {
          summary: action.summary,
          description: `${action.description} A rollout in another state is a 409.`,
          tags: ['rollouts'],
          security: BEARER_SECURITY,
          params: paramsSchema,
          querystring: noQuerySchema,
          response: { 200: rolloutResponse, ...problemResponses(404, 409) },
        },
      },
      async (request) => {
        requireEmptyBody(request);
        return { rollout: await action.run(request.params.id, principalOf(request).name) };
      },
    );
  }

  app.post(
    '/v1/rollouts/:id/reject',
    {
      onRequest: auth.require('approver'),
      schema: {
        summary: 'Reject a rollout awaiting approval',
        description:
          'Role: approver. Someone other than the submitter (403 APPROVER_IS_SUBMITTER). Ends the rollout.',
        tags: ['rollouts'],
        security: BEARER_SECURITY,
        params: paramsSchema,
        querystring: noQuerySchema,
        body: rejectBodySchema,
        response: { 200: rolloutResponse, ...problemResponses(404, 409) },
      },
    },
    async (request) => ({
      rollout: await rollouts.reject(request.params.id, principalOf(request).name, request.body.reason),
    }),
  );

  app.post(
    '/v1/rollouts/:id/rollback',
    {
      onRequest: auth.require('submitter'),
      schema: {
        summary: 'Roll back an ended rollout',
        description:
          'Role: submitter. Creates a new rollout putting back what this one applied (Psks excepted), ' +
          'planned and approved like any other. Body optional: `{ note }`. 409 if the rollout has not ' +
          'ended or nothing can be put back. One rollback at a time: asked again, 200 with the rollback ' +
          'already made, unless it ended undone (rejected, expired, cancelled, halted); 409 ' +
          'ROLLBACK_IN_PROGRESS while another request is creating it.',
        tags: ['rollouts'],
        security: BEARER_SECURITY,
        params: paramsSchema,
        querystring: noQuerySchema,
        body: rollbackBodySchema,
        response: {
          201: rolloutResponse.describe('the new rollout'),
          200: rolloutResponse.describe('the rollback made before'),
          ...problemResponses(404, 409),
        },
      },
    },
    async (request, reply) => {
      const { rollout, created } = await rollouts.rollback(
        request.params.id,
        principalOf(request).name,
        request.body?.note,
      );
      reply.header('location', `/v1/rollouts/${rollout.id}`);
      return reply.code(created ? 201 : 200).send({ rollout });
    },
  );

  app.get(
    '/v1/rollouts/:id/events',
    {
      onRequest: auth.require('viewer'),
      schema: {
        summary: "A rollout's audit events and progress, live, as server-sent events",
        description:
          'Role: viewer. First the events so far and the progress, then each new one: `event: audit` / ' +
          '`data: <AuditEvent JSON>` (with `id:`), and `event: progress` / `data: { id, state, plan, ' +
          'progress, ... }` whenever the rollout changes. The stream ends once the rollout is in a ' +
          'terminal state (planned, completed, halted, cancelled, rejected, expired). With ' +
          '`Last-Event-ID`, only the audit events after that id.',
        tags: ['rollouts'],
        security: BEARER_SECURITY,
        params: paramsSchema,
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
    },
    async (request, reply) => {
      const { id } = request.params;
      // A 404 before the stream starts.
      let rollout = await rollouts.get(id);
      let lastProgress = '';
      let timer: NodeJS.Timeout | undefined;
      const sse = streams.start(request, reply, () => clearTimeout(timer));
      let lastSent = sse.lastEventId;

      const tick = async () => {
        const events = await rollouts.events(id);
        for (const event of events) {
          if (lastSent !== undefined && compareStreamIds(event.id, lastSent) <= 0) continue;
          lastSent = event.id;
          sse.write(
            `id: ${event.id}\nevent: audit\ndata: ${JSON.stringify(auditEventResponseSchema.parse(event))}\n\n`,
          );
        }
        const progress = JSON.stringify(progressOf(rollout));
        if (progress !== lastProgress) {
          lastProgress = progress;
          sse.write(`event: progress\ndata: ${progress}\n\n`);
        }
      };
      const loop = async () => {
        try {
          rollout = await rollouts.get(id);
          const terminal = isTerminal(rollout);
          await tick();
          if (terminal) sse.end();
          else if (!sse.ended) timer = setTimeout(loop, pollMs);
        } catch (error) {
          request.log.warn({ err: error, rolloutId: id }, 'rollout event stream failed');
          sse.end();
        }
      };
      try {
        await tick();
      } catch (error) {
        // The stream is open already (heartbeat, the app's set of streams): close it, then fail.
        sse.end();
        throw error;
      }
      if (isTerminal(rollout)) sse.end();
      else if (!sse.ended) timer = setTimeout(loop, pollMs);

      return (reply as FastifyReply).send(sse.body);
    },
  );
};
