import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { type ApiApp, buildApp } from '../../src/api/app.js';
import { ROLES, type Role } from '../../src/api/auth/roles.js';
import { generateToken, hashToken, TokenStore } from '../../src/api/auth/tokens.js';
import { Rollouts } from '../../src/rollouts/rollouts.js';
import { type Harness, startHarness } from '../support/orchestrator-harness.js';

export type Who = Role | 'anonymous' | 'bad';

export interface Api {
  harness: Harness;
  app: ApiApp;
  /** A token per role; the token's name is `<role>-user`. */
  tokens: Record<Role, string>;
  store: TokenStore;
  /** A request as `who` (a role's token, none, or a well-formed token the server does not know). */
  call(who: Who, options: InjectOptions): Promise<LightMyRequestResponse>;
  /** The rollouts library behind the /v1/rollouts routes, when asked for (no rollout worker). */
  rollouts: Rollouts | undefined;
  /** The Redis keys under the harness's prefix, sorted: what a refused request must not change. */
  keys(): Promise<string[]>;
  /** The body of the n-th sim server as a submission. */
  target(index: number): { ipsecServerId: string; regionId: string };
  close(): Promise<void>;
}

export async function startApi(
  options: Parameters<typeof startHarness>[0] & { bodyLimit?: number; rollouts?: boolean } = {},
): Promise<Api> {
  const harness = await startHarness(options);
  const rollouts = options.rollouts ? Rollouts.for(harness.orchestrator) : undefined;
  const tokens = Object.fromEntries(ROLES.map((role) => [role, generateToken()])) as Record<Role, string>;
  const store = new TokenStore(
    ROLES.map((role) => ({ name: `${role}-user`, roles: [role], sha256: hashToken(tokens[role]) })),
  );
  const app = buildApp({
    orchestrator: harness.orchestrator,
    tokens: store,
    bodyLimit: options.bodyLimit,
    rollouts,
  });
  await app.ready();
  return {
    harness,
    app,
    tokens,
    store,
    rollouts,
    async keys() {
      const found: string[] = [];
      const stream = harness.orchestrator.redis.scanStream({ match: `${harness.orchestrator.keys.tag}*` });
      for await (const batch of stream) found.push(...(batch as string[]));
      // BullMQ writes each queue's meta key by itself, some time after the queue connects.
      return found.filter((key) => !key.endsWith(':meta')).sort();
    },
    call(who, request) {
      // An array is a header sent more than once.
      const headers: Record<string, string | string[]> = {
        ...(request.headers as Record<string, string | string[]>),
      };
      if (who === 'bad') headers.authorization = `Bearer ${generateToken()}`;
      else if (who !== 'anonymous') headers.authorization = `Bearer ${tokens[who]}`;
      return app.inject({ ...request, headers });
    },
    target(index) {
      const server = harness.sim.servers[index];
      if (!server) throw new Error(`no sim server ${index}`);
      return { ipsecServerId: server.ipsecServerId, regionId: server.regionId };
    },
    async close() {
      await app.close();
      await rollouts?.close();
      await harness.close();
    },
  };
}

export const PROBLEM_JSON = /^application\/problem\+json/;
