import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * The HTTP API through Fastify's inject(), on the real engine (MongoDB API on FerretDB, BullMQ
 * on a private redis-server). No worker runs here: cases stay where their first steps are.
 */

let servers: TestServers;
let api: TestApi;

const definition = {
  name: 'order',
  steps: [
    { id: 'reserve', task: 'inventory.reserve', input: { sku: '${input.sku}' } },
    { id: 'ship', task: 'shipping.ship', after: ['reserve'] },
  ],
};

const call = (method: 'GET' | 'POST', url: string, payload?: unknown, headers: Record<string, string> = {}) => api.call(method, url, { payload, headers });

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers, { API_BODY_LIMIT_BYTES: '65536' });
});

afterAll(async () => {
  await api?.close();
  await servers?.stop();
});

describe('workflows', () => {
  it('stores a definition as version 1, keeps an identical one, versions a changed one', async () => {
    const first = await call('POST', '/v1/workflows', definition);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ name: 'order', version: 1, created: true });
    expect(first.headers.location).toBe('/v1/workflows/order/versions/1');
    expect((await call('POST', '/v1/workflows', definition)).status).toBe(200);
    const changed = await call('POST', '/v1/workflows', { ...definition, description: 'now with a description' });
    expect(changed.body).toMatchObject({ version: 2, created: true });
    const shown = await call('GET', '/v1/workflows/order');
    expect(shown.body).toMatchObject({ name: 'order', latestVersion: 2, definition: { description: 'now with a description' } });
    expect(shown.body.versions.map((version: { version: number }) => version.version)).toEqual([2, 1]);
    expect((await call('GET', '/v1/workflows/order/versions/1')).body.definition).toEqual(definition);
    expect((await call('GET', '/v1/workflows')).body.workflows).toEqual([expect.objectContaining({ name: 'order', latestVersion: 2 })]);
  });

  it('accepts YAML', async () => {
    const yaml = 'name: yaml-flow\nsteps:\n  - id: a\n    task: demo.echo\n    input: { v: "${input.v}" }\n';
    const response = await call('POST', '/v1/workflows', yaml, { 'content-type': 'application/yaml' });
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({ name: 'yaml-flow', version: 1 });
  });

  it('refuses an invalid definition with every problem and its path', async () => {
    const response = await call('POST', '/v1/workflows', {
      name: 'bad',
      steps: [
        { id: 'a', task: 't', after: ['b'] },
        { id: 'a', task: 't' },
      ],
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('DEFINITION_INVALID');
    expect(response.body.error.details.issues).toEqual([
      { path: 'steps[0].after[0]', message: 'unknown step "b"' },
      { path: 'steps[1].id', message: 'duplicate step id "a"' },
    ]);
  });

  it('answers 404 for an unknown workflow or version', async () => {
    expect((await call('GET', '/v1/workflows/nope')).body.error.code).toBe('WORKFLOW_NOT_FOUND');
    expect((await call('GET', '/v1/workflows/order/versions/99')).status).toBe(404);
  });

  it('publishes the definition schema', async () => {
    const response = await call('GET', '/v1/schema/workflow');
    expect(response.status).toBe(200);
    expect(response.body.title).toBe('workfleet workflow definition');
    expect(response.body.required).toEqual(['name', 'steps']);
  });
});

