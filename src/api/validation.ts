import type { FastifyRequest, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { z } from 'zod';
import { type FieldIssue, fieldIssue, parseInWords, statedIssues } from '../validation.js';

/** The request parts Fastify validates, by the names it gives them. */
export type RequestPart = 'params' | 'body' | 'querystring' | 'headers';

export const GIVEN_ONCE_RULE = 'must be given once';

function isZodObject(value: unknown): value is z.ZodObject {
  return value instanceof z.ZodObject;
}

/**
 * Every bad field of one request part. A query parameter or header given more than once arrives
 * as a list (see exposeRepeatedHeaders): whatever rule the list broke, what the client has to fix
 * is the repetition.
 */
export function partIssues(part: RequestPart, schema: z.ZodType, value: unknown): FieldIssue[] {
  const result = parseInWords(schema, value);
  return result.success ? [] : issuesOf(part, result.error, value);
}

function issuesOf(part: RequestPart, error: z.ZodError, value: unknown): FieldIssue[] {
  // A body that is absent or `null` is missing, whatever the schema wanted instead.
  if ((value === null || value === undefined) && part === 'body') return [{ field: '', rule: 'is required' }];
  const given = part === 'querystring' || part === 'headers' ? (value as Record<PropertyKey, unknown>) : {};
  return statedIssues(error).map((issue) => {
    const key = issue.path[0];
    return key !== undefined && Array.isArray(given?.[key])
      ? { field: String(key), rule: GIVEN_ONCE_RULE }
      : fieldIssue(issue);
  });
}

/**
 * fastify-type-provider-zod's validator, except that the issues are made by partIssues (the
 * problem handler names the fields again from the same function, so both always agree).
 */
export const apiValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const part = (httpPart ?? 'body') as RequestPart;
  return (data: unknown) => {
    const result = parseInWords(schema, data);
    if (result.success) return { value: result.data };
    const error = issuesOf(part, result.error, data).map(
      (issue): FastifySchemaValidationError => ({
        keyword: 'zod',
        instancePath: `/${issue.field.replaceAll('.', '/')}`,
        schemaPath: '',
        params: {},
        message: issue.rule,
      }),
    );
    return { error };
  };
};

/**
 * Node joins a header sent twice into one value, `a, b`: an Idempotency-Key the client never
 * sent, which would then create a change under it. Each header a route declares is put back as
 * the list of values it was given, which its schema then refuses ("must be given once") along
 * with every other bad field, before anything runs.
 */
export async function exposeRepeatedHeaders(request: FastifyRequest): Promise<void> {
  const schema = (request.routeOptions.schema as { headers?: unknown } | undefined)?.headers;
  if (!isZodObject(schema)) return;
  const declared = new Set(Object.keys(schema.shape));
  const values = new Map<string, string[]>();
  const raw = request.raw.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!declared.has(name)) continue;
    values.set(name, [...(values.get(name) ?? []), raw[i + 1] as string]);
  }
  for (const [name, list] of values) {
    if (list.length > 1) request.headers[name] = list;
  }
}

export const FORBIDDEN_KEY_RULE = 'is not accepted as a key (it names a property of every object)';

interface Visit {
  value: unknown;
  key: string;
  parent: Visit | undefined;
}

function pathOf(visit: Visit): string {
  const keys: string[] = [];
  for (let at: Visit | undefined = visit; at?.parent !== undefined; at = at.parent) keys.push(at.key);
  return keys.reverse().join('.');
}

/**
 * Where a parsed JSON value holds a key the body parser refuses (`__proto__`, or `prototype`
 * under `constructor`), e.g. `params.__proto__`; undefined when it holds none. JSON.parse keeps
 * `__proto__` as an own key, so the walk finds it where the client wrote it. A loop with links to
 * parents, neither recursion nor a path per value: JSON.parse takes nesting far deeper than the
 * call stack would, and a body of 32 MiB could be that deep.
 */
export function forbiddenKeyPath(value: unknown): string | undefined {
  const pending: Visit[] = [{ value, key: '', parent: undefined }];
  for (let visit = pending.pop(); visit !== undefined; visit = pending.pop()) {
    if (typeof visit.value !== 'object' || visit.value === null) continue;
    for (const [key, inner] of Object.entries(visit.value)) {
      const child: Visit = { value: inner, key, parent: visit };
      if (key === '__proto__') return pathOf(child);
      if (
        key === 'constructor' &&
        typeof inner === 'object' &&
        inner !== null &&
        Object.hasOwn(inner, 'prototype')
      )
        return `${pathOf(child)}.prototype`;
      pending.push(child);
    }
  }
  return undefined;
}
