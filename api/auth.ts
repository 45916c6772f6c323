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

function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice('Bearer '.length).trim();
  const header = request.headers['x-api-key'];
  return typeof header === 'string' ? header.trim() : undefined;
}

/** One answer for every key that does not authenticate, so none can be told from another. */
const UNAUTHENTICATED = errorBody('UNAUTHENTICATED', 'a valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>');

/**
 * Checks the API key of every request to a route that declares a permission, before its body
 * is read. With auth disabled (development only; production refuses it) every request acts as
 * an anonymous administrator.
 */
export function installAuth(app: FastifyInstance, deps: { enabled: boolean; keys: KeyService }): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request, reply) => {
    const permission = request.routeOptions.config?.permission;
    if (!permission) return;
    if (!deps.enabled) {
      request.principal = ANONYMOUS;
      return;
    }
    const principal = await deps.keys.verify(presentedKey(request));
    if (!principal) {
      return reply.status(401).header('www-authenticate', 'Bearer realm="workfleet"').send(UNAUTHENTICATED);
    }
    if (!can(principal.roles, permission)) {
      return reply.status(403).send(errorBody('FORBIDDEN', `a key with roles ${principal.roles.join(', ')} may not ${permission.replace(':', ' ')}`));
    }
    request.principal = principal;
  });
}
