import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullConsumers } from '../../lib/adapters/bullmq/queues.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { INTAKE_QUEUE } from '../../lib/ports/queues.js';
import { intakeProcessor } from '../../scheduler/intake.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A workflow's `input:` schema, at every door: the API refuses a start whose input does not
 * match (400 with each problem's path and JSON pointer), and so does the intake queue (the job
 * fails once with the same code) while the jobs beside it start their cases. Real servers.
 */

let servers: TestServers;
let api: TestApi;

const order = {
  name: 'order',
  input: {
    type: 'object',
    required: ['sku', 'quantity'],
    additionalProperties: false,
    properties: {
      sku: { type: 'string', minLength: 1 },
      quantity: { type: 'integer', minimum: 1 },
      lines: { type: 'array', items: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } } },
    },
  },
  steps: [{ id: 'reserve', task: 'inventory.reserve', input: { sku: '${input.sku}', quantity: '${input.quantity}' } }],
};

const call = (method: 'GET' | 'POST', url: string, payload?: unknown) => api.call(method, url, { payload });
const caseCount = async () => (await api.engine.store.listCases({ limit: 100 })).cases.length;

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers);
  expect((await call('POST', '/v1/workflows', order)).status).toBe(201);
});

afterAll(async () => {
  await api?.close();
  await servers?.stop();
});

describe('a workflow input schema', () => {
  it('refuses a definition whose schema is bad, with every problem', async () => {
    const response = await call('POST', '/v1/workflows', {
      name: 'bad-schema',
      input: { type: 'object', properties: { sku: { type: 'text' } }, requird: ['sku'] },
      steps: [{ id: 'a', task: 't', after: ['b'] }],
    });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('DEFINITION_INVALID');
    expect(response.body.error.details.issues.map((issue: { path: string }) => issue.path)).toEqual(['input.properties.sku.type', 'input.requird', 'steps[0].after[0]']);
  });

  it('answers POST /v1/cases with 400 INPUT_INVALID and the path of each problem, and starts nothing', async () => {
    const before = await caseCount();
    const response = await call('POST', '/v1/cases', { workflow: 'order', input: { quantity: 0, colour: 'red', lines: [{ sku: 1 }] } });
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('INPUT_INVALID');
    expect(response.body.error.message).toMatch(/^input of workflow order v1 is invalid: input\.sku: is required; /);
    expect(response.body.error.details.issues).toEqual([
      { path: 'input.sku', pointer: '/input/sku', message: 'is required' },
      { path: 'input.quantity', pointer: '/input/quantity', message: 'must be >= 1' },
      { path: 'input.colour', pointer: '/input/colour', message: 'unknown field' },
      { path: 'input.lines[0].sku', pointer: '/input/lines/0/sku', message: 'must be string, not number' },
    ]);
    expect(await caseCount()).toBe(before);

    // No input at all is checked too: it is the empty object.
    expect((await call('POST', '/v1/cases', { workflow: 'order' })).body.error.details.issues.map((issue: { pointer: string }) => issue.pointer)).toEqual(['/input/sku', '/input/quantity']);
    expect((await call('POST', '/v1/cases', { workflow: 'order', input: { sku: 'book-42', quantity: 2 } })).status).toBe(201);
    expect(await caseCount()).toBe(before + 1);
  });

  it('refuses a schedule whose fixed input the schema refuses', async () => {
    const response = await call('POST', '/v1/schedules', { id: 'nightly-order', workflow: 'order', every: '1h', input: { sku: 'x' } });
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'INPUT_INVALID', details: { issues: [{ path: 'input.quantity', message: 'is required' }] } });
  });

  it('fails an intake job with bad input once, with the code, and starts the jobs beside it', async () => {
    const consumers = new BullConsumers({ redisUrl: servers.redis.url, prefix: api.prefix, retention: api.config.jobs });
    const logger = createLogger({ level: 'silent', name: 'intake-test' });
    const consumer = consumers.consume(INTAKE_QUEUE, intakeProcessor({ cases: api.engine.cases, clock: api.engine.clock, logger, metrics: new Metrics('scheduler') }), { concurrency: 2 });
    const intake = new Queue(INTAKE_QUEUE, { connection: { url: servers.redis.url }, prefix: api.prefix });
    try {
      const before = await caseCount();
      const good = await intake.add('start', { workflow: 'order', input: { sku: 'pen', quantity: 1 }, idempotencyKey: 'intake-good' });
      const bad = await intake.add('start', { workflow: 'order', input: { sku: 'pen' }, idempotencyKey: 'intake-bad' }, { attempts: 5 });
      const after = await intake.add('start', { workflow: 'order', input: { sku: 'ink', quantity: 3 }, idempotencyKey: 'intake-after' });
      const failed = await waitFor('the bad intake job to fail', async () => {
        const job = await intake.getJob(bad.id ?? '');
        return job?.failedReason ? { reason: job.failedReason, attempts: job.attemptsMade } : undefined;
      });
      // Unrecoverable: one attempt of the five it was given.
      expect(failed).toEqual({ reason: 'INPUT_INVALID: input of workflow order v1 is invalid: input.quantity: is required', attempts: 1 });
      for (const job of [good, after]) {
        await waitFor(`intake job ${job.id} to complete`, async () => ((await intake.getJob(job.id ?? ''))?.finishedOn ? true : undefined));
      }
      const started = (await api.engine.store.listCases({ limit: 100 })).cases.length;
      expect(started).toBe(before + 2);
    } finally {
      await intake.close();
      await consumer.close(1_000);
    }
  });
});
