import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ConflictError,
  ForbiddenError,
  InvalidRequestError,
  NotFoundError,
  ServiceUnavailableError,
  UnauthorizedError,
  WaitTimeoutError,
  WorkfleetAbortError,
  WorkfleetApiError,
  WorkfleetClient,
  WorkfleetConnectionError,
  type CaseView,
} from '../../lib/client/index.js';
import { freePort } from '../../lib/local-servers/free-port.js';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { Fleet } from '../helpers/fleet.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The producer SDK against the real API (auth on) on a real socket, with a real scheduler and
 * worker spawned from dist/ moving the cases. Every answer the client receives is also checked
 * against openapi.json's response schema, so the typed results are what the API documents.
 */

let servers: TestServers;
let api: TestApi;
let fleet: Fleet;
let baseUrl = '';
const keys = { admin: '', operator: '', producer: '', otherProducer: '' };

const openapi = JSON.parse(readFileSync(join(packageRoot(), 'openapi.json'), 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
  components: { schemas: Record<string, unknown> };
};
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat('date-time', true);
ajv.addSchema({ components: openapi.components }, 'openapi.json');
const documented = (method: string, path: string, status: number) => {
  const schema = JSON.parse(JSON.stringify(openapi.paths[path]![method]!.responses[String(status)]!.content!['application/json']!.schema).replaceAll('"#/components/', '"openapi.json#/components/')) as object;
  return ajv.compile(schema);
};

/** A fetch that checks each successful answer against the OpenAPI response schema of its route. */
const checkingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  const url = new URL(input instanceof Request ? input.url : input);
  const method = (init?.method ?? 'GET').toLowerCase();
  const template = Object.keys(openapi.paths).find((path) => new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`).test(url.pathname));
  if (template && response.ok) {
    const validate = documented(method, template, response.status);
    const body: unknown = await response.clone().json();
    if (!validate(body)) throw new Error(`${method} ${url.pathname} answered outside openapi.json: ${ajv.errorsText(validate.errors)}`);
  }
  return response;
};

const client = (apiKey: string | undefined, options: Partial<ConstructorParameters<typeof WorkfleetClient>[0]> = {}) =>
  new WorkfleetClient({ baseUrl, ...(apiKey ? { apiKey } : {}), fetch: checkingFetch, ...options });

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers, { AUTH_ENABLED: 'true', API_RATE_LIMIT_PER_MINUTE: '0' });
  const port = await freePort();
  await api.app.listen({ port, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${port}`;
  keys.admin = (await api.keys.create({ name: 'admin', roles: ['admin'] })).key;
  keys.operator = (await api.keys.create({ name: 'operator', roles: ['operator'] })).key;
  keys.producer = (await api.keys.create({ name: 'checkout', roles: ['producer'] })).key;
  keys.otherProducer = (await api.keys.create({ name: 'billing', roles: ['producer'] })).key;
  for (const name of ['order', 'approval', 'search-index']) {
    const response = await fetch(`${baseUrl}/v1/workflows`, {
      method: 'POST',
      headers: { authorization: `Bearer ${keys.admin}`, 'content-type': 'application/yaml' },
      body: readFileSync(join(packageRoot(), 'examples', 'workflows', `${name}.yaml`), 'utf8'),
    });
    expect(response.status, await response.text()).toBeLessThan(300);
  }
  fleet = new Fleet(
    {
      REDIS_URL: servers.redis.url,
      MONGO_URL: api.config.mongo.url,
      BULLMQ_PREFIX: api.prefix,
      WORKER_HANDLERS: join(packageRoot(), 'dist', 'examples', 'handlers', 'index.js'),
      LOG_LEVEL: 'info',
      NODE_ENV: 'test',
      METRICS_PORT: '0',
    },
    'client-sdk',
  );
  await Promise.all([fleet.spawn('scheduler', 'scheduler'), fleet.spawn('worker-1', 'worker')]);
});

afterAll(async () => {
  await fleet?.stopAll();
  await api?.close();
  await servers?.stop();
});

const order = (extra: Record<string, unknown> = {}) => ({ workflow: 'order', input: { sku: 'book-42', quantity: 1, amount: 25, ...extra } });

