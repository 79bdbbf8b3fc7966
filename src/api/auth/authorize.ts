import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { IpsecFleetError } from '../../errors.js';
import { grants, type Role } from './roles.js';
import type { Principal, TokenStore } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request acts as, once a route's role check passed; null on anonymous routes. */
    principal: Principal | null;
  }
}

const REALM = 'Bearer realm="ipsec-fleet"';

/** 401: no token, a malformed Authorization header, or a token the server does not know. */
export class UnauthorizedError extends IpsecFleetError {
  /** The WWW-Authenticate challenge (RFC 6750). */
  readonly challenge: string;

  constructor(message: string, invalidToken: boolean) {
    super('UNAUTHORIZED', message);
    this.challenge = invalidToken ? `${REALM}, error="invalid_token"` : REALM;
  }
}

/** 403: a valid token without the role the route needs. */
export class ForbiddenError extends IpsecFleetError {
  readonly challenge = `${REALM}, error="insufficient_scope"`;

  constructor(name: string, role: Role) {
    super(
      'FORBIDDEN',
      `the token ${JSON.stringify(name)} does not hold the role ${role} (or one that grants it)`,
    );
  }
}

/** The OpenAPI security requirement of a route behind a bearer token. */
export const BEARER_SECURITY = [{ bearerAuth: [] }];

const BEARER = /^Bearer +([^\s]+) *$/i;

export interface Authorizer {
  /** An onRequest hook: 401 without a valid token, 403 without `role`; sets `request.principal`. */
  require(role: Role): onRequestAsyncHookHandler;
}

/**
 * Bearer-token auth for the API. It runs as an onRequest hook, before the body is read or
 * validated, so a caller without a valid token learns nothing but 401 (not even a 400 or 413).
 */
export function createAuthorizer(app: FastifyInstance, tokens: TokenStore): Authorizer {
  app.decorateRequest('principal', null);
  return {
    require(role) {
      return async (request) => {
        const header = request.headers.authorization;
        if (header === undefined || header === '') {
          throw new UnauthorizedError('a bearer token is required (Authorization: Bearer <token>)', false);
        }
        const match = BEARER.exec(header);
        if (!match) throw new UnauthorizedError('the Authorization header must be "Bearer <token>"', true);
        const principal = tokens.authenticate(match[1] as string);
        if (!principal) throw new UnauthorizedError('the bearer token is not valid', true);
        if (!grants(principal.roles, role)) throw new ForbiddenError(principal.name, role);
        request.principal = principal;
      };
    },
  };
}

/** The principal of a request that passed a role check (a bug if it did not). */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) {
    throw new IpsecFleetError(
      'ROUTE_WITHOUT_ROLE_CHECK',
      'the route has no role check: request.principal is not set',
    );
  }
  return request.principal;
}
