import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { packageVersion } from '../package-info.js';
import { withErrorResponses } from './error-responses.js';

/**
 * The OpenAPI document, generated from the zod schemas of the routes, at `/openapi.json`, and
 * Swagger UI at `/docs`. Both are anonymous: documentation is not data. Register before the routes
 * (the document collects them as they are added). Each route's documented answers get the error
 * answers of its shape from withErrorResponses, so that none is left out.
 */
export function registerOpenApi(app: FastifyInstance): void {
  app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'ipsec-fleet',
        description:
          'Safe, rate-controlled configuration changes for fleets of Alibaba Cloud IPsec servers. ' +
          'Errors are application/problem+json (RFC 9457) with a stable `code`.',
        version: packageVersion,
      },
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'an API token, ipf_<43 characters>' },
        },
      },
      tags: [
        { name: 'changes', description: 'submit, read, list and cancel changes' },
        { name: 'servers', description: 'server lanes' },
        { name: 'rollouts', description: 'plan, approve, run, pause, cancel and roll back rollouts' },
        { name: 'audit', description: 'the audit trail' },
        { name: 'operations', description: 'health, readiness and metrics' },
      ],
    },
    transform: ({ route, schema, ...rest }) =>
      jsonSchemaTransform({
        ...rest,
        route,
        schema: schema && !schema.hide ? withErrorResponses(route, schema) : schema,
      }),
    transformObject: jsonSchemaTransformObject,
  });
  app.register(fastifySwaggerUi, { routePrefix: '/docs', logLevel: 'warn' });
  app.register(async (scope) => {
    scope.get('/openapi.json', { schema: { hide: true }, logLevel: 'warn' }, async () => app.swagger());
  });
}
