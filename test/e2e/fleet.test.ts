import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { producerQueue, startServers, type TestServers } from '../helpers/servers.js';
import { httpClient, type WireEvent } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The fleet as operators run it: api, scheduler and two workers as separate processes from
 * dist/, a producer starting cases over HTTP and through the intake queue with plain BullMQ.
 */

let servers: TestServers;
let fleet: Fleet;
let prefix: string;
const { api, getCase, getTrace, finished } = httpClient(() => fleet.apiUrl);

/** Trace checks every finished case must pass: complete, ordered, one story per step. */
function expectCompleteTrace(events: WireEvent[], steps: string[], ending: 'case.completed' | 'case.failed'): void {
  expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
  expect(events[0]?.type).toBe('case.created');
  expect(events.at(-1)?.type).toBe(ending);
  for (const step of steps) {
    const types = events.filter((event) => event.stepId === step).map((event) => event.type);
    expect(types[0], `first event of ${step}`).toBe('step.scheduled');
    expect(types.filter((type) => type === 'step.started').length).toBeGreaterThanOrEqual(1);
    if (ending === 'case.completed') expect(types.at(-1), `last event of ${step}`).toBe('step.completed');
  }
}

beforeAll(async () => {
  servers = await startServers();
  const namespace = servers.namespace();
  prefix = namespace.prefix;
  fleet = await Fleet.start({
    redisUrl: servers.redis.url,
    mongoUrl: namespace.mongoUrl,
    prefix,
    label: 'e2e-fleet',
    env: {
      WORKER_CONCURRENCY: '20',
      BREAKER_VOLUME_THRESHOLD: '3',
      BREAKER_RESET_TIMEOUT_MS: '1500',
      SCHEDULER_RECONCILE_INTERVAL_MS: '2000',
      // 400 starts and the polls that follow them can pass 1,200 requests in a minute on a busy
      // machine; the limiter is proved in test/integration/api-ops.test.ts, not here.
      API_RATE_LIMIT_PER_MINUTE: '0',
    },
  });
  for (const definition of [
    {
      name: 'order',
      steps: [
        { id: 'reserve', task: 'inventory.reserve', input: { sku: '${input.sku}', quantity: '${input.quantity}' } },
        { id: 'charge', task: 'payments.charge', input: { amount: '${input.amount}' }, breaker: 'payments-api' },
        {
          id: 'ship',
          task: 'shipping.ship',
          after: ['reserve', 'charge'],
          input: { reservationId: '${steps.reserve.output.reservationId}', receipt: '${steps.charge.output.receipt}' },
        },
      ],
      output: { sku: '${steps.reserve.output.sku}', amount: '${steps.charge.output.amount}', receipt: '${steps.ship.output.receipt}' },
    },
    { name: 'flaky', steps: [{ id: 'fetch', task: 'flaky.fetch', retry: { maxAttempts: 3, backoff: { type: 'fixed', delay: '50ms' } }, input: { failTimes: '${input.failTimes}' } }] },
    { name: 'nap', steps: [{ id: 'nap', task: 'demo.sleep', timeout: '10s', input: { ms: '${input.ms}' } }] },
    { name: 'slow', steps: [{ id: 'nap', task: 'demo.sleep', timeout: '200ms', retry: { maxAttempts: 2, backoff: { delay: '50ms' } }, input: { ms: '${input.ms}' } }] },
    {
      name: 'partner',
      steps: [
        {
          id: 'lookup',
          task: 'partner.lookup',
          breaker: 'partner-api',
          retry: { maxAttempts: 20, backoff: { type: 'fixed', delay: '100ms' } },
          input: { outageMs: '${input.outageMs}', outageId: '${input.outageId}' },
        },
      ],
    },
  ]) {
    const { status } = await api('POST', '/v1/workflows', definition);
    expect(status).toBe(201);
  }
});

afterAll(async () => {
  await fleet?.stopAll();
  await servers?.stop();
});