describe('WorkfleetClient against the real API', () => {
  it('answers a debounced start with the burst, and run() waits through it for the case the burst makes', async () => {
    const producer = client(keys.producer);
    const first = await producer.start({ workflow: 'search-index', input: { documentId: 'doc-c', revision: 1 } });
    expect(first).toMatchObject({ status: 'debounced', created: false, debounce: { key: 'doc-c', outcome: 'opened', starts: 1 } });
    if (first.status !== 'debounced') throw new Error('a debounced start expected');
    expect(Date.parse(first.debounce.startsAt ?? '')).toBeGreaterThan(Date.now());
    const done = await producer.run({ workflow: 'search-index', input: { documentId: 'doc-c', revision: 2 } }, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ id: first.id, status: 'completed', output: { index: { indexed: 'doc-c', revision: 2 } } });
  });

  it('starts a case, recognises a repeated idempotency key, and waits for the result', async () => {
    const producer = client(keys.producer);
    const idempotencyKey = `order-${Date.now()}`;
    const request = { ...order(), idempotencyKey, businessKeys: { orderId: idempotencyKey } };
    const first = await producer.start(request);
    expect(first).toMatchObject({ created: true, workflow: 'order', version: 1 });
    const again = await producer.start(request);
    expect(again).toMatchObject({ created: false, id: first.id });
    const reused = await producer.start({ ...request, input: { sku: 'other', quantity: 2, amount: 1 } }).catch((error: unknown) => error);
    expect(reused).toBeInstanceOf(ConflictError);
    expect((reused as ConflictError).code).toBe('IDEMPOTENCY_CONFLICT');

    const done = await producer.waitForResult(first.id, { timeoutMs: 30_000 });
    expect(done.status).toBe('completed');
    expect(done.output).toMatchObject({ orderId: first.id, trackingNumber: expect.stringMatching(/^TRK/) });
    expect(Object.values(done.steps).every((step) => step.status === 'completed')).toBe(true);

    const trace = await producer.trace(first.id);
    expect(trace.events[0]!.type).toBe('case.created');
    expect(trace.events.at(-1)!.type).toBe('case.completed');
    expect(trace.events.map((event) => event.seq)).toEqual(trace.events.map((_, index) => index + 1));

    const found = await producer.list({ key: `orderId=${idempotencyKey}` });
    expect(found.cases.map((summary) => summary.id)).toEqual([first.id]);
  });

  it('run() starts and waits in one call; a failed case is a result, and retry resumes it', async () => {
    const operator = client(keys.operator);
    const failed = await client(keys.admin).run(order({ amount: 20_000 }), { timeoutMs: 30_000 });
    expect(failed.status).toBe('failed');
    expect(failed.error?.stepId).toBe('charge');
    expect(failed.steps.charge!.error?.code).toBe('CARD_DECLINED');
    const resumed = await operator.retry(failed.id);
    // Read back after the retry was applied: a fast worker may already have failed the step again.
    expect(['pending', 'running', 'failed']).toContain(resumed.status);
    const again = await operator.waitForResult(failed.id, { timeoutMs: 30_000 });
    expect(again.status).toBe('failed');
    expect(again.steps.charge!.attempts).toBeGreaterThanOrEqual(1);
    // It did run again: the retry and a second run of the step are in the trace.
    const events = (await operator.trace(failed.id)).events;
    expect(events.filter((event) => event.type === 'case.retried')).toHaveLength(1);
    expect(events.filter((event) => event.type === 'step.failed' && event.stepId === 'charge')).toHaveLength(2);
    // A case that did not fail cannot be retried.
    const completed = await client(keys.admin).run(order(), { timeoutMs: 30_000 });
    expect(completed.status).toBe('completed');
    const refused = await operator.retry(completed.id).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ConflictError);
    expect((refused as ConflictError).status).toBe(409);
  });

  it('times out a wait with the case as last seen, then a signal lets the case finish', async () => {
    const admin = client(keys.admin);
    const { id } = await admin.start({ workflow: 'approval', input: { approver: 'ana', amount: 40 } });
    await waitFor('the case to wait for its signal', async () => ((await admin.get(id)).status === 'waiting' ? true : undefined));

    const started = Date.now();
    const timedOut = await admin.waitForResult(id, { timeoutMs: 400, pollIntervalMs: 50 }).catch((error: unknown) => error);
    expect(timedOut).toBeInstanceOf(WaitTimeoutError);
    expect((timedOut as WaitTimeoutError).code).toBe('WAIT_TIMEOUT');
    expect((timedOut as WaitTimeoutError).lastSeen?.status).toBe('waiting');
    expect(Date.now() - started).toBeLessThan(5_000);

    const signalled = await admin.signal(id, 'approve', { by: 'ana' });
    expect(signalled.id).toBe(id);
    const done = await admin.waitForResult(id, { timeoutMs: 30_000 });
    expect(done.status).toBe('completed');
    expect(done.output).toMatchObject({ decision: 'approve' });
  });

  it('cancels a case; cancelling it again is a conflict', async () => {
    const operator = client(keys.operator);
    const { id } = await client(keys.producer).start({ workflow: 'approval', input: { approver: 'bo', amount: 5 } });
    const cancelled = await operator.cancel(id, { reason: 'customer withdrew' });
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.error?.message).toMatch(/customer withdrew/);
    const again = await operator.cancel(id).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(ConflictError);
    expect((again as ConflictError).status).toBe(409);
  });

  it('previews, runs and follows a bulk signal; each answer as openapi.json documents it', async () => {
    const admin = client(keys.admin);
    const operator = client(keys.operator);
    const ids: string[] = [];
    for (const approver of ['dee', 'eve']) ids.push((await admin.start({ workflow: 'approval', input: { approver, amount: 5 }, businessKeys: { batch: 'sdk' } })).id);
    await waitFor('the cases to wait for their signal', async () => ((await Promise.all(ids.map(async (id) => (await admin.get(id)).status))).every((status) => status === 'waiting') ? true : undefined));
    const request = { filter: { key: 'batch=sdk', createdAfter: new Date(Date.now() - 3_600_000) }, signal: { name: 'approve', payload: { by: 'ops' } } };
    const preview = await operator.previewBulk('signal', request);
    expect(preview).toMatchObject({ dryRun: true, matched: 2, eligible: 2, wouldAct: 2, byStatus: { waiting: 2 } });
    expect(
      await client(keys.producer)
        .startBulk('signal', request)
        .catch((error: unknown) => error),
    ).toBeInstanceOf(ForbiddenError);
    const started = await operator.startBulk('signal', { ...request, limit: 10 });
    expect(started).toMatchObject({ action: 'signal', status: 'running', total: 2, limit: 10 });
    const seen: number[] = [];
    const done = await operator.waitForBulk(started.id, { timeoutMs: 30_000, pollIntervalMs: 50, onProgress: (operation) => seen.push(operation.done) });
    expect(done).toMatchObject({ status: 'completed', done: 2, counts: { ok: 2, skipped: 0, error: 0 } });
    expect(seen.at(-1)).toBe(2);
    const { results, nextCursor } = await operator.bulkResults(started.id, { outcome: 'ok' });
    expect([results.map((result) => result.caseId).sort(), nextCursor]).toEqual([[...ids].sort(), null]);
    expect((await operator.stopBulk(started.id)).status).toBe('completed');
    for (const id of ids) expect((await admin.waitForResult(id, { timeoutMs: 30_000 })).status).toBe('completed');
    const missing = await operator.getBulk('01a00000-0000-7000-8000-000000000000').catch((error: unknown) => error);
    expect([missing instanceof NotFoundError, (missing as NotFoundError).code]).toEqual([true, 'BULK_OPERATION_NOT_FOUND']);
  });

  it('stops waiting when the caller aborts', async () => {
    const admin = client(keys.admin);
    const { id } = await admin.start({ workflow: 'approval', input: { approver: 'cy', amount: 5 } });
    const controller = new AbortController();
    const waiting = admin.waitForResult(id, { timeoutMs: 30_000, signal: controller.signal });
    controller.abort();
    const error = await waiting.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WorkfleetAbortError);
    expect((error as WorkfleetAbortError).code).toBe('ABORTED');
  });

  it('pages through every case with listAll', async () => {
    const admin = client(keys.admin);
    const pageOne = await admin.list({ limit: 1 });
    expect(pageOne.cases).toHaveLength(1);
    expect(pageOne.nextCursor).not.toBeNull();
    const all: string[] = [];
    for await (const summary of admin.listAll({ limit: 2 })) all.push(summary.id);
    const direct = await admin.list({ limit: 200 });
    expect(all).toEqual(direct.cases.map((summary) => summary.id));
    expect(new Set(all).size).toBe(all.length);
  });

  it('turns API errors into classes with the API code and status', async () => {
    const notFound = await client(keys.admin)
      .get('no-such-case')
      .catch((error: unknown) => error);
    expect(notFound).toBeInstanceOf(NotFoundError);
    expect(notFound).toMatchObject({ code: 'CASE_NOT_FOUND', status: 404 });
    expect((notFound as NotFoundError).requestId).toBeTruthy();

    const invalid = await client(keys.admin)
      .start({ workflow: '9 not a name' })
      .catch((error: unknown) => error);
    expect(invalid).toBeInstanceOf(InvalidRequestError);
    expect(invalid).toMatchObject({ code: 'INPUT_INVALID', status: 400 });

    const anonymous = await client(undefined)
      .get('x')
      .catch((error: unknown) => error);
    expect(anonymous).toBeInstanceOf(UnauthorizedError);
    expect(anonymous).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });

    const producer = client(keys.producer);
    const { id } = await producer.start(order());
    const forbidden = await producer.cancel(id).catch((error: unknown) => error);
    expect(forbidden).toBeInstanceOf(ForbiddenError);
    expect(forbidden).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    // Another producer's case is invisible, not forbidden.
    const hidden = await client(keys.otherProducer)
      .get(id)
      .catch((error: unknown) => error);
    expect(hidden).toBeInstanceOf(NotFoundError);
    for (const error of [notFound, invalid, anonymous, forbidden, hidden]) expect(error).toBeInstanceOf(WorkfleetApiError);
  });
});

