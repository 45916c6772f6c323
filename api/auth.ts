import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { ANONYMOUS, can, type Permission, type Principal } from '../lib/core/auth.js';
import { ErrorCode, httpStatusOf } from '../lib/core/error-codes.js';
import type { KeyService } from '../lib/engine/keys.js';
import type { AuthFailureLimiter } from './auth-limiter.js';
import { errorBody, sendError } from './errors.js';

/**
 * Who may call a route: a permission the request's key must grant; `public` for routes anyone
 * may call (health, readiness, the explorer's static files); or `queue-board` for Bull Board's
 * routes, whose scope checks the key itself (api/bull-board.ts).
 */
export type RouteAccess = Permission | 'public' | 'queue-board';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Who may call the route. Every route declares it: the server refuses to start with a route
     * that does not (installAuth), and a request to such a route would be refused with 403.
     */
    permission?: RouteAccess;
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
function presentedKey(request: FastifyRequest): string | undefined {
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
function challenge(url: string): string {
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
export async function authenticate(request: FastifyRequest, reply: FastifyReply, auth: Authenticator, options: { fresh?: boolean; unauthenticatedMessage?: string } = {}): Promise<Principal | undefined> {
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

/** A route of the server as registered: what it answers, who may call it, what it answers with. */
export interface DeclaredRoute {
  method: string;
  url: string;
  /** Undefined only for a route that forgot to declare it, which stops the server from starting. */
  permission: RouteAccess | undefined;
  /** The statuses its response schema declares (none for a route without one). */
  responses: string[];
}

const declaredRoutes = new WeakMap<FastifyInstance, DeclaredRoute[]>();

/** Every route of a server built with installAuth, as registered (HEAD routes included). */
export function routesOf(app: FastifyInstance): readonly DeclaredRoute[] {
  return declaredRoutes.get(app) ?? [];
}

/**
 * Declares the access of every route a plugin registers in `scope`, for plugins whose routes
 * cannot carry a config of their own (the docs page, Bull Board), or only those `only` picks. A
 * route that declares its own keeps it.
 */
export function declareAccess(scope: FastifyInstance, permission: RouteAccess, only: (route: RouteOptions) => boolean = () => true): void {
  scope.addHook('onRoute', (route) => {
    if (!only(route)) return;
    route.config = { ...route.config, permission: route.config?.permission ?? permission };
  });
}

/**
 * Checks the API key of every request to a route that requires a permission, before its body
 * is read. With auth disabled (development only; production refuses it) every request acts as
 * an anonymous administrator. Authorization fails closed: every route must declare who may call
 * it (`config.permission`), the server does not start with one that does not, and a request that
 * reaches such a route anyway is refused.
 */
export function installAuth(app: FastifyInstance, deps: { enabled: boolean } & Authenticator): void {
  app.decorateRequest('principal', null as unknown as Principal);
  // Routes are collected as they are registered and checked once all are: a plugin's scope
  // declares its routes (declareAccess) in an onRoute hook that runs after this one.
  const routes: Array<{ method: string; url: string; options: { config?: { permission?: RouteAccess }; schema?: { response?: unknown } } }> = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url, options: route });
  });
  declaredRoutes.set(app, []);
  app.addHook('onReady', async () => {
    const table = routes.map(({ method, url, options }) => ({
      method,
      url,
      permission: options.config?.permission,
      responses: Object.keys((options.schema?.response as Record<string, unknown> | undefined) ?? {}),
    }));
    declaredRoutes.set(app, table);
    const undeclared = table.filter((route) => route.permission === undefined).map((route) => `${route.method} ${route.url}`);
    if (undeclared.length > 0) {
      throw new Error(`routes that do not declare who may call them (config.permission: a permission, 'public' or 'queue-board'): ${undeclared.join(', ')}`);
    }
  });
  app.addHook('onRequest', async (request, reply) => {
    // The not-found handler answers 404 to anyone: it says only that no route matched.
    if (request.is404) return;
    const permission = request.routeOptions.config?.permission;
    if (permission === 'public' || permission === 'queue-board') return;
    if (permission === undefined) {
      return sendError(reply, ErrorCode.forbidden, 'this route declares no permission, so nobody may call it');
    }
    if (!deps.enabled) {
      request.principal = ANONYMOUS;
      return;
    }
    const principal = await authenticate(request, reply, deps, { fresh: request.routeOptions.config?.freshKey === true });
    if (!principal) return reply;
    if (!can(principal.roles, permission)) {
      return reply.status(httpStatusOf(ErrorCode.forbidden)).send(errorBody(ErrorCode.forbidden, `a key with roles ${principal.roles.join(', ')} may not ${permission.replace(':', ' ')}`));
    }
    request.principal = principal;
  });
}
