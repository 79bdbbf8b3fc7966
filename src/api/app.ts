import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { serializerCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../log.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { Rollouts } from '../rollouts/rollouts.js';
import { InvalidInputError } from '../validation.js';
import { AuditTail } from './audit-tail.js';
import { BEARER_SECURITY, createAuthorizer } from './auth/authorize.js';
import type { TokenStore } from './auth/tokens.js';
import { registerOpenApi } from './openapi.js';
import { installProblemHandlers, problemFor, sendProblem } from './problem.js';
import { auditRoutes } from './routes/audit.js';
import { changesRoutes } from './routes/changes.js';
import { eventsRoutes } from './routes/events.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { rolloutsRoutes } from './routes/rollouts.js';
import { serversRoutes } from './routes/servers.js';
import {
  apiValidatorCompiler,
  exposeRepeatedHeaders,
  FORBIDDEN_KEY_RULE,
  forbiddenKeyPath,
} from './validation.js';

export const DEFAULT_BODY_LIMIT = 64 * 1024;

export interface BuildAppOptions {
  orchestrator: Orchestrator;
  /** The accepted tokens (hashes), loaded from the tokens file. */
  tokens: TokenStore;
  /** pino from src/log.ts, the one place secrets are redacted; no logging without one. */
  logger?: Logger | undefined;
  /** Largest request body in bytes (413 beyond); default 64 KiB. */
  bodyLimit?: number | undefined;
  /** The rollouts library (issue 6); without it the /v1/rollouts routes are not served. */
  rollouts?: Rollouts | undefined;
}

export type ApiApp = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/**
 * The producer API: validates, authorizes, enqueues and reports, over the orchestrator's library
 * API. Stateless apart from its audit tail (one blocking Redis connection feeding the metrics and
 * the event streams), so any number of processes may serve the same Redis.
 */
export function buildApp(options: BuildAppOptions): ApiApp {
  const { orchestrator } = options;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : {}),
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // A URL the router cannot decode (`/v1/changes/%`) never reaches the error handler.
    frameworkErrors: (error, request, reply) => {
      const { body, headers } = problemFor(error, request);
      sendProblem(reply, body, headers);
    },
  }).withTypeProvider<ZodTypeProvider>() as unknown as ApiApp;
  app.setValidatorCompiler(apiValidatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installProblemHandlers(app);
  app.addHook('preValidation', exposeRepeatedHeaders);

  // JSON is the only body type (anything else is a 415); an empty body counts as no body, so a
  // bodiless POST that still says `Content-Type: application/json` is accepted.
  app.removeAllContentTypeParsers();
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') return done(null, undefined);
    parseJson(request, body as string, (error, value) => {
      // The parser answers a key that could reach Object.prototype as it answers broken JSON:
      // a client that sent valid JSON is told which key was refused instead.
      const field = error ? forbiddenKeyOf(body as string) : undefined;
      if (field === undefined) done(error, value);
      else done(new InvalidInputError('request', [{ field, rule: FORBIDDEN_KEY_RULE }]), undefined);
    });
  });

  registerOpenApi(app);
  const auth = createAuthorizer(app, options.tokens);
  const tail = new AuditTail(orchestrator, { log: app.log });

  app.register(healthRoutes, { orchestrator });
  // Registered before the tail starts, so that the tail's replay of the stream reaches it.
  app.register(metricsRoutes, { orchestrator, tail });
  app.register(changesRoutes, { orchestrator, auth });
  app.register(async (scope) => {
    // The events plugin knows nothing of auth: its routes are viewer routes, checked first thing.
    scope.addHook('onRequest', auth.require('viewer'));
    scope.addHook('onRoute', (route) => {
      route.schema = { ...route.schema, security: BEARER_SECURITY };
    });
    await scope.register(eventsRoutes, { orchestrator, tail });
  });
  app.register(serversRoutes, { orchestrator, auth });
  app.register(auditRoutes, { orchestrator, auth });
  if (options.rollouts) app.register(rolloutsRoutes, { rollouts: options.rollouts, auth });

  app.addHook('onReady', async () => {
    tail.start();
  });
  app.addHook('onClose', async () => {
    await tail.close();
  });
  return app;
}

/** The refused key of a body that is valid JSON but for it; undefined when the JSON is broken. */
function forbiddenKeyOf(body: string): string | undefined {
  try {
    return forbiddenKeyPath(JSON.parse(body));
  } catch {
    return undefined;
  }
}
