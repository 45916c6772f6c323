import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMetricsServer } from '../../lib/obs/metrics-server.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { runReadinessChecks } from '../../lib/obs/readiness.js';
import { fleetReadinessChecks } from '../../lib/runtime/readiness.js';
import { freePort } from '../../lib/local-servers/free-port.js';
import { pauseProcess, resumeProcess } from '../../lib/local-servers/pause.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The servers behind the API misbehaving, for real: Redis at maxmemory (noeviction), the store's
 * connections cut after it committed, the store paused (SIGSTOP). Every answer is 2xx or 503
 * with Retry-After, in bounded time, and a start answered 503 is finished by its retry.
 */

let servers: TestServers;
let redis: Redis;
const apis: TestApi[] = [];
const proxies: TcpProxy[] = [];

async function api(env: Record<string, string> = {}) {
  const started = await startApi(servers, env);
  apis.push(started);
  await started.engine.workflows.apply({ name: 'w', steps: [{ id: 'a', task: 'demo.echo', queue: 'fast' }] });
  return started;
}

const start = (call: TestApi['call'], idempotencyKey: string) => call('POST', '/v1/cases', { payload: { workflow: 'w', idempotencyKey, input: {} } });

beforeAll(async () => {
  servers = await startServers();
  redis = new Redis(servers.redis.url);
});

afterAll(async () => {
  if (servers?.storePid) resumeProcess(servers.storePid);
  await redis?.config('SET', 'maxmemory', '0').catch(() => undefined);
  redis?.disconnect();
  await Promise.all(apis.map((started) => started.close().catch(() => undefined)));
  await Promise.all(proxies.map((proxy) => proxy.stop()));
  await servers?.stop();
});

describe('Redis at maxmemory (noeviction)', () => {
  it('answers a start 503 with Retry-After, keeps reads working, says not ready; the retry with the same key enqueues the steps', async () => {
    const { call, engine, monitor } = await api({ API_RATE_LIMIT_PER_MINUTE: '1000' });
    const before = await start(call, 'oom-before');
    expect(before.status).toBe(201);
    await redis.config('SET', 'maxmemory', '1');
    let answer;
    try {
      answer = await start(call, 'oom-1');
      // The rate limiter cannot count (its script writes) and lets reads through.
      const read = await call('GET', `/v1/cases/${before.body.id as string}`);
      expect(read.status).toBe(200);
      const ready = await call('GET', '/ready');
      expect(ready.status).toBe(503);
      expect(ready.body.checks.redis).toMatch(/redis out of memory/);
      // Every process's readiness says the same (the scheduler's and workers' use these checks).
      const checks = await runReadinessChecks(fleetReadinessChecks({ store: engine.store, redisHealth: () => monitor.redisHealth() }));
      expect(checks).toMatchObject({ ready: false, checks: { mongodb: 'ok', redis: expect.stringMatching(/out of memory/) } });
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBeDefined();
    expect(answer.body.error.code).toBe('SERVICE_UNAVAILABLE');
    // The case was stored before the enqueue was refused: the answer names it.
    const caseId = answer.body.error.details.caseId as string;
    expect((await call('GET', `/v1/cases/${caseId}`)).status).toBe(200);
    expect(await engine.queues.queue('fast').getJob(`${caseId}.a`)).toBeUndefined();
    const retry = await start(call, 'oom-1');
    expect(retry.status).toBe(200);
    expect(retry.body.id).toBe(caseId);
    expect(await engine.queues.queue('fast').getJob(`${caseId}.a`)).toBeDefined();
    expect((await call('GET', '/ready')).status).toBe(200);
  });
});

describe('store connections cut after the store committed a start', () => {
  it('answers 503 naming the case; the retry with the same key finds it', async () => {
    const base = new URL(servers.mongoBase);
    const proxy = await TcpProxy.start({ host: base.hostname, port: Number(base.port) });
    proxies.push(proxy);
    const { mongoUrl } = servers.namespace();
    const database = new URL(mongoUrl).pathname;
    const { call } = await api({ MONGO_URL: `mongodb://127.0.0.1:${proxy.port}${database}` });
    const direct = new MongoClient(mongoUrl);
    try {
      // The document carries the key: the connection that inserts it hears nothing back.
      proxy.holdRepliesAfter('cut-1');
      const answering = start(call, 'cut-1');
      // The insert reached the store and was committed; its answer never comes back.
      await waitFor('the case in the store', async () => ((await direct.db().collection('cases').findOne({ idempotencyKey: 'cut-1' })) ? true : undefined));
      proxy.cut();
      const answer = await answering;
      expect(answer.status).toBe(503);
      expect(answer.headers['retry-after']).toBeDefined();
      const caseId = answer.body.error.details.caseId as string;
      const retry = await start(call, 'cut-1');
      expect(retry.status).toBe(200);
      expect(retry.body.id).toBe(caseId);
      expect(await direct.db().collection('cases').countDocuments({ idempotencyKey: 'cut-1' })).toBe(1);
    } finally {
      await direct.close();
    }
  });
});

describe('store paused (SIGSTOP)', () => {
  it('answers a start 503 within the request deadline and /ready 503 within its timeout; after the pause the retry makes or finds one case', async () => {
    const pid = servers.storePid;
    if (pid === undefined) return; // an external MongoDB cannot be paused from here
    const { call } = await api({ MONGO_OPERATION_TIMEOUT_MS: '1000', API_REQUEST_TIMEOUT_MS: '2000' });
    expect((await start(call, 'pause-before')).status).toBe(201);
    const bounded = <T>(promise: Promise<T>) => Promise.race([promise, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 8_000))]);
    // Every thread stopped before the start is sent: one still running answered it 201 (CI, a loaded machine).
    await pauseProcess(pid);
    let answer;
    let ready;
    let answerMs = 0;
    let readyMs = 0;
    try {
      const t0 = Date.now();
      [answer, ready] = await Promise.all([bounded(start(call, 'pause-1')).finally(() => (answerMs = Date.now() - t0)), bounded(call('GET', '/ready')).finally(() => (readyMs = Date.now() - t0))]);
    } finally {
      resumeProcess(pid);
    }
    expect(answer).not.toBe('hung');
    expect(ready).not.toBe('hung');
    if (answer === 'hung' || ready === 'hung') return;
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBeDefined();
    expect(answerMs).toBeLessThan(4_000);
    expect(ready.status).toBe(503);
    expect(readyMs).toBeLessThan(4_000);
    const retry = await waitFor('the start after the pause', async () => {
      const again = await start(call, 'pause-1');
      return again.status === 200 || again.status === 201 ? again : undefined;
    });
    expect((await call('GET', `/v1/cases/${retry.body.id as string}`)).status).toBe(200);
  });
});

describe('scheduler and worker probes', () => {
  it('listen on METRICS_HOST only', async () => {
    const port = await freePort();
    const server = await startMetricsServer({ host: '127.0.0.1', port }, new Metrics('worker'), []);
    try {
      expect((server?.address() as AddressInfo).address).toBe('127.0.0.1');
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(200);
    } finally {
      server?.close();
    }
  });
});
