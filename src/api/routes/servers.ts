import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { changeSubmissionSchema } from '../../orchestrator/change.js';
import type { Orchestrator } from '../../orchestrator/orchestrator.js';
import { type Authorizer, BEARER_SECURITY } from '../auth/authorize.js';
import { laneEntrySchema, noQuerySchema } from '../schemas.js';

export interface ServersRoutesOptions {
  orchestrator: Orchestrator;
  auth: Authorizer;
}

export const serverParamsSchema = z.strictObject({ id: changeSubmissionSchema.shape.ipsecServerId });

export const serversRoutes: FastifyPluginAsyncZod<ServersRoutesOptions> = async (app, options) => {
  const { orchestrator, auth } = options;

  app.get(
    '/v1/servers/:id/lane',
    {
      onRequest: auth.require('viewer'),
      schema: {
        summary: "A server's lane: the changes waiting on it, in the order they will run",
        description: 'Role: viewer. The head (position 1) is the change running or next to run.',
        tags: ['servers'],
        security: BEARER_SECURITY,
        params: serverParamsSchema,
        querystring: noQuerySchema,
        response: {
          200: z.object({ ipsecServerId: z.string(), lane: z.array(laneEntrySchema) }),
        },
      },
    },
    async (request) => {
      const ipsecServerId = request.params.id;
      return { ipsecServerId, lane: await orchestrator.changes.laneOf(ipsecServerId) };
    },
  );
};
