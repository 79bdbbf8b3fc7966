import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { IpsecFleetError } from '../errors.js';
import { type FieldIssue, InvalidInputError } from '../validation.js';
import { ForbiddenError, UnauthorizedError } from './auth/authorize.js';
import { partIssues } from './validation.js';

/**
 * Every error answer is `application/problem+json` (RFC 9457) with a stable `code`: what clients
 * (the CLI among them) branch on. Bad input is always a 4xx naming the fields; a 5xx means a bug
 * or an unavailable dependency, and never carries internals.
 */

export const PROBLEM_TYPE_BASE = 'https://ipsec-fleet.dev/problems/';
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export const fieldIssueSchema = z.object({
  field: z.string().describe('`params.LocalSubnet` for a body field, a query or header field by its name'),
  rule: z.string().describe('the rule the value broke'),
});

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().describe('stable error code, e.g. INVALID_INPUT, CHANGE_NOT_FOUND'),
    errors: z.array(fieldIssueSchema).optional(),
  })
  .meta({ id: 'Problem' });

export type Problem = z.infer<typeof problemSchema>;

const TITLES: Readonly<Record<string, string>> = {
  INVALID_INPUT: 'Invalid input',
  UNAUTHORIZED: 'Unauthorized',
  FORBIDDEN: 'Forbidden',
  NOT_FOUND: 'Not found',
  CHANGE_NOT_FOUND: 'Change not found',
  CHANGE_STATE_CONFLICT: 'Change state conflict',
  IDEMPOTENCY_KEY_REUSED: 'Idempotency key reused',
  SECRET_KEY_MISSING: 'Secret key missing',
  PAYLOAD_TOO_LARGE: 'Payload too large',
  UNSUPPORTED_MEDIA_TYPE: 'Unsupported media type',
  ROLLOUT_NOT_FOUND: 'Rollout not found',
  ROLLOUT_STATE_CONFLICT: 'Rollout state conflict',
  APPROVER_IS_SUBMITTER: 'Approver is the submitter',
  APPROVAL_DUPLICATE: 'Approval duplicate',
  ROLLOUT_EXPIRED: 'Rollout expired',
  ROLLBACK_EMPTY: 'Nothing to roll back',
  ROLLBACK_IN_PROGRESS: 'Rollback in progress',
  ROLLBACK_TOO_EARLY: 'Rollback too early',
  SERVICE_UNAVAILABLE: 'Service unavailable',
  OUTCOME_UNKNOWN: 'Outcome unknown',
  INTERNAL_ERROR: 'Internal error',
};

/** Status of our own error codes; codes not listed here are unexpected (500). */
const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  INVALID_INPUT: 400,
  // The server cannot seal a Psk: the same submission without one would be accepted.
  SECRET_KEY_MISSING: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CHANGE_NOT_FOUND: 404,
  CHANGE_STATE_CONFLICT: 409,
  IDEMPOTENCY_KEY_REUSED: 409,
  ROLLOUT_NOT_FOUND: 404,
  // Separation of duties: the submitter may not approve or reject their own rollout.
  APPROVER_IS_SUBMITTER: 403,
  ROLLOUT_STATE_CONFLICT: 409,
  APPROVAL_DUPLICATE: 409,
  ROLLOUT_EXPIRED: 409,
  ROLLBACK_EMPTY: 409,
  ROLLBACK_IN_PROGRESS: 409,
  ROLLBACK_TOO_EARLY: 409,
};

/** Fastify's own client errors, by their codes. */
const FASTIFY_CODES: Readonly<Record<string, { status: number; code: string; rule?: string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'PAYLOAD_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'INVALID_INPUT', rule: 'must be valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'INVALID_INPUT', rule: 'must not be empty' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    status: 400,
    code: 'INVALID_INPUT',
    rule: 'Content-Length does not match the body',
  },
};

/**
 * The first issue of each field. Checks run from the basic to the particular, so the first is the
 * one to fix first: an empty region id is "must not be empty", not also "must be a region id".
 */
function firstPerField(issues: readonly FieldIssue[]): FieldIssue[] {
  const seen = new Set<string>();
  return issues.filter((issue) => !seen.has(issue.field) && seen.add(issue.field));
}

export function problem(
  status: number,
  code: string,
  detail: string,
  errors?: readonly FieldIssue[],
): Problem {
  const body: Problem = {
    type: `${PROBLEM_TYPE_BASE}${code}`,
    title: TITLES[code] ?? STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    code,
  };
  if (errors && errors.length > 0) body.errors = firstPerField(errors);
  return body;
}

/** Sends a problem (pre-serialized: no response schema can reject or reshape it). */
export function sendProblem(reply: FastifyReply, body: Problem, headers: Record<string, string> = {}) {
  return reply.code(body.status).headers(headers).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
}

/** Documentation of error answers for a route's `response` schema. */
export function problemResponses<const S extends number>(...statuses: S[]) {
  const responses = {} as Record<
    S,
    { description: string; content: Record<string, { schema: typeof problemSchema }> }
  >;
  for (const status of statuses) {
    responses[status] = {
      description: STATUS_CODES[status] ?? 'Error',
      content: { [PROBLEM_CONTENT_TYPE]: { schema: problemSchema } },
    };
  }
  return responses;
}

