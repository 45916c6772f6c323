import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisPolicyCheck } from '../../api/routes/health.js';
import { createLogger } from '../../lib/obs/logger.js';
import { announce } from '../../lib/runtime/presence.js';
import { startRedisServer, type RedisServer } from '../../lib/local-servers/redis-server.js';
import { applyRetention } from '../../scheduler/retention.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/** What operators rely on: status, readiness, limits and headers, OpenAPI, Bull Board, search, retention. */

let servers: TestServers;
const apis: TestApi[] = [];
const logger = createLogger({ level: 'silent', name: 'ops-test' });

async function api(env: Record<string, string> = {}) {
  const started = await startApi(servers, env);
  apis.push(started);
  await started.engine.workflows.apply({ name: 'w', steps: [{ id: 'a', task: 'demo.echo', queue: 'fast' }] });
  return started;
}

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await Promise.all(apis.map((started) => started.close()));
  await servers?.stop();
});

describe('GET /v1/status', () => {
  it('shows queues with their counts, live processes, cases by status and stuck cases', async () => {
    const { call, engine, monitor } = await api();
    const { record } = await engine.cases.start({ workflow: 'w' });
    await engine.cases.start({ workflow: 'w' });
    await engine.advancer.apply(record.id, { type: 'stuck', reason: 'step "a" has waited on queue "fast" since then', at: Date.now() });
    const presence = announce(monitor, { role: 'worker', queues: ['fast'], concurrency: 7 }, engine.clock, logger);
    await waitFor('the heartbeat', async () => ((await monitor.members(Date.now())).length > 0 ? true : undefined));
    const { status, body } = await call('GET', '/v1/status');
    await presence.stop();
    expect(status).toBe(200);
    expect(body.queues.fast).toMatchObject({ waiting: 2, active: 0, delayed: 0, failed: 0 });
    expect(body.processes).toEqual([expect.objectContaining({ role: 'worker', queues: ['fast'], concurrency: 7, pid: process.pid })]);
    expect(body.workers).toBe(1);
    expect(body.cases).toMatchObject({ running: 2, completed: 0, failed: 0 });
    // Only the case the reconciler marked is listed, with its reason.
    expect(body.stuck).toMatchObject({ count: 1, more: false });
    expect(body.stuck.cases).toEqual([expect.objectContaining({ id: record.id, reason: 'step "a" has waited on queue "fast" since then' })]);
    expect(body.redis.maxmemoryPolicy).toBe('noeviction');
    // A worker that stopped is gone from the list at once.
    expect((await call('GET', '/v1/status')).body.processes).toEqual([]);
  });
});

describe('/ready', () => {
  let lru: RedisServer;
  afterAll(async () => lru?.stop());

  it('fails closed when Redis may evict keys', async () => {
    const { call } = await api();
    expect((await call('GET', '/ready')).body).toEqual({ status: 'ready', checks: { mongodb: 'ok', redis: 'ok' } });
    lru = await startRedisServer();
    const client = new Redis(lru.url);
    await client.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const check = redisPolicyCheck(async () => {
      const info = await client.info('memory');
      return { maxmemoryPolicy: /maxmemory_policy:(\S+)/.exec(info)?.[1] ?? '' };
    });
    await expect(check(1_000)).rejects.toThrow('maxmemory-policy is allkeys-lru; BullMQ needs noeviction');
    client.disconnect();
  });
});

