import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ANONYMOUS, can, type Permission, type Principal } from '../lib/core/auth.js';
import { ErrorCode, httpStatusOf } from '../lib/core/error-codes.js';
import type { KeyService } from '../lib/engine/keys.js';
import type { AuthFailureLimiter } from './auth-limiter.js';
import { errorBody } from './errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route requires; routes without one (health, readiness) are open. */
    permission?: Permission;
    /**
     * Read the key from the store, not the cache: for routes that manage keys, so that a
     * revoked admin key whose revocation has not reached this process cannot mint or revoke.
     */
    freshKey?: boolean;
  }
  interface FastifyRequest {
    principal: Principal;
  }
}

/**
 * The key a request presents: `Authorization: Bearer <key>`, `X-API-Key: <key>`, or HTTP Basic
 * with the key as the password (any user name), which is what a browser can send for the docs
 * page and Bull Board.
 */
export function presentedKey(request: FastifyRequest): string | undefined {
  // The scheme's name is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` are Bearer.
  const [, scheme = '', credentials = ''] = /^(\S+)[ \t]+(.*)$/s.exec(request.headers.authorization ?? '') ?? [];
  if (scheme.toLowerCase() === 'bearer') return credentials.trim();
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(credentials.trim(), 'base64').toString('utf8');
    return decoded.slice(decoded.indexOf(':') + 1);
  }
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}

/** Pages people open in a browser get a Basic challenge, so that the browser asks for the key. */
export function challenge(url: string): string {
  return /^\/(docs|admin)(\/|$)/.test(url) ? 'Basic realm="workfleet", charset="UTF-8"' : 'Bearer realm="workfleet"';
}

/** One answer for every key that does not authenticate, so none can be told from another. */
const UNAUTHENTICATED_MESSAGE = 'a valid API key is required: Authorization: Bearer <key>, X-API-Key: <key>, or Basic with the key as password';

export interface Authenticator {
  keys: KeyService;
  /** Failed authentications per address; absent when API_AUTH_FAILURES_PER_MINUTE is 0. */
  limiter?: AuthFailureLimiter;
}

function refuseLimited(reply: FastifyReply, retryAfterSeconds: number): FastifyReply {
  return reply
    .status(httpStatusOf(ErrorCode.rateLimited))
    .header('retry-after', String(retryAfterSeconds))
    .send(errorBody(ErrorCode.rateLimited, `too many failed authentications from this address; retry in ${retryAfterSeconds} s`));
}

/**
 * The principal of a request's key; or, having answered the request itself (429 for an address
 * that spent its budget of failures, before the key is looked at; 401), undefined.
 */
export async function authenticate(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: Authenticator,
  options: { fresh?: boolean; unauthenticatedMessage?: string } = {},
): Promise<Principal | undefined> {
  // request.ip is the socket's address, or X-Forwarded-For's when API_TRUST_PROXY trusts the sender.
  const wait = auth.limiter?.refusal(request.ip);
  if (wait !== undefined) {
    await refuseLimited(reply, wait);
    return undefined;
  }
  const principal = await auth.keys.verify(presentedKey(request), { fresh: options.fresh === true });
  if (principal) return principal;
  const over = await auth.limiter?.fail(request.ip);
  if (over !== undefined) await refuseLimited(reply, over);
  else {
    await reply
      .status(httpStatusOf(ErrorCode.unauthenticated))
      .header('www-authenticate', challenge(request.url))
      .send(errorBody(ErrorCode.unauthenticated, options.unauthenticatedMessage ?? UNAUTHENTICATED_MESSAGE));
  }
  return undefined;
}

/**
 * Checks the API key of every request to a route that declares a permission, before its body
 * is read. With auth disabled (development only; production refuses it) every request acts as
 * an anonymous administrator.
 */
export function installAuth(app: FastifyInstance, deps: { enabled: boolean } & Authenticator): void {
  app.decorateRequest('principal', null as unknown as Principal);
  // The docs page and its OpenAPI document come from a plugin; they need a key like every route.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...route.config, permission: 'workflows:read' };
  });
  app.addHook('onRequest', async (request, reply) => {
    const permission = request.routeOptions.config?.permission;
    if (!permission) return;
    if (!deps.enabled) {
      request.principal = ANONYMOUS;
      return;
    }
    const principal = await authenticate(request, reply, deps, { fresh: request.routeOptions.config?.freshKey === true });
    if (!principal) return reply;
    if (!can(principal.roles, permission)) {
      return reply
        .status(httpStatusOf(ErrorCode.forbidden))
        .send(errorBody(ErrorCode.forbidden, `a key with roles ${principal.roles.join(', ')} may not ${permission.replace(':', ' ')}`));
    }
    request.principal = principal;
  });
}
