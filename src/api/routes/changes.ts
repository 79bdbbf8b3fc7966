import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { diffConfig, type FieldChange } from '../../ipsec/diff.js';
import type { PskFingerprint } from '../../ipsec/psk.js';
import { ipsecServerSchema } from '../../ipsec/server.js';
import type { MutableParams } from '../../ipsec/update-params.js';
import {
  approvalReasonSchema,
  type ChangeView,
  changeSubmissionSchema,
  listChangesQuerySchema,
} from '../../orchestrator/change.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import { InvalidInputError } from '../../validation.js';
import { type Authorizer, BEARER_SECURITY, principalOf } from '../auth/authorize.js';
import { problemResponses } from '../problem.js';
import {
  auditEventResponseSchema,
  changeSchema,
  fieldChangeSchema,
  noQuerySchema,
  queryInt,
} from '../schemas.js';

export interface ChangesRoutesOptions {
  orchestrator: Orchestrator;
  auth: Authorizer;
}

/** The id of a change in a path; ids the store does not know are a 404, not a 400. */
export const changeIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be a change id such as chg-01jq8x2m3n4p5q6r7s8t9v0w');

export const changeParamsSchema = z.strictObject({ id: changeIdSchema });

/** The submission as the API takes it: the actor is the token, the idempotency key a header. */
const submissionBodySchema = changeSubmissionSchema.omit({ actor: true, idempotencyKey: true });

const idempotencyHeadersSchema = z.looseObject({
  'idempotency-key': changeSubmissionSchema.shape.idempotencyKey
    .unwrap()
    .regex(/^[\x20-\x7e]+$/, 'must be 1 to 256 printable ASCII characters')
    .optional()
    .describe('makes retries safe: the same key and body return the change created first'),
});

const listShape = listChangesQuerySchema.shape;
const listQuerySchema = z.strictObject({
  server: listShape.server.describe('only the changes of this IPsec server'),
  state: listShape.state,
  cursor: listShape.cursor.describe('nextCursor of the previous page'),
  limit: queryInt(listShape.limit.unwrap()).optional().describe('1 to 500, default 50'),
});

const changeResponse = z.object({ change: changeSchema });

const rejectBodySchema = z.strictObject({
  reason: approvalReasonSchema.describe('why the change is rejected, 1 to 1024 characters (audited)'),
});

/** Bodiless POSTs (cancel, approve) take no body, or an empty one; anything else is a 400. */
function requireEmptyBody(body: unknown): void {
  const empty =
    body === undefined ||
    body === null ||
    body === '' ||
    (typeof body === 'object' && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty) throw new InvalidInputError('request', [{ field: 'body', rule: 'must be empty' }]);
}

// Both sides' Psks are taken out before diffConfig, which then never makes a label.
const NO_PSK: PskFingerprint = () => '';

/**
 * What the change would alter, from the server as read before its dry run. Both sides carry the
 * Psk as a fingerprint (the change never holds it in clear), so the Psk is compared here and the
 * rest by diffConfig.
 */
export function changeDiff(change: ChangeView): FieldChange[] {
  if (!change.before) return [];
  const parsed = ipsecServerSchema.safeParse(change.before);
  if (!parsed.success) return [];
  const { Psk: beforePsk, ...before } = parsed.data;
  const { Psk, ...params } = change.params as MutableParams;
  const diff = diffConfig(before, params, NO_PSK);
  if (typeof Psk === 'string' && Psk !== beforePsk) diff.push({ field: 'Psk', from: beforePsk, to: Psk });
  return diff;
}

