import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routesOf, type DeclaredRoute } from '../../api/auth.js';
import { BOARD_PATH, boardRefusal } from '../../api/bull-board.js';
import { buildOfflineServer } from '../../api/generate-openapi.js';
import { loadConfig } from '../../config/load.js';
import { can, ROLES, type Role } from '../../lib/core/auth.js';
import { MongoStore } from '../../lib/adapters/mongo/store.js';
import { KeyService } from '../../lib/engine/keys.js';
import { systemClock } from '../../lib/ports/clock.js';
import { freePort } from '../../lib/local-servers/free-port.js';
import { Fleet } from '../helpers/fleet.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/** Every role against every route, over HTTP, against the real API process with AUTH_ENABLED=true. */

let servers: TestServers;
/** Every route the server registers, with who may call it, read from a server built here as the API builds it. */
let declared: readonly DeclaredRoute[] = [];
let fleet: Fleet;
const keyOf = {} as Record<Role, string>;
let foreignCase = '';
let bulkOperation = '';

async function call(method: string, path: string, key: string, body?: unknown): Promise<number> {
  const response = await fetch(`${fleet.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  servers = await startServers();
  const namespace = servers.namespace();
  const store = new MongoStore({ url: namespace.mongoUrl });
  await store.init();
  const keys = new KeyService(store, systemClock);
  for (const role of ROLES) keyOf[role] = (await keys.create({ name: role, roles: [role] })).key;
  await store.close();
  const offline = await buildOfflineServer(loadConfig({}));
  declared = routesOf(offline);
  await offline.close();
  // Every route is called without a key: far more failed authentications from one address than the
  // default budget of 60 a minute, whose 429 would hide the 401 (the limiter: api-auth-flood.test.ts).
  fleet = await Fleet.start({
    redisUrl: servers.redis.url,
    mongoUrl: namespace.mongoUrl,
    prefix: namespace.prefix,
    workers: 1,
    label: 'e2e-auth',
    env: { AUTH_ENABLED: 'true', API_AUTH_FAILURES_PER_MINUTE: '0' },
  });
  // A case that waits forever: "go" is for a step it has not reached, so each role's "go" is kept
  // (accepted, not refused as a signal nothing may wait for) and every role meets the same case.
  const steps = [
    { id: 'wait', waitFor: { signals: ['never'] } },
    { id: 'later', after: ['wait'], waitFor: { signals: ['go'] } },
  ];
  expect(await call('POST', '/v1/workflows', keyOf.admin, { name: 'w', steps })).toBe(201);
  const started = await fetch(`${fleet.apiUrl}/v1/cases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyOf.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ workflow: 'w' }),
  });
  foreignCase = ((await started.json()) as { id: string }).id;
  // A bulk operation that matches nothing: it is done at once, and every role's read meets it.
  const bulk = await fetch(`${fleet.apiUrl}/v1/cases/bulk/retry`, {
    method: 'POST',
    headers: { authorization: `Bearer ${keyOf.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ filter: { workflow: 'nothing-here' } }),
  });
  bulkOperation = ((await bulk.json()) as { id: string }).id;
}, 120_000);

afterAll(async () => {
  await fleet?.stopAll();
  await servers?.stop();
});

describe('the auth matrix', () => {
  it('gives each role exactly its routes', async () => {
    const routes: Array<[string, string, unknown, Record<Role, number>]> = [
      ['POST', '/v1/workflows', { name: 'w2', steps: [{ id: 'a', task: 't' }] }, { admin: 201, operator: 403, producer: 403, viewer: 403 }],
      ['GET', '/v1/workflows', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
      ['GET', '/v1/workflows/w', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
      ['GET', '/v1/workflows/w/versions/1', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
      ['GET', '/v1/schema/workflow', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
      ['POST', '/v1/cases', { workflow: 'w' }, { admin: 201, operator: 403, producer: 201, viewer: 403 }],
      ['GET', '/v1/cases', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
      ['GET', `/v1/cases/${foreignCase}`, undefined, { admin: 200, operator: 200, producer: 404, viewer: 200 }],
      ['GET', `/v1/cases/${foreignCase}/trace`, undefined, { admin: 200, operator: 200, producer: 404, viewer: 200 }],
      ['POST', `/v1/cases/${foreignCase}/signals/go`, {}, { admin: 200, operator: 200, producer: 403, viewer: 403 }],
      ['POST', `/v1/cases/${foreignCase}/retry`, undefined, { admin: 409, operator: 409, producer: 403, viewer: 403 }],
      ['POST', '/v1/cases/bulk/retry', { filter: { workflow: 'w' }, dryRun: true }, { admin: 200, operator: 200, producer: 403, viewer: 403 }],
      ['POST', '/v1/cases/bulk/retry', { filter: { workflow: 'nothing-here' } }, { admin: 202, operator: 202, producer: 403, viewer: 403 }],
      ['POST', '/v1/cases/bulk/cancel', { filter: { workflow: 'w' }, dryRun: true }, { admin: 200, operator: 200, producer: 403, viewer: 403 }],
      ['POST', '/v1/cases/bulk/signal', { filter: { workflow: 'w' }, dryRun: true, signal: { name: 'go' } }, { admin: 200, operator: 200, producer: 403, viewer: 403 }],
      ['GET', `/v1/bulk/${bulkOperation}`, undefined, { admin: 200, operator: 200, producer: 403, viewer: 200 }],
      ['GET', `/v1/bulk/${bulkOperation}/results`, undefined, { admin: 200, operator: 200, producer: 403, viewer: 200 }],
      ['POST', `/v1/bulk/${bulkOperation}/stop`, undefined, { admin: 200, operator: 200, producer: 403, viewer: 403 }],
      ['GET', '/v1/schedules', undefined, { admin: 200, operator: 200, producer: 403, viewer: 200 }],
      ['POST', '/v1/schedules', { id: 's', workflow: 'w', every: '1h' }, { admin: 201, operator: 403, producer: 403, viewer: 403 }],
      ['DELETE', '/v1/schedules/s', undefined, { admin: 204, operator: 403, producer: 403, viewer: 403 }],
      ['GET', '/v1/status', undefined, { admin: 200, operator: 200, producer: 403, viewer: 200 }],
      ['GET', '/v1/keys', undefined, { admin: 200, operator: 403, producer: 403, viewer: 403 }],
      ['POST', '/v1/keys', { name: 'n', roles: ['admin'] }, { admin: 201, operator: 403, producer: 403, viewer: 403 }],
      ['DELETE', '/v1/keys/AAAAAAAAAAAA', undefined, { admin: 404, operator: 403, producer: 403, viewer: 403 }],
      ['GET', '/metrics', undefined, { admin: 200, operator: 200, producer: 403, viewer: 200 }],
      ['GET', '/admin/queues', undefined, { admin: 200, operator: 200, producer: 403, viewer: 403 }],
      ['GET', '/admin/queues/api/queues', undefined, { admin: 200, operator: 200, producer: 403, viewer: 403 }],
      ['PUT', '/admin/queues/api/queues/default/resume', undefined, { admin: 200, operator: 403, producer: 403, viewer: 403 }],
      ['GET', '/health', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
      ['GET', '/ready', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
      ['GET', '/docs/json', undefined, { admin: 200, operator: 200, producer: 200, viewer: 200 }],
    ];
    const seen: string[] = [];
    const expected: string[] = [];
    for (const [method, path, body, byRole] of routes) {
      for (const role of ROLES) {
        seen.push(`${role.padEnd(8)} ${method} ${path} → ${await call(method, path, keyOf[role], body)}`);
        expected.push(`${role.padEnd(8)} ${method} ${path} → ${byRole[role]}`);
      }
    }
    expect(seen).toEqual(expected);
  });

  it('gives each role exactly what every route of the server declares, and no key only the public routes', async () => {
    // Path parameters name nothing that exists, and no body is sent: a role that may call a route
    // meets a 400 or 404 (or the board's 409), never a change.
    const sample: Record<string, string> = {
      name: 'no-such-name',
      version: '1',
      id: 'no-such-id',
      stepId: 'no-such-step',
      queueName: 'no-such-queue',
      jobId: 'no-such-job',
      queueStatus: 'failed',
      schedulerId: 'no-such-scheduler',
      '*': 'index.html',
    };
    const pathOf = (url: string) =>
      url.replace(/:(\w+)|\*/g, (match, name: string | undefined) => {
        const value = sample[name ?? match];
        if (value === undefined) throw new Error(`no sample value for ${match} in ${url}: add one`);
        return encodeURIComponent(value);
      });
    const allowed = (route: DeclaredRoute, role: Role | 'no key'): boolean => {
      const { permission } = route;
      if (permission === undefined) throw new Error(`${route.method} ${route.url} declares no permission`);
      if (permission === 'public') return true;
      if (role === 'no key') return false;
      if (permission === 'queue-board') return boardRefusal([role], route.method) === undefined;
      return can([role], permission);
    };
    const answer = (allowedHere: boolean, role: Role | 'no key') => (allowedHere ? 'allowed' : role === 'no key' ? 401 : 403);
    const seen: string[] = [];
    const expected: string[] = [];
    // A route that only the board declares yet lacks from the list would pass unseen: the list is the server's.
    expect(declared.filter((route) => route.url.startsWith(BOARD_PATH)).length).toBeGreaterThan(10);
    for (const route of declared) {
      const path = pathOf(route.url);
      for (const role of [...ROLES, 'no key'] as const) {
        const response = await fetch(`${fleet.apiUrl}${path}`, { method: route.method, headers: role === 'no key' ? {} : { authorization: `Bearer ${keyOf[role]}` } });
        await response.arrayBuffer();
        const status = response.status === 401 || response.status === 403 ? response.status : 'allowed';
        seen.push(`${role.padEnd(8)} ${route.method} ${route.url} → ${status}`);
        expected.push(`${role.padEnd(8)} ${route.method} ${route.url} → ${answer(allowed(route, role), role)}`);
      }
    }
    expect(seen).toEqual(expected);
    // The board's "pause every queue" route has no queue to name: the admin's call above paused them all.
    expect(await call('PUT', `${BOARD_PATH}/api/queues/resume`, keyOf.admin)).toBe(200);
    console.log(`${declared.length} routes, each called by ${ROLES.length} roles and without a key`);
  });

  it('lets operators cancel but not producers or viewers', async () => {
    const started = await fetch(`${fleet.apiUrl}/v1/cases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyOf.producer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: 'w2' }),
    });
    const { id } = (await started.json()) as { id: string };
    expect(await call('POST', `/v1/cases/${id}/cancel`, keyOf.producer, { reason: 'mine' })).toBe(403);
    expect(await call('POST', `/v1/cases/${id}/cancel`, keyOf.viewer, {})).toBe(403);
    expect([200, 409]).toContain(await call('POST', `/v1/cases/${id}/cancel`, keyOf.operator, {}));
  });

  it('refuses every route but /health and /ready without a key', async () => {
    for (const path of ['/v1/workflows', '/v1/cases', `/v1/bulk/${bulkOperation}`, '/v1/status', '/v1/keys', '/metrics', '/admin/queues', '/docs', '/docs/json']) {
      const response = await fetch(`${fleet.apiUrl}${path}`);
      expect([path, response.status]).toEqual([path, 401]);
    }
  });

  it('refuses a key revoked through one API process on another at once; takes the scheme in any case', async () => {
    const port = await freePort();
    await fleet.spawn('api-2', 'api', { API_PORT: String(port) });
    const other = `http://127.0.0.1:${port}`;
    const created = await fetch(`${fleet.apiUrl}/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keyOf.admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'to revoke', roles: ['admin'] }),
    });
    const { id, key } = (await created.json()) as { id: string; key: string };
    const onOther = async (authorization: string) => (await fetch(`${other}/v1/workflows`, { headers: { authorization } })).status;
    // The second process verifies the key (lowercase scheme and all) and caches it.
    expect([await onOther(`bearer ${key}`), await onOther(`BEARER ${key}`)]).toEqual([200, 200]);
    expect(await call('DELETE', `/v1/keys/${id}`, keyOf.admin)).toBe(204);
    const revokedAt = Date.now();
    await waitFor('the other API process to refuse the revoked key', async () => ((await onOther(`Bearer ${key}`)) === 401 ? true : undefined), { timeoutMs: 1_000, intervalMs: 5 });
    console.log(`refused by the other API process ${Date.now() - revokedAt} ms after the revocation`);
    const minted = await fetch(`${other}/v1/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'backdoor', roles: ['admin'] }),
    });
    expect(minted.status).toBe(401);
  });

  it("answers headers too large with 431 in the API's error shape", async () => {
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL(`${fleet.apiUrl}/v1/workflows`);
      const sent = httpRequest({ host: url.hostname, port: url.port, path: url.pathname, headers: { authorization: `Bearer ${keyOf.viewer}`, 'x-padding': 'a'.repeat(40_000) } }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      });
      sent.on('error', reject);
      sent.end();
    });
    expect(answer.status).toBe(431);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'HEADERS_TOO_LARGE', message: expect.any(String) } });
  });
});