describe('hardening', () => {
  it('sends security headers and a request id, and keeps CORS off by default', async () => {
    const { call } = await api();
    const response = await call('GET', '/v1/workflows', { headers: { origin: 'https://evil.example' } });
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    expect(response.headers['x-request-id']).toEqual(expect.any(String));
    expect(response.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('allows the configured CORS origins only', async () => {
    const { call } = await api({ API_CORS_ORIGINS: 'https://app.example' });
    expect((await call('GET', '/v1/workflows', { headers: { origin: 'https://app.example' } })).headers['access-control-allow-origin']).toBe('https://app.example');
    expect((await call('GET', '/v1/workflows', { headers: { origin: 'https://evil.example' } })).headers['access-control-allow-origin']).toBeUndefined();
  });

  it('limits requests per key across replicas, counting in Redis, with a clear 429', async () => {
    const first = await api({ API_RATE_LIMIT_PER_MINUTE: '5', AUTH_ENABLED: 'true' });
    const { key } = await first.keys.create({ name: 'busy', roles: ['viewer'] });
    const headers = { authorization: `Bearer ${key}` };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await first.call('GET', '/v1/workflows', { headers })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const limited = await first.call('GET', '/v1/workflows', { headers });
    expect(limited.status).toBe(429);
    expect(limited.body.error).toEqual({ code: 'RATE_LIMITED', message: expect.stringContaining('rate limit of 5 requests per minute') });
    expect(limited.headers['retry-after']).toEqual(expect.any(String));
    // Health checks are never limited.
    expect((await first.call('GET', '/health')).status).toBe(200);
  });

  it('refuses operators and dotted keys in filters', async () => {
    const { call } = await api();
    for (const url of ['/v1/cases?status[$ne]=x', '/v1/cases?workflow=a.b$', '/v1/cases?key=$where=1', '/v1/cases?key=a.b=c', '/v1/cases?createdAfter=yesterday']) {
      const response = await call('GET', url);
      expect([url, response.status, response.body.error.code]).toEqual([url, 400, 'INPUT_INVALID']);
    }
  });

  it('carries the request id into the case, its trace and its jobs', async () => {
    const { call, engine } = await api();
    const started = await call('POST', '/v1/cases', { payload: { workflow: 'w' }, headers: { 'x-request-id': 'req-7f3a' } });
    const trace = await call('GET', `/v1/cases/${started.body.id}/trace`);
    expect(trace.body.events[0].data.requestId).toBe('req-7f3a');
    const job = await engine.queues.queue('fast').getJob(`${started.body.id}.a`);
    // The step payload carries it as `rq` (lib/core/step-payload.ts); the worker's logs name it requestId.
    expect(job?.data).toMatchObject({ rq: 'req-7f3a' });
  });
});

describe('search', () => {
  it('finds cases by business key and time range', async () => {
    const { call } = await api();
    const a = await call('POST', '/v1/cases', { payload: { workflow: 'w', businessKeys: { orderId: 'A-17', customer: 'c-9' } } });
    const b = await call('POST', '/v1/cases', { payload: { workflow: 'w', businessKeys: { orderId: 'A-18' } } });
    expect((await call('GET', `/v1/cases/${a.body.id}`)).body.businessKeys).toEqual({ orderId: 'A-17', customer: 'c-9' });
    const byKey = await call('GET', '/v1/cases?key=orderId=A-17');
    expect(byKey.body.cases.map((item: { id: string }) => item.id)).toEqual([a.body.id]);
    expect((await call('GET', '/v1/cases?key=customer=c-9')).body.cases).toHaveLength(1);
    expect((await call('GET', '/v1/cases?key=orderId=nope')).body.cases).toEqual([]);
    const future = new Date(Date.now() + 60_000).toISOString();
    const past = new Date(Date.now() - 60_000).toISOString();
    expect((await call('GET', `/v1/cases?createdAfter=${past}`)).body.cases.map((item: { id: string }) => item.id)).toEqual([b.body.id, a.body.id]);
    expect((await call('GET', `/v1/cases?createdAfter=${future}`)).body.cases).toEqual([]);
    expect((await call('GET', `/v1/cases?createdBefore=${past}`)).body.cases).toEqual([]);
    const tooMany = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v']));
    expect((await call('POST', '/v1/cases', { payload: { workflow: 'w', businessKeys: tooMany } })).status).toBe(400);
  });
});

describe('OpenAPI', () => {
  it('is served with a docs page, and the committed openapi.json matches the code (npm run generate)', async () => {
    const { call } = await api();
    const document = await call('GET', '/docs/json');
    expect(document.status).toBe(200);
    expect(document.body.openapi).toMatch(/^3\./);
    expect(Object.keys(document.body.paths)).toEqual(expect.arrayContaining(['/v1/cases', '/v1/cases/{id}', '/v1/cases/{id}/trace', '/v1/workflows', '/v1/status', '/v1/keys']));
    expect(Object.keys(document.body.paths).some((path) => path.startsWith('/admin'))).toBe(false);
    expect((await call('GET', '/docs')).status).toBeLessThan(400);
    const committed = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8')) as unknown;
    expect(committed).toEqual(document.body);
  });
});

describe('Bull Board', () => {
  it('lets admins in with full control, operators read-only, and keeps others out', async () => {
    const { call, keys, engine } = await api({ AUTH_ENABLED: 'true' });
    await engine.cases.start({ workflow: 'w' });
    const key = async (role: 'admin' | 'operator' | 'producer' | 'viewer') => (await keys.create({ name: role, roles: [role] })).key;
    const basic = (secret: string) => ({ authorization: `Basic ${Buffer.from(`anyone:${secret}`).toString('base64')}` });
    const [admin, operator, producer, viewer] = await Promise.all([key('admin'), key('operator'), key('producer'), key('viewer')]);

    const anonymous = await call('GET', '/admin/queues');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toContain('Basic');
    expect((await call('GET', '/admin/queues', { headers: basic(producer) })).status).toBe(403);
    expect((await call('GET', '/admin/queues', { headers: basic(viewer) })).status).toBe(403);

    const page = await call('GET', '/admin/queues', { headers: basic(admin) });
    expect(page.status).toBe(200);
    expect(page.body).toContain('workfleet queues');
    const adminQueues = await call('GET', '/admin/queues/api/queues', { headers: basic(admin) });
    expect(adminQueues.body.queues.map((queue: { name: string }) => queue.name)).toContain('fast');
    expect(adminQueues.body.queues.every((queue: { readOnlyMode: boolean }) => !queue.readOnlyMode)).toBe(true);

    const operatorQueues = await call('GET', '/admin/queues/api/queues', { headers: { authorization: `Bearer ${operator}` } });
    expect(operatorQueues.status).toBe(200);
    expect(operatorQueues.body.queues.every((queue: { readOnlyMode: boolean }) => queue.readOnlyMode)).toBe(true);
    expect((await call('PUT', '/admin/queues/api/queues/fast/pause', { headers: basic(operator) })).status).toBe(403);
    expect((await call('PUT', '/admin/queues/api/queues/fast/pause', { headers: basic(admin) })).status).toBe(200);
    expect(await engine.queues.queue('fast').isPaused()).toBe(true);
  });
});

describe('retention', () => {
  it('deletes finished cases and their history after the configured days, and keeps open ones', async () => {
    const { engine } = await api();
    await engine.workflows.apply({ name: 'quick', deadline: 1, steps: [{ id: 'a', task: 't' }] });
    const finished = await engine.cases.start({ workflow: 'quick' });
    const open = await engine.cases.start({ workflow: 'w' });
    await engine.advancer.apply(finished.record.id, { type: 'deadlineExceeded', at: Date.now() });
    const inTwoDays = { now: () => Date.now() + 2 * 86_400_000 };
    expect(await applyRetention({ store: engine.store, clock: inTwoDays, days: 3 })).toBe(0);
    expect(await applyRetention({ store: engine.store, clock: inTwoDays, days: 1 })).toBe(1);
    expect(await engine.store.getCase(finished.record.id)).toBeUndefined();
    expect(await engine.store.readTrace(finished.record.id)).toEqual([]);
    expect(await engine.store.getCase(open.record.id)).toBeDefined();
    expect(await applyRetention({ store: engine.store, clock: inTwoDays, days: 0 })).toBe(0);
  });
});
