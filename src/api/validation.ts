import type { FastifyRequest, FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { z } from 'zod';
import { type FieldIssue, fieldIssues } from '../validation.js';

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
  const result = schema.safeParse(value);
  if (result.success) return [];
  const given = part === 'querystring' || part === 'headers' ? (value as Record<PropertyKey, unknown>) : {};
  // fieldIssues keeps the order of the issues, one for one.
  return fieldIssues(result.error).map((issue, index) => {
    const key = result.error.issues[index]?.path[0];
    return key !== undefined && Array.isArray(given?.[key])
      ? { field: String(key), rule: GIVEN_ONCE_RULE }
      : issue;
  });
}

/**
 * fastify-type-provider-zod's validator, except that the issues are made by partIssues (the
 * problem handler names the fields again from the same function, so both always agree).
 */
export const apiValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  const part = (httpPart ?? 'body') as RequestPart;
  return (data: unknown) => {
    const result = schema.safeParse(data);
    if (result.success) return { value: result.data };
    const error = partIssues(part, schema, data).map(
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