export const changesRoutes: FastifyPluginAsyncZod<ChangesRoutesOptions> = async (app, options) => {
  const { orchestrator, auth } = options;

  app.post(
    '/v1/changes',
    {
      onRequest: auth.require('submitter'),
      schema: {
        summary: 'Submit a change to one IPsec server',
        description:
          'Role: submitter. The change joins the end of its server lane. With an Idempotency-Key, ' +
          'a retry with the same body returns the first change (200); another body is a 409.',
        tags: ['changes'],
        security: BEARER_SECURITY,
        querystring: noQuerySchema,
        headers: idempotencyHeadersSchema,
        body: submissionBodySchema,
        response: {
          200: changeResponse.describe('an earlier submission with the same Idempotency-Key and body'),
          201: changeResponse.describe('the change was created'),
          ...problemResponses(409),
        },
      },
    },
    async (request, reply) => {
      const idempotencyKey = request.headers['idempotency-key'];
      const { change, created } = await orchestrator.changes.submit({
        ...request.body,
        actor: principalOf(request).name,
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
      });
      if (created) reply.header('location', `/v1/changes/${change.id}`);
      return reply.code(created ? 201 : 200).send({ change });
    },
  );

  app.get(
    '/v1/changes/:id',
    {
      onRequest: auth.require('viewer'),
      schema: {
        summary: 'A change, its audit timeline and its diff',
        description:
          'Role: viewer. `diff` compares the server as read before the dry run with the params ' +
          '(the Psk as a fingerprint); it is empty until that read happened.',
        tags: ['changes'],
        security: BEARER_SECURITY,
        params: changeParamsSchema,
        querystring: noQuerySchema,
        response: {
          200: z.object({
            change: changeSchema,
            timeline: z.array(auditEventResponseSchema),
            diff: z.array(fieldChangeSchema),
          }),
          ...problemResponses(404),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const { change, timeline } = await orchestrator.changes.getWithTimeline(id);
      return { change, timeline, diff: changeDiff(change) };
    },
  );

  app.get(
    '/v1/changes',
    {
      onRequest: auth.require('viewer'),
      schema: {
        summary: 'Changes, newest first',
        description: 'Role: viewer. Pages follow `nextCursor` until it is absent.',
        tags: ['changes'],
        security: BEARER_SECURITY,
        querystring: listQuerySchema,
        response: {
          200: z.object({ changes: z.array(changeSchema), nextCursor: z.string().optional() }),
        },
      },
    },
    async (request) => {
      const page = await orchestrator.changes.list(request.query);
      return page.nextCursor === undefined ? { changes: page.changes } : page;
    },
  );

  app.post(
    '/v1/changes/:id/cancel',
    {
      onRequest: auth.require('submitter'),
      schema: {
        summary: 'Cancel a waiting change',
        description:
          'Role: submitter. Only a change that is queued or backing off can be cancelled: a running ' +
          'or ended one is a 409. No body.',
        tags: ['changes'],
        security: BEARER_SECURITY,
        params: changeParamsSchema,
        querystring: noQuerySchema,
        response: {
          200: changeResponse,
          ...problemResponses(404, 409),
        },
      },
    },
    async (request) => {
      requireEmptyBody(request.body);
      const change = await orchestrator.changes.cancel(request.params.id, principalOf(request).name);
      return { change };
    },
  );

  app.post(
    '/v1/changes/:id/approve',
    {
      onRequest: auth.require('approver'),
      schema: {
        summary: 'Approve a change awaiting approval',
        description:
          'Role: approver. Its submitter cannot approve it (403 APPROVER_IS_SUBMITTER); an approver ' +
          'counts once, so approving again changes nothing. The approval that makes the number ' +
          'the policy requires puts the change in its server lane (state queued). A change that ' +
          'is not awaiting approval, or whose approval window closed (it expires), is a 409. No body.',
        tags: ['changes'],
        security: BEARER_SECURITY,
        params: changeParamsSchema,
        querystring: noQuerySchema,
        response: {
          200: changeResponse,
          ...problemResponses(404, 409),
        },
      },
    },
    async (request) => {
      requireEmptyBody(request.body);
      const change = await orchestrator.changes.approve(request.params.id, principalOf(request).name);
      return { change };
    },
  );

  app.post(
    '/v1/changes/:id/reject',
    {
      onRequest: auth.require('approver'),
      schema: {
        summary: 'Reject a change awaiting approval',
        description:
          'Role: approver. The change ends rejected, with the reason, and is never applied. Its ' +
          'submitter cannot reject it (403 APPROVER_IS_SUBMITTER: cancel it instead); a change ' +
          'that is not awaiting approval is a 409.',
        tags: ['changes'],
        security: BEARER_SECURITY,
        params: changeParamsSchema,
        querystring: noQuerySchema,
        body: rejectBodySchema,
        response: {
          200: changeResponse,
          ...problemResponses(404, 409),
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const change = await orchestrator.changes.reject(id, principalOf(request).name, request.body.reason);
      return { change };
    },
  );
};
