import type { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullConsumers } from '../../lib/adapters/bullmq/queues.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { INTAKE_QUEUE, type Consumer } from '../../lib/ports/queues.js';
import { intakeProcessor } from '../../scheduler/intake.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { producerQueue, startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Debounced starts end to end: the API (two replicas on one Redis and one database) takes
 * starts over HTTP, a producer adds start jobs to the intake queue, and the scheduler's real
 * intake processor on BullMQ closes the bursts; Redis is a private redis-server (or a Redis
 * Cluster with WORKFLEET_TEST_REDIS=cluster), cases are in FerretDB. Windows are short (0.5 to
 * 2 s); every wait is a condition polled with a deadline.
 */

let servers: TestServers;
let api: TestApi;
let replica: TestApi;
let consumer: Consumer | undefined;
let queue: Queue;

const logger = createLogger({ level: 'silent', name: 'debounce-test' });

/** The scheduler's intake consumer (stopped and started again by the restart test). */
function startScheduler(): Consumer {
  const consumers = new BullConsumers({ redisUrl: servers.redis.url, prefix: api.prefix, retention: api.config.jobs });
  return consumers.consume(INTAKE_QUEUE, intakeProcessor({ cases: api.engine.cases, clock: api.engine.clock, logger, metrics: new Metrics('scheduler') }), { concurrency: 4 });
}

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers);
  replica = await startApi(servers, {}, { namespace: { mongoUrl: api.mongoUrl, prefix: api.prefix } });
  consumer = startScheduler();
  queue = producerQueue(servers.redis.url, INTAKE_QUEUE, api.prefix);
});

afterAll(async () => {
  await consumer?.close(1_000);
  await queue?.close();
  await replica?.close();
  await api?.close();
  await servers?.stop();
});

const apply = async (definition: Record<string, unknown>) => expect((await api.call('POST', '/v1/workflows', { payload: definition })).status).toBe(201);

/** A workflow debounced by `${input.userId}`, whose one step echoes its input. */
const debounced = (name: string, debounce: Record<string, unknown>) =>
  apply({ name, debounce: { key: '${input.userId}', ...debounce }, steps: [{ id: 'index', task: 'search.index', input: { userId: '${input.userId}', rev: '${input.rev}' } }] });

const post = (payload: unknown, on: TestApi = api) => on.call('POST', '/v1/cases', { payload });

/** A case as GET /v1/cases/:id shows it, as far as these tests read it. */
interface ShownCase {
  id: string;
  input: { userId?: string; rev?: number };
  createdAt: string;
  businessKeys?: Record<string, string>;
  startedBy?: string;
  idempotencyKey?: string;
}

/** The case once it exists (its id is known from the 202 before it does). */
const untilCase = (id: string, timeoutMs = 20_000) =>
  waitFor(
    `case ${id}`,
    async () => {
      const got = await api.call('GET', `/v1/cases/${id}`);
      return got.status === 200 ? (got.body as ShownCase) : undefined;
    },
    { timeoutMs },
  );

/** Once the intake queue holds nothing to do (no burst left to close), the cases of `workflow`. */
async function settledCases(workflow: string): Promise<Array<{ id: string }>> {
  await waitFor('the intake queue to be empty', async () => {
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
    return Object.values(counts).every((count) => count === 0) ? true : undefined;
  });
  return (await api.engine.store.listCases({ workflow, limit: 200 })).cases;
}

/** The first event of a case's trace: its creation. */
const createdTrace = async (id: string) => (await api.call('GET', `/v1/cases/${id}/trace`)).body.events[0] as { type: string; data: { debounced: { key: string; starts: number; firstAt: number } } };

