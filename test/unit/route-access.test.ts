import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { declareAccess, installAuth, routesOf } from '../../api/auth.js';
import type { KeyService } from '../../lib/engine/keys.js';

/** Authorization fails closed: a route that does not say who may call it stops the server from starting. */

function server(): FastifyInstance {
  const app = Fastify();
  const keys = { verify: async () => undefined } as unknown as KeyService;
  installAuth(app, { enabled: true, keys });
  return app;
}

describe('route access', () => {
  it('refuses to start with a route that declares no permission, and names it', async () => {
    const app = server();
    app.get('/declared', { config: { permission: 'workflows:read' } }, async () => ({}));
    app.get('/forgotten', async () => ({}));
    await expect(app.ready()).rejects.toThrow(/GET \/forgotten, HEAD \/forgotten$/);
    await app.close().catch(() => undefined);
  });

  it("declares a plugin's routes for its scope, keeps a route's own declaration, and lists every route", async () => {
    const app = server();
    app.get('/open', { config: { permission: 'public' } }, async () => ({ status: 'ok' }));
    await app.register(async (scope) => {
      declareAccess(scope, 'queue-board');
      scope.get('/board', async () => ({}));
      scope.post('/board/own', { config: { permission: 'keys:manage' } }, async () => ({}));
    });
    await app.ready();
    expect(routesOf(app).map(({ method, url, permission }) => `${method} ${url} ${permission}`)).toEqual([
      'GET /open public',
      'HEAD /open public',
      'GET /board queue-board',
      'HEAD /board queue-board',
      'POST /board/own keys:manage',
    ]);
    // Public: answered without a key; a permission: 401 without one; an unknown URL: 404 to anyone.
    expect((await app.inject({ url: '/open' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/board/own' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/nowhere' })).statusCode).toBe(404);
    await app.close();
  });
});
