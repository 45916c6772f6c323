import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ANONYMOUS, can, type Permission, type Principal } from '../lib/core/auth.js';
import type { KeyService } from '../lib/engine/keys.js';
import { errorBody } from './errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** What the route requires; routes without one (health, readiness) are open. */
    permission?: Permission;
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
  const authorization = request.headers.authorization ?? '';
  if (authorization.startsWith('Bearer ')) return authorization.slice('Bearer '.length).trim();
  if (authorization.startsWith('Basic ')) {
    const decoded = Buffer.from(authorization.slice('Basic '.length), 'base64').toString('utf8');
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
const UNAUTHENTICATED = errorBody('UNAUTHENTICATED', 'a valid API key is required: Authorization: Bearer <key>, X-API-Key: <key>, or Basic with the key as password');

/**
 * Checks the API key of every request to a route that declares a permission, before its body
 * is read. With auth disabled (development only; production refuses it) every request acts as
 * an anonymous administrator.
 */
export function installAuth(app: FastifyInstance, deps: { enabled: boolean; keys: KeyService }): void {
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
    const principal = await deps.keys.verify(presentedKey(request));
    if (!principal) {
      return reply.status(401).header('www-authenticate', challenge(request.url)).send(UNAUTHENTICATED);
    }
    if (!can(principal.roles, permission)) {
      return reply.status(403).send(errorBody('FORBIDDEN', `a key with roles ${principal.roles.join(', ')} may not ${permission.replace(':', ' ')}`));
    }
    request.principal = principal;
  });
}