describe('debounced starts', () => {
  it('collapse a burst of starts within the window into one case, with the last start’s input and business keys', async () => {
    await debounced('burst', { for: '1s' });
    const answers = [];
    for (let rev = 1; rev <= 8; rev++) answers.push(await post({ workflow: 'burst', input: { userId: 'u-1', rev }, businessKeys: { rev: String(rev) } }));
    expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(202));
    const [first] = answers;
    const last = answers.at(-1);
    expect(first?.body).toMatchObject({ status: 'debounced', workflow: 'burst', version: 1, debounce: { key: 'u-1', outcome: 'opened', starts: 1 } });
    expect(first?.headers.location).toBe(`/v1/cases/${first?.body.id}`);
    expect(last?.body).toMatchObject({ id: first?.body.id, debounce: { outcome: 'joined', starts: 8 } });
    const made = await untilCase(first?.body.id);
    expect(made).toMatchObject({ input: { userId: 'u-1', rev: 8 }, businessKeys: { rev: '8' } });
    // Never before the last start's promised time: the window is trailing.
    expect(Date.parse(made.createdAt)).toBeGreaterThanOrEqual(Date.parse(last?.body.debounce.startsAt));
    expect(await createdTrace(made.id)).toMatchObject({ type: 'case.created', data: { debounced: { key: 'u-1', starts: 8 } } });
    expect((await settledCases('burst')).map((item) => item.id)).toEqual([first?.body.id]);
  });

  it('keeps bursts of two keys apart: two cases, each with its own last input', async () => {
    await debounced('two-keys', { for: '500ms' });
    const ids: Record<string, string> = {};
    for (let rev = 1; rev <= 4; rev++) {
      for (const userId of ['u-1', 'u-2']) ids[userId] = (await post({ workflow: 'two-keys', input: { userId, rev: rev * 10 + (userId === 'u-1' ? 1 : 2) } })).body.id;
    }
    expect(ids['u-1']).not.toBe(ids['u-2']);
    expect((await untilCase(ids['u-1'] ?? '')).input).toEqual({ userId: 'u-1', rev: 41 });
    expect((await untilCase(ids['u-2'] ?? '')).input).toEqual({ userId: 'u-2', rev: 42 });
    expect(await settledCases('two-keys')).toHaveLength(2);
  });

  it('makes a case per burst when starts are further apart than the window', async () => {
    await debounced('apart', { for: '300ms' });
    const first = await post({ workflow: 'apart', input: { userId: 'u-1', rev: 1 } });
    await untilCase(first.body.id);
    const second = await post({ workflow: 'apart', input: { userId: 'u-1', rev: 2 } });
    expect(second.body).toMatchObject({ status: 'debounced', debounce: { outcome: 'opened', starts: 1 } });
    expect(second.body.id).not.toBe(first.body.id);
    expect((await untilCase(second.body.id)).input).toEqual({ userId: 'u-1', rev: 2 });
    expect(await settledCases('apart')).toHaveLength(2);
  });

  it('starts a burst that never goes quiet at maxWait after its first start', async () => {
    await debounced('stream', { for: '800ms', maxWait: '2s' });
    const first = await post({ workflow: 'stream', input: { userId: 'u-1', rev: 0 } });
    const firstAt = Date.now();
    // A start every 100 ms (well within the 800 ms window) until the burst's case exists anyway.
    let rev = 0;
    const made = await waitFor(
      'the case of a burst still going on',
      async () => {
        await post({ workflow: 'stream', input: { userId: 'u-1', rev: ++rev } });
        const got = await api.call('GET', `/v1/cases/${first.body.id}`);
        return got.status === 200 ? (got.body as ShownCase) : undefined;
      },
      { intervalMs: 100, timeoutMs: 15_000 },
    );
    const created = await createdTrace(made.id);
    expect(created.data.debounced.starts).toBeGreaterThan(5);
    // Closed by the bound, not by a pause: not before 2 s after the first start.
    expect(Date.parse(made.createdAt) - created.data.debounced.firstAt).toBeGreaterThanOrEqual(2_000);
    expect(Date.parse(made.createdAt)).toBeGreaterThanOrEqual(firstAt + 2_000 - 50);
    // The starts that came after the close opened the next burst.
    const next = await post({ workflow: 'stream', input: { userId: 'u-1', rev: 1_000 } });
    expect(next.body.id).not.toBe(first.body.id);
    expect((await untilCase(next.body.id)).input.rev).toBe(1_000);
  });

  it('is one burst across API replicas', async () => {
    await debounced('replicated', { for: '500ms' });
    const answers = [];
    for (let rev = 1; rev <= 6; rev++) answers.push(await post({ workflow: 'replicated', input: { userId: 'u-1', rev } }, rev % 2 === 0 ? replica : api));
    expect(new Set(answers.map((answer) => answer.body.id as string)).size).toBe(1);
    expect((await untilCase(answers[0]?.body.id)).input.rev).toBe(6);
    expect(await settledCases('replicated')).toHaveLength(1);
  });

  it('collapses intake jobs too, keeping the start made last whatever order the jobs are taken in', async () => {
    await debounced('intake', { for: '500ms' });
    const at = Date.now();
    // Added newest first: the job made last (by its timestamp) is taken first, and still wins.
    await queue.addBulk([5, 4, 3, 2, 1].map((rev) => ({ name: 'start', data: { workflow: 'intake', input: { userId: 'u-1', rev } }, opts: { timestamp: at + rev } })));
    const cases = await waitFor('the intake burst case', async () => {
      const found = await settledCases('intake');
      return found.length > 0 ? found : undefined;
    });
    expect(cases).toHaveLength(1);
    const made = await untilCase(cases[0]?.id ?? '');
    expect(made).toMatchObject({ input: { userId: 'u-1', rev: 5 }, startedBy: 'intake' });
    // With auth off, the intake queue and HTTP callers are one producer: one burst.
    const http = await post({ workflow: 'intake', input: { userId: 'u-2', rev: 1 } });
    await queue.add('start', { workflow: 'intake', input: { userId: 'u-2', rev: 2 } });
    expect((await untilCase(http.body.id)).input.rev).toBe(2);
  });

  it('fails an intake job whose key reads nothing, once, with the code', async () => {
    await debounced('intake-bad', { for: '500ms' });
    const job = await queue.add('start', { workflow: 'intake-bad', input: { rev: 1 } });
    const failed = await waitFor('the job to fail', async () => ((await job.getState()) === 'failed' ? (await queue.getJob(job.id ?? ''))?.failedReason : undefined));
    expect(failed).toMatch(/^DEBOUNCE_KEY_INVALID: .*\$\{input\.userId\} is missing or null/);
  });

  it('survives a scheduler restart: the burst and its close wait in Redis', async () => {
    await debounced('restart', { for: '300ms' });
    await consumer?.close(1_000);
    consumer = undefined;
    const answers = [await post({ workflow: 'restart', input: { userId: 'u-1', rev: 1 } }), await post({ workflow: 'restart', input: { userId: 'u-1', rev: 2 } })];
    const { id, debounce } = answers[1]?.body;
    await waitFor('the burst to be due with no scheduler running', () => (Date.now() > Date.parse(debounce.startsAt) + 200 ? true : undefined));
    expect((await api.call('GET', `/v1/cases/${id}`)).status).toBe(404);
    expect(await (await queue.getJob(`debounce-${id}`))?.getState()).toBe('delayed');
    consumer = startScheduler();
    expect((await untilCase(id)).input.rev).toBe(2);
    expect(await settledCases('restart')).toHaveLength(1);
  });

  it('answers a repeated idempotency key with its burst and refuses the key with another request', async () => {
    await debounced('keyed', { for: '500ms' });
    const first = await post({ workflow: 'keyed', input: { userId: 'u-1', rev: 1 }, idempotencyKey: 'edit-1' });
    await post({ workflow: 'keyed', input: { userId: 'u-1', rev: 2 }, idempotencyKey: 'edit-2' });
    const again = await post({ workflow: 'keyed', input: { userId: 'u-1', rev: 1 }, idempotencyKey: 'edit-1' });
    expect(again).toMatchObject({ status: 202, body: { id: first.body.id, debounce: { outcome: 'replayed', starts: 2 } } });
    const conflict = await post({ workflow: 'keyed', input: { userId: 'u-1', rev: 3 }, idempotencyKey: 'edit-1' });
    expect(conflict).toMatchObject({ status: 409, body: { error: { code: 'IDEMPOTENCY_CONFLICT', details: { caseId: first.body.id } } } });
    expect((await untilCase(first.body.id)).input.rev).toBe(2);
    // After its case was made, the repeat still names it.
    expect((await post({ workflow: 'keyed', input: { userId: 'u-1', rev: 1 }, idempotencyKey: 'edit-1' })).body).toMatchObject({ id: first.body.id, debounce: { outcome: 'replayed', startsAt: null } });
    expect(await settledCases('keyed')).toHaveLength(1);
  });

  it('refuses bad debounce settings and starts whose key renders to nothing or too much, with codes', async () => {
    const definition = await api.call('POST', '/v1/workflows', { payload: { name: 'bad-debounce', debounce: { key: '${steps.a.output}', for: '0s', maxWait: 'soon' }, steps: [{ id: 'a', task: 't' }] } });
    expect(definition.status).toBe(400);
    expect(definition.body.error.code).toBe('DEFINITION_INVALID');
    expect(definition.body.error.details.issues.map((issue: { path: string }) => issue.path).sort()).toEqual(['debounce.for', 'debounce.key', 'debounce.maxWait']);
    await debounced('strict', { for: '500ms' });
    const missing = await post({ workflow: 'strict', input: { rev: 1 } });
    expect(missing).toMatchObject({ status: 400, body: { error: { code: 'DEBOUNCE_KEY_INVALID', details: { reference: 'input.userId' } } } });
    const long = await post({ workflow: 'strict', input: { userId: 'u'.repeat(201) } });
    expect(long).toMatchObject({ status: 400, body: { error: { code: 'DEBOUNCE_KEY_INVALID', details: { length: 201 } } } });
    expect(await api.engine.store.listCases({ workflow: 'strict', limit: 10 })).toEqual({ cases: [] });
  });
});

