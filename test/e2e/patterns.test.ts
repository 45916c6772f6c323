import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { Fleet } from '../helpers/fleet.js';
import { producerQueue, startServers, type TestServers } from '../helpers/servers.js';
import { httpClient, type WireCase } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Every example workflow (one per pattern) through the real processes, plus cancellation,
 * retry, versioning and schedules as a user drives them over HTTP.
 */

let servers: TestServers;
let fleet: Fleet;
let prefix: string;
const { api, getCase, getTrace: trace, until } = httpClient(() => fleet.apiUrl);

const start = async (workflow: string, input: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => {
  const { status, body } = await api<{ id: string }>('POST', '/v1/cases', { workflow, input, ...extra });
  expect(status).toBe(201);
  return body.id;
};

beforeAll(async () => {
  servers = await startServers();
  const namespace = servers.namespace();
  prefix = namespace.prefix;
  fleet = await Fleet.start({ redisUrl: servers.redis.url, mongoUrl: namespace.mongoUrl, prefix, label: 'e2e-patterns', env: { WORKER_CONCURRENCY: '20' } });
  const dir = join(packageRoot(), 'examples', 'workflows');
  for (const file of readdirSync(dir)) {
    const response = await fetch(`${fleet.apiUrl}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: readFileSync(join(dir, file), 'utf8') });
    expect([file, response.status]).toEqual([file, 201]);
  }
}, 120_000);

afterAll(async () => {
  await fleet?.stopAll();
  await servers?.stop();
});

describe('the example workflows, one per pattern', () => {
  it('flaky-fetch: retries with backoff until the upstream answers (WCP1 sequence)', async () => {
    const done = await until(await start('flaky-fetch', { failTimes: 2 }), 'completed');
    expect(done.steps.fetch).toMatchObject({ status: 'completed', attempts: 3 });
    expect(done.output).toEqual({ store: { stored: 'ok', tookAttempts: 3 } });
  });

  it('order: runs a parallel split and its synchronization (WCP2, WCP3)', async () => {
    const done = await until(await start('order', { sku: 'book', quantity: 1, amount: 10 }), 'completed');
    expect(done.output).toMatchObject({ reservationId: expect.stringMatching(/^rsv-/), receipt: expect.stringMatching(/^rcpt-/), trackingNumber: expect.stringMatching(/^TRK/) });
  });

  it('crawl: runs at most 3 fetches of one domain at once, and the rate limit lets all 8 through within the minute', async () => {
    const done = await until(await start('crawl', { domain: 'a.example', partner: 'p-crawl', pages: [1, 2, 3, 4, 5, 6, 7, 8] }, { priority: 5 }), 'completed', 30_000);
    const items = (done.steps.fetch?.output as { items: Array<{ startedAt: number; endedAt: number }> }).items;
    expect(items).toHaveLength(8);
    const most = Math.max(...items.map((item) => items.filter((other) => other.startedAt <= item.startedAt && item.startedAt < other.endedAt).length));
    expect(most).toBe(3);
  });

  it('account-sync: a newer start cancels the sync in progress (cancel-in-progress), its trace saying which case replaced it', async () => {
    const first = await start('account-sync', { account: 'acme' });
    await until(first, 'running');
    await waitFor('the first sync to hold its slot', async () => ((await trace(first)).some((event) => event.type === 'case.admitted') ? true : undefined));
    const second = await start('account-sync', { account: 'acme' });
    const cancelled = await until(first, 'cancelled');
    expect(cancelled.error?.message).toBe(`cancel-in-progress: case ${second} started with key "acme" (workflow:account-sync)`);
    const done = await until(second, 'completed', 30_000);
    expect(done.output).toMatchObject({ push: { account: 'acme' } });
    const types = (await trace(second)).map((event) => event.type);
    expect(types.slice(0, 3)).toEqual(['case.created', 'case.queued', 'case.admitted']);
  });

  it('partner-lookup: retries through a short outage behind its breaker', async () => {
    const done = await until(await start('partner-lookup', { customerId: 'c-7', outageMs: 1_000, outageId: 'patterns' }), 'completed', 60_000);
    expect(done.output).toEqual({ lookup: { customerId: 'c-7', tier: 'gold' } });
  }, 90_000);

  it('approval: waits for a signal, shows what it waits for, and takes the branch chosen (WCP16, WCP4, WCP5)', async () => {
    const id = await start('approval', { approver: 'ana@example.com', amount: 120 });
    const waiting = await until(id, 'waiting');
    expect(waiting.waitingFor).toEqual([{ stepId: 'decide', signals: ['approve', 'reject'], until: expect.any(String) }]);
    const signalled = await api<WireCase>('POST', `/v1/cases/${id}/signals/approve`, { by: 'ana' });
    expect(signalled.status).toBe(200);
    const done = await until(id, 'completed');
    expect(done.output).toMatchObject({ decision: 'approve', receipt: expect.stringMatching(/^rcpt-/) });
    expect(done.steps.decline?.status).toBe('skipped');
    expect(done.steps.close?.output).toEqual({ recorded: true, decision: 'approve', by: 'ana' });

    const rejected = await start('approval', { amount: 5 });
    await until(rejected, 'waiting');
    await api('POST', `/v1/cases/${rejected}/signals/reject`, { by: 'bo' });
    const declined = await until(rejected, 'completed');
    expect([declined.steps.pay?.status, declined.steps.decline?.status]).toEqual(['skipped', 'completed']);
    expect((await api('POST', `/v1/cases/${rejected}/signals/approve`, {})).status).toBe(409);
  });

  it('a signal wait times out into its timeout branch', async () => {
    await api('POST', '/v1/workflows', {
      name: 'quick-approval',
      steps: [
        { id: 'decide', waitFor: { signals: ['approve'], timeout: '500ms' } },
        { id: 'escalate', after: ['decide'], when: 'steps.decide.output.timedOut == true', task: 'demo.echo', input: { escalated: true } },
      ],
    });
    const id = await start('quick-approval');
    const done = await until(id, 'completed', 20_000);
    expect(done.steps.decide?.output).toEqual({ signal: null, timedOut: true });
    expect(done.steps.escalate?.output).toEqual({ escalated: true });
  });

  it('search-index: a burst of edits of one document makes one reindex, at the last revision (debounce)', async () => {
    const answers = [];
    for (let revision = 1; revision <= 5; revision++) answers.push(await api<{ id: string; status: string }>('POST', '/v1/cases', { workflow: 'search-index', input: { documentId: 'doc-7', revision } }));
    expect(answers.map((answer) => [answer.status, answer.body.status])).toEqual(Array(5).fill([202, 'debounced']));
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1);
    const done = await until(answers[0]?.body.id ?? '', 'completed');
    expect(done.output).toEqual({ index: { indexed: 'doc-7', revision: 5 } });
    expect((await api<{ cases: unknown[] }>('GET', '/v1/cases?workflow=search-index')).body.cases).toHaveLength(1);
  });

  it('notify: runs every branch the input asks for and joins only those (WCP6, WCP7)', async () => {
    const id = await start('notify', { channels: ['email', 'push'] });
    const done = await until(id, 'completed');
    expect(done.steps.sms?.status).toBe('skipped');
    expect(done.steps.log?.output).toEqual({ email: 'email', sms: null, push: 'push' });
  });

  it('batch-pack: fans out over the items and in again, in order, with 3, 0 and 1,000 items (WCP14)', async () => {
    const three = await start('batch-pack', { lines: [{ sku: 'a', quantity: 2 }, { sku: 'broken' }, { sku: 'c', quantity: 3 }] });
    const packed = await until(three, 'completed');
    expect(packed.output.summary).toEqual({ boxes: 2, units: 5 });
    expect(packed.output.failed).toEqual([{ index: 1, error: expect.objectContaining({ code: 'UNPACKABLE' }) }]);
    expect(packed.steps.pack?.items).toMatchObject({ total: 3, completed: 2, failed: 1 });

    const none = await until(await start('batch-pack', { lines: [] }), 'completed');
    expect(none.output.summary).toEqual({ boxes: 0, units: 0 });

    // A fan-out this wide wants a higher concurrency than the example's 5: more reports arrive
    // together, and the scheduler applies them in fewer transitions.
    const wide = readFileSync(join(packageRoot(), 'examples', 'workflows', 'batch-pack.yaml'), 'utf8')
      .replace('name: batch-pack', 'name: batch-pack-wide')
      .replace('concurrency: 5', 'concurrency: 200');
    expect((await fetch(`${fleet.apiUrl}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: wide })).status).toBe(201);
    const lines = Array.from({ length: 1_000 }, (_, i) => ({ sku: `s${i}`, quantity: 1 }));
    const began = Date.now();
    const many = await until(await start('batch-pack-wide', { lines }), 'completed', 180_000);
    process.stdout.write(`e2e: forEach over 1,000 items (concurrency 200) took ${((Date.now() - began) / 1000).toFixed(1)} s\n`);
    expect(many.output.summary).toEqual({ boxes: 1_000, units: 1_000 });
    const items = (many.steps.pack?.output as { items: Array<{ sku: string }> }).items;
    expect(items.map((item) => item.sku)).toEqual(lines.map((line) => line.sku));
  }, 240_000);

  it('report-poll: repeats the check until it holds, each iteration in the trace (WCP21)', async () => {
    const id = await start('report-poll', { readyAfter: 3 });
    const done = await until(id, 'completed');
    expect(done.steps.check).toMatchObject({ iteration: 3, output: { ready: true, checks: 3 } });
    expect(done.steps.publish?.output).toEqual({ publishedAfter: 3 });
    const iterations = (await trace(id)).filter((event) => event.stepId === 'check' && event.type === 'step.completed' && event.data.iteration !== undefined);
    expect(iterations.map((event) => event.data.iteration)).toEqual([1, 2, 3]);
  });

  it('reminder: sleeps on a delayed job, then goes on', async () => {
    const started = Date.now();
    const id = await start('reminder', { to: 'me@example.com' });
    const timers = producerQueue(servers.redis.url, 'timers', prefix);
    await waitFor('the delayed timer job', async () => ((await timers.getJobCountByTypes('delayed')) > 0 ? true : undefined));
    await timers.close();
    expect((await getCase(id)).steps.wait?.status).toBe('waiting');
    const done = await until(id, 'completed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_000);
    expect(done.steps.remind?.output).toEqual({ channel: 'email', to: 'me@example.com' });
  });

  it('trip: compensates the completed bookings in reverse order when the car fails (saga)', async () => {
    const id = await start('trip', { carAvailable: false });
    const failed = await until(id, 'failed');
    expect(failed.error).toMatchObject({ code: 'STEP_FAILED', details: { compensated: ['hotel', 'flight'], compensationFailed: [] } });
    expect([failed.steps.flight?.status, failed.steps.hotel?.status, failed.steps.car?.status]).toEqual(['compensated', 'compensated', 'failed']);
    const undone = (await trace(id)).filter((event) => event.type === 'step.compensated').map((event) => event.stepId);
    expect(undone).toEqual(['hotel', 'flight']);
    expect((await until(await start('trip', { carAvailable: true }), 'completed')).status).toBe('completed');
  });

  it('order-batch: runs sub-workflows as linked child cases and takes their outputs', async () => {
    const order = (sku: string) => ({ sku, quantity: 1, amount: 10 });
    const id = await start('order-batch', { first: order('a'), second: order('b') });
    const done = await until(id, 'completed');
    expect(done.output.report).toEqual({ first: expect.stringMatching(/^TRK/), second: expect.stringMatching(/^TRK/) });
    const child = await getCase(done.steps.first?.childCaseId ?? '');
    expect(child).toMatchObject({ status: 'completed', parent: { caseId: id, stepId: 'first' } });
  });
});

