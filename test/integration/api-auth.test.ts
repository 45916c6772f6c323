import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLES, type Role } from '../../lib/core/auth.js';
import type { KeyService } from '../../lib/engine/keys.js';
import type { Engine } from '../../lib/runtime/engine.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/** API keys with AUTH_ENABLED=true (the role-by-route matrix runs against the real API process in test/e2e/auth-matrix.test.ts). */

let servers: TestServers;
let api: TestApi;
let engine: Engine;
let keys: KeyService;
let now = Date.now();
const keyOf = {} as Record<Role, string>;

async function call(method: string, url: string, key: string | undefined, payload?: unknown, header: 'bearer' | 'x-api-key' = 'bearer') {
  const headers: Record<string, string> = {};
  if (key !== undefined) headers[header === 'bearer' ? 'authorization' : 'x-api-key'] = header === 'bearer' ? `Bearer ${key}` : key;
  const response = await api.call(method, url, { headers, payload });
  return {
    status: response.status,
    body: (typeof response.body === 'object' ? response.body : {}) as Record<string, unknown>,
    raw: typeof response.body === 'string' ? response.body : JSON.stringify(response.body),
  };
}

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers, { AUTH_ENABLED: 'true', API_RATE_LIMIT_PER_MINUTE: '0' }, { keyClock: { now: () => now } });
  ({ engine, keys } = api);
  for (const role of ROLES) keyOf[role] = (await keys.create({ name: `${role} key`, roles: [role] })).key;
  await engine.workflows.apply({ name: 'w', steps: [{ id: 'a', task: 'demo.echo' }] });
});

afterAll(async () => {
  await api?.close();
  await servers?.stop();
});

describe('API keys', () => {
  it('answers missing, malformed, unknown, wrong, revoked and expired keys with the same 401', async () => {
    const revoked = await keys.create({ name: 'to revoke', roles: ['admin'] });
    await keys.revoke(revoked.summary.id);
    const expiring = await keys.create({ name: 'short-lived', roles: ['admin'], expiresInMs: 1_000 });
    now += 60_000;
    const wrongSecret = keyOf.admin.slice(0, -4) + 'AAAA';
    const unknownId = `wfk_ZZZZZZZZZZZZ_${keyOf.admin.slice(-43)}`;
    const answers = await Promise.all([undefined, 'not-a-key', unknownId, wrongSecret, revoked.key, expiring.key].map((key) => call('GET', '/v1/cases', key)));
    expect(answers.map((answer) => answer.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(new Set(answers.map((answer) => answer.raw)).size).toBe(1);
    expect(answers[0]?.body).toEqual({ error: { code: 'UNAUTHENTICATED', message: expect.stringContaining('Bearer') } });
  });

  it('accepts the key in X-API-Key as well', async () => {
    expect((await call('GET', '/v1/workflows', keyOf.viewer, undefined, 'x-api-key')).status).toBe(200);
  });

  it('shows a producer only the cases it started', async () => {
    const { record: theirs } = await engine.cases.start({ workflow: 'w' }, { startedBy: 'someone-else' });
    expect((await call('GET', `/v1/cases/${theirs.id}`, keyOf.producer)).status).toBe(404);
    const mine = await call('POST', '/v1/cases', keyOf.producer, { workflow: 'w' });
    expect(mine.status).toBe(201);
    const listed = await call('GET', '/v1/cases?limit=200', keyOf.producer);
    const ids = (listed.body.cases as Array<{ id: string }>).map((item) => item.id);
    expect(ids).toContain(mine.body.id);
    const producerId = keyOf.producer.split('_')[1];
    const all = await call('GET', '/v1/cases?limit=200', keyOf.viewer);
    const foreign = (all.body.cases as Array<{ id: string }>).filter((item) => !ids.includes(item.id));
    expect(foreign.length).toBeGreaterThan(0);
    expect((await call('GET', `/v1/cases/${String(mine.body.id)}`, keyOf.producer)).body.startedBy).toBe(producerId);
  });

  it('refuses role escalation with 403, never by obeying', async () => {
    expect((await call('POST', '/v1/keys', keyOf.producer, { name: 'me', roles: ['admin'] })).status).toBe(403);
    expect((await call('POST', '/v1/cases', keyOf.viewer, { workflow: 'w' })).status).toBe(403);
    const withRole = await call('POST', '/v1/cases', keyOf.producer, { workflow: 'w', roles: ['admin'] });
    expect(withRole.status).toBe(403);
    expect(withRole.body).toMatchObject({ error: { code: 'FORBIDDEN' } });
    expect((await call('POST', '/v1/cases', keyOf.producer, { workflow: 'w', role: 'admin' })).status).toBe(403);
  });

  it('shows a created key once and lists keys without secrets', async () => {
    const created = await call('POST', '/v1/keys', keyOf.admin, { name: 'ci', roles: ['producer', 'viewer'], expiresIn: '90d' });
    expect(created.body).toMatchObject({ id: expect.any(String), key: expect.stringMatching(/^wfk_/), roles: ['producer', 'viewer'], expiresAt: expect.any(String) });
    const listed = await call('GET', '/v1/keys', keyOf.admin);
    expect(listed.raw).not.toContain(String(created.body.key));
    expect(listed.raw).not.toContain('hash');
    expect((await call('GET', '/v1/workflows', String(created.body.key))).status).toBe(200);
    expect((await call('DELETE', `/v1/keys/${String(created.body.id)}`, keyOf.admin)).status).toBe(204);
    expect((await call('GET', '/v1/workflows', String(created.body.key))).status).toBe(401);
  });

  it('takes the auth scheme in any case (RFC 9110): bearer, BEARER, basic', async () => {
    for (const authorization of [
      `bearer ${keyOf.viewer}`,
      `BEARER ${keyOf.viewer}`,
      `Basic ${Buffer.from(`me:${keyOf.viewer}`).toString('base64')}`,
      `basic ${Buffer.from(`me:${keyOf.viewer}`).toString('base64')}`,
    ]) {
      const response = await api.call('GET', '/v1/workflows', { headers: { authorization } });
      expect([authorization.split(' ')[0], response.status]).toEqual([authorization.split(' ')[0], 200]);
    }
  });
});

describe('headers too large', () => {
  /** Node's HTTP parser refuses them before Fastify sees the request, so this needs a socket. */
  async function overSocket(port: number, headers: Record<string, string>): Promise<{ status: number; type: string; body: string }> {
    return new Promise((resolve, reject) => {
      const sent = httpRequest({ host: '127.0.0.1', port, path: '/v1/workflows', headers }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }));
      });
      sent.on('error', reject);
      sent.end();
    });
  }

  it("answers 431 in the API's error shape", async () => {
    await api.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = api.app.server.address() as AddressInfo;
    const answer = await overSocket(port, { authorization: `Bearer ${keyOf.viewer}`, 'x-padding': 'a'.repeat(40_000) });
    expect(answer.status).toBe(431);
    expect(answer.type).toMatch(/^application\/json/);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'HEADERS_TOO_LARGE', message: expect.stringContaining('header') } });
    // The connection is closed after it; a normal request on a new one is served.
    expect((await overSocket(port, { authorization: `Bearer ${keyOf.viewer}` })).status).toBe(200);
  });
});