describe('idempotency windows', () => {
  it('answer a key with its case within the window and make a new case after it', async () => {
    await apply({ name: 'windowed', steps: [{ id: 'a', task: 'demo.echo' }] });
    const body = { workflow: 'windowed', input: { n: 1 }, idempotencyKey: 'hourly-sync', idempotencyWindow: '700ms' };
    const first = await post(body);
    const firstAt = Date.now();
    expect(first.status).toBe(201);
    expect((await post(body)).body.id).toBe(first.body.id);
    const next = await waitFor('a start after the window to make a new case', async () => {
      const answer = await post(body);
      return answer.status === 201 ? answer : undefined;
    });
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(700);
    expect(next.body.id).not.toBe(first.body.id);
    // The key is the new case's now; the old case keeps it as a record.
    expect(await post(body)).toMatchObject({ status: 200, body: { id: next.body.id } });
    expect((await api.call('GET', `/v1/cases/${first.body.id}`)).body.idempotencyKey).toBe('hourly-sync');
    expect(await api.engine.store.listCases({ workflow: 'windowed', limit: 10 })).toMatchObject({ cases: [{ id: next.body.id }, { id: first.body.id }] });
  });

  it('refuses a bad window with INPUT_INVALID and its path', async () => {
    for (const idempotencyWindow of ['soon', 0, '400d']) {
      const answer = await post({ workflow: 'windowed', idempotencyKey: 'k', idempotencyWindow });
      expect(answer).toMatchObject({ status: 400, body: { error: { code: 'INPUT_INVALID', details: { issues: [{ path: 'idempotencyWindow' }] } } } });
    }
    expect((await post({ workflow: 'windowed', idempotencyWindow: '1h' })).body.error.details.issues).toEqual([expect.objectContaining({ path: 'idempotencyWindow' })]);
  });
});