/** Fastify validates request parts in this order and stops at the first part that fails. */
const PARTS = [
  { context: 'params', value: (request: FastifyRequest) => request.params },
  { context: 'body', value: (request: FastifyRequest) => request.body },
  { context: 'querystring', value: (request: FastifyRequest) => request.query },
  { context: 'headers', value: (request: FastifyRequest) => request.headers },
] as const;

function isZodSchema(value: unknown): value is z.ZodType {
  return value instanceof z.ZodType;
}

function name(part: string, issue: FieldIssue): FieldIssue {
  if (part === 'body' && issue.field === '') return { field: 'body', rule: issue.rule };
  return issue;
}

/**
 * Every bad field of a request that failed validation. Fastify reports only the first part that
 * failed; the parts after it are checked here too, so one answer names every mistake. Body fields
 * keep their path (`params.LocalSubnet`); params, query and header fields are named as such.
 */
function validationIssues(error: FastifyError, request: FastifyRequest): FieldIssue[] {
  const failed = PARTS.findIndex((part) => part.context === error.validationContext);
  const schema = (request.routeOptions.schema ?? {}) as Record<string, unknown>;
  const issues: FieldIssue[] = [];
  if (failed >= 0) {
    for (const part of PARTS.slice(failed)) {
      const partSchema = schema[part.context];
      if (!isZodSchema(partSchema)) continue;
      const value = part.value(request);
      issues.push(
        ...partIssues(part.context, partSchema, value === undefined ? null : value).map((issue) =>
          name(part.context, issue),
        ),
      );
    }
  }
  if (issues.length === 0) {
    for (const entry of error.validation ?? []) {
      issues.push({
        field: entry.instancePath.replace(/^\//, '').replaceAll('/', '.'),
        rule: entry.message ?? 'is invalid',
      });
    }
  }
  return issues;
}

function isRedisUnavailable(error: Error): boolean {
  return (
    error.name === 'MaxRetriesPerRequestError' ||
    /Connection is closed|ECONNREFUSED|^Command timed out$/.test(error.message)
  );
}

/**
 * The status of a request that Redis did not answer. A read is safe to repeat (503). A write may
 * have reached Redis before its answer was lost (a command that timed out was sent, and Redis
 * still runs it): "retry shortly" would invite a second change where the first one exists (504).
 */
export function outageStatus(method: string): 503 | 504 {
  return method === 'GET' || method === 'HEAD' ? 503 : 504;
}

export function problemFor(
  error: FastifyError | Error,
  request: FastifyRequest,
): { body: Problem; headers: Record<string, string> } {
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    const issues = validationIssues(fastifyError, request);
    return { body: problem(400, 'INVALID_INPUT', 'the request has invalid fields', issues), headers: {} };
  }
  if (error instanceof InvalidInputError) {
    return { body: problem(400, 'INVALID_INPUT', error.message, error.issues), headers: {} };
  }
  if (error instanceof UnauthorizedError || error instanceof ForbiddenError) {
    return {
      body: problem(STATUS_OF_CODE[error.code] as number, error.code, error.message),
      headers: { 'www-authenticate': error.challenge },
    };
  }
  if (error instanceof IpsecFleetError && STATUS_OF_CODE[error.code] !== undefined) {
    const errors =
      error.code === 'SECRET_KEY_MISSING'
        ? [{ field: 'params.Psk', rule: 'cannot be accepted: the server has no key to seal it with' }]
        : undefined;
    return {
      body: problem(STATUS_OF_CODE[error.code] as number, error.code, error.message, errors),
      headers: {},
    };
  }
  const known = fastifyError.code ? FASTIFY_CODES[fastifyError.code] : undefined;
  if (known) {
    const errors = known.rule ? [{ field: 'body', rule: known.rule }] : undefined;
    return { body: problem(known.status, known.code, error.message, errors), headers: {} };
  }
  const status = fastifyError.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const code = status === 400 ? 'INVALID_INPUT' : status === 404 ? 'NOT_FOUND' : `HTTP_${status}`;
    return { body: problem(status, code, error.message), headers: {} };
  }
  if (isRedisUnavailable(error)) {
    if (outageStatus(request.method) === 503) {
      return {
        body: problem(503, 'SERVICE_UNAVAILABLE', 'the data store is not answering; retry shortly'),
        headers: { 'retry-after': '1' },
      };
    }
    return {
      body: problem(
        504,
        'OUTCOME_UNKNOWN',
        'the data store did not answer, and the request may have taken effect: look for it before ' +
          'sending it again, or send it again with the same Idempotency-Key',
      ),
      headers: {},
    };
  }
  return {
    body: problem(
      500,
      'INTERNAL_ERROR',
      `an unexpected error occurred (request ${request.id}); see the server log`,
    ),
    headers: {},
  };
}

export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { body, headers } = problemFor(error, request);
    if (body.status >= 500) request.log.error({ err: error }, 'request failed');
    else request.log.info({ code: body.code, status: body.status }, 'request rejected');
    return sendProblem(reply, body, headers);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
