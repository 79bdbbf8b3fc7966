import type { FastifySchema, RouteOptions } from 'fastify';
import { outageStatus, problemResponses } from './problem.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * false: the route answers whether Redis does or not (it needs none, or reports an outage in
     * its own answer), so it never gives the 503 or 504 of a data store that does not answer.
     */
    needsRedis?: boolean;
  }
}

/** Methods whose body Fastify never parses: no 413, 415 or broken JSON. */
const BODILESS_METHODS = new Set(['GET', 'HEAD']);

const INPUT_PARTS = ['params', 'querystring', 'headers', 'body'] as const;

/**
 * The error answers a route can give by its shape alone, whatever it does: its input is
 * validated (400), it is behind a token (401, 403), its body is parsed (413, 415, broken JSON
 * 400), and it waits on Redis (503 to a read, 504 to a write, as the problem handler decides).
 * Added to the route's documented responses when the OpenAPI document is made, after every hook
 * shaped the route (the event streams get their security from one), so that no route has to
 * remember them; the errors of its own logic (404, 409) a route lists itself.
 */
export function errorStatusesOf(route: Pick<RouteOptions, 'method' | 'config'>, schema: FastifySchema) {
  const methods = [route.method].flat().map((method) => method.toUpperCase());
  const statuses = new Set<number>();
  if (INPUT_PARTS.some((part) => schema[part] !== undefined)) statuses.add(400);
  if (Array.isArray(schema.security) && schema.security.length > 0) {
    statuses.add(401);
    statuses.add(403);
  }
  for (const method of methods) {
    if (!BODILESS_METHODS.has(method)) {
      statuses.add(400);
      statuses.add(413);
      statuses.add(415);
    }
    if (route.config?.needsRedis !== false) statuses.add(outageStatus(method));
  }
  return [...statuses].sort((a, b) => a - b);
}

/** The route's schema with a problem response for each status of errorStatusesOf it lacks. */
export function withErrorResponses(
  route: Pick<RouteOptions, 'method' | 'config'>,
  schema: FastifySchema,
): FastifySchema {
  const documented = (schema.response ?? {}) as Record<string, unknown>;
  // A status the route documents itself keeps its own schema (the 503 of /readyz is no problem).
  return { ...schema, response: { ...problemResponses(...errorStatusesOf(route, schema)), ...documented } };
}