describe('the fleet end to end', () => {
  it('completes 200 cases started over HTTP and 200 through the intake queue, each with its output and a complete trace', async () => {
    const started = Date.now();
    const viaHttp = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const { status, body } = await api<{ id: string; status: string }>('POST', '/v1/cases', {
          workflow: 'order',
          input: { sku: `sku-http-${i}`, quantity: 1, amount: i + 1 },
        });
        expect(status).toBe(201);
        expect(body.status).toBe('running');
        return { id: body.id, sku: `sku-http-${i}`, amount: i + 1 };
      }),
    );

    // A producer in another service: plain BullMQ, the documented queue, job name and prefix.
    const intake = producerQueue(servers.redis.url, 'cases', prefix);
    await intake.addBulk(
      Array.from({ length: 200 }, (_, i) => ({
        name: 'start',
        data: { workflow: 'order', input: { sku: `sku-queue-${i}`, quantity: 2, amount: 1000 + i }, idempotencyKey: `queue-order-${i}` },
      })),
    );
    await intake.close();

    const viaQueue = await waitFor(
      '200 intake cases to exist',
      async () => {
        const found: Array<{ id: string }> = [];
        let cursor: string | null = null;
        do {
          const page: { body: { cases: Array<{ id: string }>; nextCursor: string | null } } = await api('GET', `/v1/cases?workflow=order&limit=200${cursor ? `&cursor=${cursor}` : ''}`);
          found.push(...page.body.cases);
          cursor = page.body.nextCursor;
        } while (cursor);
        return found.length >= 400 ? found.filter((item) => !viaHttp.some((http) => http.id === item.id)) : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    expect(viaQueue).toHaveLength(200);

    for (const { id, sku, amount } of viaHttp) {
      const record = await finished(id, 90_000);
      expect(record.status).toBe('completed');
      expect(record.output).toMatchObject({ sku, amount });
      expect(record.steps.ship?.status).toBe('completed');
    }
    const skus = new Set<string>();
    for (const { id } of viaQueue) {
      const record = await finished(id, 90_000);
      expect(record.status).toBe('completed');
      skus.add(String(record.output?.sku));
      expect(Number(record.output?.amount)).toBeGreaterThanOrEqual(1000);
    }
    expect(skus.size).toBe(200);
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(`e2e: 400 order cases (3 steps each) completed in ${seconds.toFixed(1)} s, ${(400 / seconds).toFixed(0)} cases/s\n`);

    for (const { id } of [...viaHttp, ...viaQueue]) expectCompleteTrace(await getTrace(id), ['reserve', 'charge', 'ship'], 'case.completed');
  }, 240_000);

  it('stops retrying at the limit and says why the case failed', async () => {
    const { body } = await api<{ id: string }>('POST', '/v1/cases', { workflow: 'flaky', input: { failTimes: 10 } });
    const record = await finished(body.id);
    expect(record.status).toBe('failed');
    expect(record.steps.fetch).toMatchObject({ status: 'failed', attempts: 3, error: { code: 'UPSTREAM_UNAVAILABLE' } });
    expect(record.error).toMatchObject({ code: 'STEP_FAILED', stepId: 'fetch' });
    expect(record.error?.message).toContain('failed after 3 attempts');
    const events = await getTrace(body.id);
    expectCompleteTrace(events, ['fetch'], 'case.failed');
    expect(events.filter((event) => event.type === 'step.retried').map((event) => event.data.attempt)).toEqual([1, 2]);
    expect(events.find((event) => event.type === 'step.failed')?.data).toMatchObject({ attempt: 3, error: { code: 'UPSTREAM_UNAVAILABLE' } });
  });

  it('retries a flaky step until it succeeds', async () => {
    const { body } = await api<{ id: string }>('POST', '/v1/cases', { workflow: 'flaky', input: { failTimes: 2 } });
    const record = await finished(body.id);
    expect(record.status).toBe('completed');
    expect(record.steps.fetch).toMatchObject({ status: 'completed', attempts: 3 });
  });

  it('fails a step at once on a non-retryable error', async () => {
    const { body } = await api<{ id: string }>('POST', '/v1/cases', { workflow: 'order', input: { sku: 's', quantity: 1, amount: 50_000 } });
    const record = await finished(body.id);
    expect(record.status).toBe('failed');
    expect(record.steps.charge).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'CARD_DECLINED' } });
    const events = await getTrace(body.id);
    expect(events.filter((event) => event.type === 'step.retried')).toEqual([]);
  });

  it('aborts an attempt at its timeout and retries it', async () => {
    const { body } = await api<{ id: string }>('POST', '/v1/cases', { workflow: 'slow', input: { ms: 5_000 } });
    const record = await finished(body.id);
    expect(record.status).toBe('failed');
    expect(record.steps.nap).toMatchObject({ status: 'failed', attempts: 2, error: { code: 'STEP_TIMEOUT' } });
    const retried = (await getTrace(body.id)).find((event) => event.type === 'step.retried');
    expect(retried?.data).toMatchObject({ attempt: 1, error: { code: 'STEP_TIMEOUT' } });
    expect(Number(retried?.data.durationMs)).toBeLessThan(2_000);
  });

  it('opens a breaker when a dependency fails, defers tasks without spending attempts, and recovers', async () => {
    const ids = await Promise.all(Array.from({ length: 8 }, async () => (await api<{ id: string }>('POST', '/v1/cases', { workflow: 'partner', input: { outageMs: 2_500, outageId: 'e2e' } })).body.id));
    const records = await Promise.all(ids.map((id) => finished(id, 60_000)));
    expect(records.map((record) => record.status)).toEqual(Array(8).fill('completed'));
    const traces = await Promise.all(ids.map(getTrace));
    const all = traces.flat();
    expect(all.some((event) => event.type === 'breaker.opened' && event.data.breaker === 'partner-api')).toBe(true);
    expect(all.some((event) => event.type === 'breaker.closed' && event.data.breaker === 'partner-api')).toBe(true);
    const deferred = traces.filter((events) => events.some((event) => event.type === 'step.deferred'));
    expect(deferred.length).toBeGreaterThan(0);
    for (const [index, events] of traces.entries()) {
      // Every attempt counted is one that ran: retried ones plus the one that completed.
      const retried = events.filter((event) => event.type === 'step.retried').length;
      expect(records[index]?.steps.lookup?.attempts).toBe(retried + 1);
    }
  }, 90_000);

  it('fails a malformed intake job once, with the reason, and keeps running', async () => {
    const intake = producerQueue(servers.redis.url, 'cases', prefix);
    const bad = await intake.add('start', { workflow: 'order', input: 'not an object', extra: 1 });
    const unknown = await intake.add('start', { workflow: 'no-such-workflow' });
    const wrongName = await intake.add('begin', { workflow: 'order' });
    const failedReason = async (id: string | undefined) =>
      waitFor(`intake job ${id} to fail`, async () => {
        const job = await intake.getJob(id ?? '');
        return job?.failedReason ? { reason: job.failedReason, attempts: job.attemptsMade } : undefined;
      });
    const badResult = await failedReason(bad.id);
    expect(badResult.reason).toMatch(/^INPUT_INVALID: /);
    expect(badResult.reason).toContain('input');
    expect(badResult.reason).toContain('extra');
    expect((await failedReason(unknown.id)).reason).toBe('WORKFLOW_NOT_FOUND: workflow "no-such-workflow" does not exist');
    expect((await failedReason(wrongName.id)).reason).toMatch(/^UNKNOWN_JOB_NAME: /);
    await intake.close();
    const { status } = await api('POST', '/v1/cases', { workflow: 'flaky', input: { failTimes: 0 } });
    expect(status).toBe(201);
    for (const name of fleet.processes.keys()) expect(fleet.processes.get(name)?.child.process.exitCode).toBeNull();
  });

  it('makes one case per idempotency key, whichever door it came through', async () => {
    const key = `dup-${Date.now()}`;
    const body = { workflow: 'flaky', input: { failTimes: 0 }, idempotencyKey: key };
    const intake = producerQueue(servers.redis.url, 'cases', prefix);
    const [first] = await Promise.all([api<{ id: string }>('POST', '/v1/cases', body), intake.add('start', body), intake.add('start', body)]);
    const second = await api<{ id: string }>('POST', '/v1/cases', body);
    // The HTTP request may win the race (201) or find the case an intake job made (200).
    expect([200, 201]).toContain(first.status);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    await waitFor('intake jobs to be processed', async () => ((await intake.getJobCounts('wait', 'active', 'delayed')).wait === 0 ? true : undefined));
    await intake.close();
    const page = await api<{ cases: Array<{ id: string }> }>('GET', '/v1/cases?workflow=flaky&limit=200');
    const conflict = await api<{ error: { code: string } }>('POST', '/v1/cases', { ...body, input: { failTimes: 1 } });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('IDEMPOTENCY_CONFLICT');
    const records = await Promise.all(page.body.cases.map((item) => getCase(item.id)));
    expect(records.filter((record) => record.idempotencyKey === key)).toHaveLength(1);
  });

  it('drains a worker on SIGTERM: it finishes its active job and exits 0', async () => {
    const { body } = await api<{ id: string }>('POST', '/v1/cases', { workflow: 'nap', input: { ms: 1_500 } });
    await waitFor('the step to start', async () => ((await getCase(body.id)).steps.nap?.status === 'running' ? true : undefined), { timeoutMs: 10_000, intervalMs: 20 });
    const exits = await Promise.all([fleet.stop('worker-1'), fleet.stop('worker-2')]);
    expect(exits).toEqual([0, 0]);
    expect((await finished(body.id)).status).toBe('completed');
  });

  it('stops the API and the scheduler on SIGTERM with exit code 0', async () => {
    expect(await fleet.stop('scheduler')).toBe(0);
    expect(await fleet.stop('api')).toBe(0);
    expect(fleet.records('api').map((record) => record.msg)).toEqual(expect.arrayContaining(['shutting down', 'stopped']));
  });
});