describe('cases', () => {
  it('starts a case (201), answers a replay of its idempotency key with the same case (200), refuses a conflicting reuse (409)', async () => {
    const body = { workflow: 'order', input: { sku: 'book' }, idempotencyKey: 'order-1' };
    const first = await call('POST', '/v1/cases', body);
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ id: expect.any(String), status: 'running', workflow: 'order', version: 2 });
    expect(first.headers.location).toBe(`/v1/cases/${first.body.id}`);
    const replay = await call('POST', '/v1/cases', body);
    expect([replay.status, replay.body.id]).toEqual([200, first.body.id]);
    const conflict = await call('POST', '/v1/cases', { ...body, input: { sku: 'other' } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', details: { caseId: first.body.id } });
  });

  it('shows a case in the documented shape', async () => {
    const { body: started } = await call('POST', '/v1/cases', { workflow: 'order', version: 1, input: { sku: 'pen' } });
    const { status, body } = await call('GET', `/v1/cases/${started.id}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      id: started.id,
      workflow: 'order',
      version: 1,
      status: 'running',
      input: { sku: 'pen' },
      output: null,
      error: null,
      steps: {
        reserve: { status: 'scheduled', attempts: 0, startedAt: null, finishedAt: null, output: null, error: null, scheduledAt: expect.any(String) },
        ship: { status: 'pending', attempts: 0, startedAt: null, finishedAt: null, output: null, error: null, scheduledAt: null },
      },
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      updatedAt: expect.any(String),
      deadlineAt: expect.any(String),
      finishedAt: null,
      startedBy: 'anonymous',
      businessKeys: {},
      waitingFor: [],
    });
    const trace = await call('GET', `/v1/cases/${started.id}/trace`);
    expect(trace.body.events).toEqual([
      { seq: 1, type: 'case.created', at: body.createdAt, data: { workflow: 'order', version: 1, deadlineAt: expect.any(Number), requestId: expect.any(String) } },
      { seq: 2, type: 'step.scheduled', stepId: 'reserve', at: body.createdAt, data: { task: 'inventory.reserve', queue: 'default' } },
    ]);
  });

  it('lists cases newest first with a cursor, and filters them', async () => {
    for (let i = 0; i < 3; i++) await call('POST', '/v1/cases', { workflow: 'yaml-flow', input: { v: i } });
    const first = await call('GET', '/v1/cases?workflow=yaml-flow&limit=2');
    expect(first.body.cases).toHaveLength(2);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await call('GET', `/v1/cases?workflow=yaml-flow&limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.cases).toHaveLength(1);
    expect(second.body.nextCursor).toBeNull();
    const ids = [...first.body.cases, ...second.body.cases].map((item: { id: string }) => item.id);
    expect([...ids].sort().reverse()).toEqual(ids);
    expect((await call('GET', '/v1/cases?status=failed')).body.cases).toEqual([]);
  });

  it('refuses bad input with 4xx and a code, never a 500', async () => {
    const cases: Array<[string, 'GET' | 'POST', string, unknown, Record<string, string>, number, string]> = [
      ['unknown workflow', 'POST', '/v1/cases', { workflow: 'nope' }, {}, 404, 'WORKFLOW_NOT_FOUND'],
      ['unknown field', 'POST', '/v1/cases', { workflow: 'order', extra: 1 }, {}, 400, 'INPUT_INVALID'],
      ['input not an object', 'POST', '/v1/cases', { workflow: 'order', input: [1] }, {}, 400, 'INPUT_INVALID'],
      ['version as text', 'POST', '/v1/cases', { workflow: 'order', version: '1' }, {}, 400, 'INPUT_INVALID'],
      ['not JSON', 'POST', '/v1/cases', '{"workflow":', { 'content-type': 'application/json' }, 400, 'INPUT_INVALID'],
      ['prototype poisoning', 'POST', '/v1/cases', '{"workflow":"order","__proto__":{"x":1}}', { 'content-type': 'application/json' }, 400, 'INPUT_INVALID'],
      ['too large', 'POST', '/v1/cases', { workflow: 'order', input: { blob: 'x'.repeat(70_000) } }, {}, 413, 'BODY_TOO_LARGE'],
      ['media type', 'POST', '/v1/cases', 'workflow=order', { 'content-type': 'application/x-www-form-urlencoded' }, 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['unknown case', 'GET', '/v1/cases/01a00000-0000-7000-8000-000000000000', undefined, {}, 404, 'CASE_NOT_FOUND'],
      ['unknown case trace', 'GET', '/v1/cases/01a00000-0000-7000-8000-000000000000/trace', undefined, {}, 404, 'CASE_NOT_FOUND'],
      ['bad status filter', 'GET', '/v1/cases?status=sleeping', undefined, {}, 400, 'INPUT_INVALID'],
      ['operator in filter', 'GET', '/v1/cases?workflow[$ne]=x', undefined, {}, 400, 'INPUT_INVALID'],
      ['bad limit', 'GET', '/v1/cases?limit=1000', undefined, {}, 400, 'INPUT_INVALID'],
      ['unknown route', 'GET', '/v1/nothing', undefined, {}, 404, 'ROUTE_NOT_FOUND'],
    ];
    for (const [what, method, url, payload, headers, status, code] of cases) {
      const response = await call(method, url, payload, headers);
      expect([what, response.status, response.body.error?.code]).toEqual([what, status, code]);
      expect(JSON.stringify(response.body)).not.toMatch(/at .*\.(js|ts):\d+/);
    }
  });
});

describe('mistakes get an answer', () => {
  it('refuses a signal no step waits or may still wait for, naming those it accepts; keeps one for a step not reached yet', async () => {
    const steps = [
      { id: 'approve', waitFor: { signals: ['approved', 'rejected'] } },
      { id: 'confirm', after: ['approve'], waitFor: { signals: ['confirmed'] } },
      { id: 'close', after: ['confirm'], waitFor: { signals: ['closed'] } },
    ];
    expect((await call('POST', '/v1/workflows', { name: 'two-waits', steps })).status).toBe(201);
    const { id } = (await call('POST', '/v1/cases', { workflow: 'two-waits' })).body as { id: string };
    const typo = await call('POST', `/v1/cases/${id}/signals/aproved`, {});
    expect([typo.status, typo.body.error.code]).toEqual([409, 'SIGNAL_NOT_ACCEPTED']);
    expect(typo.body.error.details.accepted).toEqual(['approved', 'closed', 'confirmed', 'rejected']);
    expect(typo.body.error.message).toContain('"approved"');
    expect((await call('POST', `/v1/cases/${id}/signals/confirmed`, {})).status).toBe(200); // kept for the step not reached yet
    const taken = await call('POST', `/v1/cases/${id}/signals/approved`, {});
    expect(taken.status).toBe(200);
    expect(taken.body.steps).toMatchObject({ approve: { status: 'completed' }, confirm: { status: 'completed' }, close: { status: 'waiting' } });
    // Once the step that waited for "rejected" has finished, nothing may wait for it any more.
    const late = await call('POST', `/v1/cases/${id}/signals/rejected`, {});
    expect([late.status, late.body.error?.code, late.body.error?.details?.accepted]).toEqual([409, 'SIGNAL_NOT_ACCEPTED', ['closed']]);
  });

  it('suggests close names for an unknown workflow', async () => {
    const response = await call('POST', '/v1/cases', { workflow: 'ordr' });
    expect([response.status, response.body.error.code]).toEqual([404, 'WORKFLOW_NOT_FOUND']);
    expect(response.body.error.message).toBe('workflow "ordr" does not exist; did you mean "order"?');
    expect(response.body.error.details.suggestions).toEqual(['order']);
  });

  it('names the allowed values of a choice once', async () => {
    const response = await call('GET', '/v1/cases?status=done');
    expect(response.status).toBe(400);
    expect(response.body.error.details.issues).toEqual([{ path: 'querystring.status', message: 'must be one of: pending, running, waiting, completed, failed, cancelled' }]);
  });

  it('warns at apply when no live worker serves a task queue of the workflow', async () => {
    const response = await call('POST', '/v1/workflows', {
      name: 'lonely',
      steps: [
        { id: 'a', task: 'demo.echo', queue: 'nobody-here' },
        { id: 'b', waitFor: { signals: ['go'] } },
      ],
    });
    expect(response.status).toBe(201);
    expect(response.body.warnings).toEqual([expect.objectContaining({ code: 'NO_LIVE_WORKER', queue: 'nobody-here', steps: ['a'], message: expect.stringContaining('workfleet worker --queues nobody-here') })]);
    const now = Date.now();
    await api.monitor.heartbeat({ id: 'test:1', role: 'worker', host: 'test', pid: 1, queues: ['nobody-here'], concurrency: 1, startedAt: now, seenAt: now });
    const served = await call('POST', '/v1/workflows', { name: 'lonely', description: 'a worker serves it now', steps: [{ id: 'a', task: 'demo.echo', queue: 'nobody-here' }] });
    expect([served.status, served.body.warnings]).toEqual([201, []]);
    await api.monitor.leave('test:1');
  });
});

describe('operations', () => {
  it('answers /health, /ready and /metrics', async () => {
    expect((await call('GET', '/health')).body).toEqual({ status: 'ok' });
    expect((await call('GET', '/ready')).body).toEqual({ status: 'ready', checks: { mongodb: 'ok', redis: 'ok' } });
    const metrics = await call('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toMatch(/^workfleet_cases_started_total\{workflow="order",process="api"\} \d+$/m);
    expect(metrics.body).toContain('workfleet_http_request_duration_seconds_bucket');
  });

  it('returns a request id on every answer', async () => {
    const response = await call('GET', '/health', undefined, { 'x-request-id': 'req-42' });
    expect(response.headers['x-request-id']).toBe('req-42');
  });
});