describe('operating cases', () => {
  it('cancels a case: its running handler is aborted in the worker and its child cases are cancelled', async () => {
    await api('POST', '/v1/workflows', {
      name: 'long',
      steps: [
        { id: 'work', task: 'demo.sleep', timeout: '1m', input: { ms: 60_000 } },
        { id: 'child', workflow: { name: 'approval' }, input: { amount: 1 } },
      ],
    });
    const id = await start('long');
    const running = await waitFor('the step to run and the child to start', async () => {
      const record = await getCase(id);
      return record.steps.work?.status === 'running' && record.steps.child?.childCaseId ? record : undefined;
    });
    const cancelled = await api<WireCase>('POST', `/v1/cases/${id}/cancel`, { reason: 'no longer needed' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', error: { code: 'CANCELLED', message: 'no longer needed' } });
    const child = await until(running.steps.child?.childCaseId ?? '', 'cancelled');
    expect(child.error?.message).toContain('parent cancelled');
    const queue = producerQueue(servers.redis.url, 'default', prefix);
    const job = await waitFor(
      'the aborted job to fail',
      async () => {
        const found = await queue.getJob(`${id}.work`);
        return found?.failedReason ? found : undefined;
      },
      { timeoutMs: 10_000 },
    );
    await queue.close();
    expect(job.failedReason).toBe('STEP_CANCELLED: the case was cancelled');
    expect((await api('POST', `/v1/cases/${id}/cancel`, {})).status).toBe(409);
  });

  it('retries a failed case from its failed step', async () => {
    await api('POST', '/v1/workflows', {
      name: 'gated',
      steps: [
        { id: 'before', task: 'demo.echo', input: { n: 1 } },
        { id: 'gate', after: ['before'], task: 'demo.gate', retry: { maxAttempts: 1 }, input: { until: '${input.opensAt}' } },
      ],
    });
    const opensAt = Date.now() + 2_500;
    const id = await start('gated', { opensAt: new Date(opensAt).toISOString() });
    const failed = await until(id, 'failed');
    expect(failed.steps.gate?.error?.code).toBe('NOT_YET');
    await waitFor('the gate to open', () => (Date.now() >= opensAt ? true : undefined), { timeoutMs: 5_000 });
    expect((await api('POST', `/v1/cases/${id}/retry`)).status).toBe(200);
    const done = await until(id, 'completed');
    expect(done.steps.before?.attempts).toBe(1);
    expect((await trace(id)).map((event) => event.type)).toContain('case.retried');
    expect((await api('POST', `/v1/cases/${id}/retry`)).status).toBe(409);
  });

  it('keeps a running case on the version it started with', async () => {
    const v1 = {
      name: 'versioned',
      steps: [
        { id: 'wait', waitFor: { signals: ['go'] } },
        { id: 'tail', after: ['wait'], task: 'demo.echo', input: { version: 1 } },
      ],
    };
    expect((await api<{ version: number }>('POST', '/v1/workflows', v1)).body.version).toBe(1);
    const id = await start('versioned');
    await until(id, 'waiting');
    const v2 = { ...v1, steps: [v1.steps[0], { id: 'tail', after: ['wait'], task: 'demo.echo', input: { version: 2 } }] };
    expect((await api<{ version: number }>('POST', '/v1/workflows', v2)).body.version).toBe(2);
    expect((await api<{ version: number; created: boolean }>('POST', '/v1/workflows', v2)).body).toMatchObject({ version: 2, created: false });
    await api('POST', `/v1/cases/${id}/signals/go`, {});
    const done = await until(id, 'completed');
    expect([done.version, done.steps.tail?.output]).toEqual([1, { version: 1 }]);
    expect((await getCase(await start('versioned'))).version).toBe(2);
    expect((await getCase(await start('versioned', {}, { version: 1 }))).version).toBe(1);
  });

  it('starts cases on a schedule, once per run with two schedulers, and stops when the schedule is deleted', async () => {
    await fleet.spawn('scheduler-2', 'scheduler');
    await api('POST', '/v1/workflows', { name: 'tick', steps: [{ id: 'a', task: 'demo.echo', input: { at: '${case.id}' } }] });
    const created = await api<{ id: string; next: string | null }>('POST', '/v1/schedules', { id: 'every-second', workflow: 'tick', every: '1s', input: {} });
    expect(created.status).toBe(201);
    expect((await api('POST', '/v1/schedules', { id: 'bad', workflow: 'tick', cron: 'every day' })).status).toBe(400);
    expect((await api('POST', '/v1/schedules', { id: 'ghost', workflow: 'nope', every: '1s' })).status).toBe(404);
    const listed = await api<{ schedules: Array<{ id: string; everyMs: number }> }>('GET', '/v1/schedules');
    expect(listed.body.schedules).toEqual([expect.objectContaining({ id: 'every-second', everyMs: 1_000 })]);
    await waitFor(
      'two scheduled cases',
      async () => {
        const page = await api<{ cases: unknown[] }>('GET', '/v1/cases?workflow=tick&status=completed');
        return page.body.cases.length >= 2 ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect((await api('DELETE', '/v1/schedules/every-second')).status).toBe(204);
    expect((await api<{ schedules: unknown[] }>('GET', '/v1/schedules')).body.schedules).toEqual([]);
    // Each run is one intake job; two schedulers never made two cases of one run.
    const cases = (await api<{ cases: Array<{ id: string }> }>('GET', '/v1/cases?workflow=tick&limit=200')).body.cases;
    const runs = await Promise.all(cases.map(async (item) => (await trace(item.id))[0]?.data.requestId));
    expect(new Set(runs).size).toBe(runs.length);
    expect(runs.every((run) => typeof run === 'string' && run.startsWith('intake:repeat:'))).toBe(true);
  });
});