describe('WorkfleetClient transport behaviour', () => {
  let flaky: Server;
  let flakyUrl = '';
  const seen: Array<{ method: string; url: string }> = [];
  let failuresLeft = 0;

  beforeAll(async () => {
    // An HTTP server that answers 503 with Retry-After a given number of times, then a case.
    flaky = createServer((request, response) => {
      seen.push({ method: request.method!, url: request.url! });
      if (failuresLeft > 0) {
        failuresLeft--;
        response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' });
        return response.end('{"error":{"code":"SERVICE_UNAVAILABLE","message":"MongoDB is away"}}');
      }
      response.writeHead(request.method === 'POST' && request.url === '/v1/cases' ? 201 : 200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ id: 'c1', status: 'running', workflow: 'order', version: 1 } satisfies Partial<CaseView>));
    });
    await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
    flakyUrl = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => flaky.close(() => resolve())));

  it('retries reads and keyed starts on 503, honouring Retry-After, but never a start without a key', async () => {
    const flakyClient = new WorkfleetClient({ baseUrl: flakyUrl, retries: 2, retryDelayMs: 10_000 });
    seen.length = 0;
    failuresLeft = 2;
    // retryDelayMs is 10 s: finishing quickly shows Retry-After: 0 was used instead.
    const started = Date.now();
    await expect(flakyClient.get('c1')).resolves.toMatchObject({ id: 'c1' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(seen).toHaveLength(3);

    seen.length = 0;
    failuresLeft = 1;
    await expect(flakyClient.start({ workflow: 'order', idempotencyKey: 'k-1' })).resolves.toMatchObject({ id: 'c1', created: true });
    expect(seen).toHaveLength(2);

    seen.length = 0;
    failuresLeft = 1;
    const error = await flakyClient.start({ workflow: 'order' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503 });
    expect(seen).toHaveLength(1);

    seen.length = 0;
    failuresLeft = 5;
    await expect(flakyClient.get('c1')).rejects.toBeInstanceOf(ServiceUnavailableError);
    expect(seen).toHaveLength(3);
  });

  it('keeps a base path prefix and encodes ids', async () => {
    seen.length = 0;
    failuresLeft = 0;
    await new WorkfleetClient({ baseUrl: `${flakyUrl}/workfleet` }).signal('a/b c', 'approve', { ok: true });
    expect(seen).toEqual([{ method: 'POST', url: '/workfleet/v1/cases/a%2Fb%20c/signals/approve' }]);
  });

  it('reports an API it cannot reach as UNREACHABLE after its retries', async () => {
    const port = await freePort();
    let calls = 0;
    const counting: typeof fetch = (input, init) => {
      calls++;
      return fetch(input, init);
    };
    const error = await new WorkfleetClient({ baseUrl: `http://127.0.0.1:${port}`, retries: 1, retryDelayMs: 1, fetch: counting }).get('x').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(WorkfleetConnectionError);
    expect((error as WorkfleetConnectionError).code).toBe('UNREACHABLE');
    expect(calls).toBe(2);
  });

  it('gives up on a silent API after timeoutMs with REQUEST_TIMEOUT', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const error = await new WorkfleetClient({ baseUrl: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, timeoutMs: 200, retries: 0 }).get('x').catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: 'REQUEST_TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });
});
