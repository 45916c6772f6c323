import { sampleBulkOperation } from '../helpers/samples.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BulkOperation } from '../../lib/core/bulk.js';
import { BulkService } from '../../lib/engine/bulk.js';
import { createLogger } from '../../lib/obs/logger.js';
import { uuidv7 } from '../../lib/runtime/ids.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Bulk operations through the API (inject) on the real engine: FerretDB and a private
 * redis-server. No worker runs: cases are failed and completed by applying the reports a worker
 * would send, so every case is exactly where the test put it.
 */

let servers: TestServers;
let api: TestApi;

const call = (method: 'GET' | 'POST', url: string, payload?: unknown) => api.call(method, url, payload === undefined ? {} : { payload });

async function start(workflow: string, batch: string): Promise<string> {
  const { record } = await api.engine.cases.start({ workflow, businessKeys: { batch } });
  return record.id;
}

/** Ends the case's only step as a worker would report it: failed with `code`, or completed. */
async function end(id: string, how: { failWith: string } | 'complete'): Promise<void> {
  const at = Date.now();
  const event =
    how === 'complete'
      ? { type: 'stepCompleted' as const, stepId: 'call', attempt: 1, at, startedAt: at - 5, output: {} }
      : { type: 'stepFailed' as const, stepId: 'call', attempt: 1, at, startedAt: at - 5, error: { code: how.failWith, message: 'the dependency is down' } };
  await api.engine.advancer.apply(id, event);
  expect((await api.engine.cases.get(id)).status).toBe(how === 'complete' ? 'completed' : 'failed');
}

async function finished(id: string): Promise<Record<string, unknown>> {
  return waitFor(
    `bulk operation ${id} to finish`,
    async () => {
      const { body } = await call('GET', `/v1/bulk/${id}`);
      return body.status === 'running' ? undefined : (body as Record<string, unknown>);
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
}

type Result = { caseId: string; outcome: string; status: string | null; code: string | null };
async function allResults(id: string): Promise<Result[]> {
  const results: Result[] = [];
  let cursor: string | null = '0';
  while (cursor !== null) {
    const { status, body } = await call('GET', `/v1/bulk/${id}/results?cursor=${cursor}`);
    expect(status).toBe(200);
    results.push(...(body.results as Result[]));
    cursor = body.nextCursor;
  }
  return results;
}

const statusOf = async (id: string) => (await api.engine.cases.get(id)).status;

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers);
  await api.engine.workflows.apply({ name: 'fragile', steps: [{ id: 'call', task: 'demo.echo', queue: 'bulk-test' }] });
  await api.engine.workflows.apply({
    name: 'gated',
    steps: [
      { id: 'gate', waitFor: { signals: ['go'] } },
      { id: 'after', task: 'demo.echo', queue: 'bulk-test', after: ['gate'] },
    ],
  });
}, 120_000);

afterAll(async () => {
  await api?.close();
  await servers?.stop();
});

describe('bulk retry', () => {
  const failed: string[] = [];
  let declined = '';
  let completed = '';

  beforeAll(async () => {
    // Oldest first: five cases failed by the outage, one declined card, and the newest completed.
    for (let i = 0; i < 5; i++) failed.push(await start('fragile', 'outage'));
    declined = await start('fragile', 'outage');
    completed = await start('fragile', 'outage');
    for (const id of failed) await end(id, { failWith: 'UPSTREAM_UNAVAILABLE' });
    await end(declined, { failWith: 'CARD_DECLINED' });
    await end(completed, 'complete');
  });

  it('counts the matching cases in a dry run, by status, without changing any', async () => {
    const byCode = await call('POST', '/v1/cases/bulk/retry', { filter: { workflow: 'fragile', errorCode: 'UPSTREAM_UNAVAILABLE' }, dryRun: true });
    expect(byCode.status).toBe(200);
    expect(byCode.body).toMatchObject({ dryRun: true, action: 'retry', matched: 5, atLeast: false, byStatus: { failed: 5 }, eligible: 5, wouldAct: 5, limit: 1000 });
    expect(byCode.body.sample.map((item: { id: string }) => item.id)).toEqual([...failed].reverse());

    const all = await call('POST', '/v1/cases/bulk/retry', { filter: { key: 'batch=outage' }, limit: 3, dryRun: true });
    expect(all.body).toMatchObject({ matched: 7, byStatus: { failed: 6, completed: 1 }, eligible: 6, wouldAct: 3 });
    // The case error's own code matches too.
    expect((await call('POST', '/v1/cases/bulk/retry', { filter: { key: 'batch=outage', errorCode: 'STEP_FAILED' }, dryRun: true })).body.matched).toBe(6);
    // The list takes the same filters.
    const listed = await call('GET', '/v1/cases?workflow=fragile&errorCode=CARD_DECLINED');
    expect(listed.body.cases.map((item: { id: string }) => item.id)).toEqual([declined]);
    for (const id of [...failed, declined]) expect(await statusOf(id)).toBe('failed');
  });

  it('retries up to the limit, newest first, with a result per case: the completed one is skipped, not a failure', async () => {
    const started = await call('POST', '/v1/cases/bulk/retry', { filter: { key: 'batch=outage' }, limit: 4 });
    expect(started.status).toBe(202);
    expect(started.headers.location).toBe(`/v1/bulk/${started.body.id}`);
    expect(started.body).toMatchObject({ action: 'retry', status: 'running', total: 4, limit: 4, filter: { key: 'batch=outage' }, createdBy: 'anonymous' });
    const done = await finished(started.body.id);
    expect(done).toMatchObject({ status: 'completed', done: 4, total: 4, counts: { ok: 3, skipped: 1, error: 0 } });
    const results = await allResults(started.body.id);
    expect(results).toEqual([
      { caseId: completed, outcome: 'skipped', status: 'completed', code: 'CASE_STATE_CONFLICT', message: expect.stringContaining('only a failed case can be retried') },
      { caseId: declined, outcome: 'ok', status: 'running', code: null, message: null },
      { caseId: failed[4], outcome: 'ok', status: 'running', code: null, message: null },
      { caseId: failed[3], outcome: 'ok', status: 'running', code: null, message: null },
    ]);
    // The limit held: the three oldest are still failed.
    expect(await Promise.all(failed.slice(0, 3).map(statusOf))).toEqual(['failed', 'failed', 'failed']);
    expect((await call('GET', `/v1/bulk/${started.body.id}/results?outcome=skipped`)).body.results.map((result: { caseId: string }) => result.caseId)).toEqual([completed]);

    // The rest, by status: only the failed ones match now.
    const rest = await call('POST', '/v1/cases/bulk/retry', { filter: { key: 'batch=outage', status: 'failed' } });
    expect(rest.body.total).toBe(3);
    expect(await finished(rest.body.id)).toMatchObject({ done: 3, counts: { ok: 3, skipped: 0, error: 0 } });
    expect(await Promise.all(failed.map(statusOf))).toEqual(['running', 'running', 'running', 'running', 'running']);
  });
});

describe('bulk cancel and signal', () => {
  it('cancels every open case of a filter with the reason, and skips a finished one', async () => {
    const open = [await start('gated', 'cancel-me'), await start('gated', 'cancel-me')];
    const finishedCase = await start('gated', 'cancel-me');
    await api.engine.cases.cancel(finishedCase, {});
    const preview = await call('POST', '/v1/cases/bulk/cancel', { filter: { key: 'batch=cancel-me' }, dryRun: true });
    expect(preview.body).toMatchObject({ matched: 3, eligible: 2, byStatus: { waiting: 2, cancelled: 1 } });
    const started = await call('POST', '/v1/cases/bulk/cancel', { filter: { key: 'batch=cancel-me' }, reason: 'supplier gone' });
    expect(started.body).toMatchObject({ action: 'cancel', reason: 'supplier gone' });
    expect(await finished(started.body.id)).toMatchObject({ status: 'completed', counts: { ok: 2, skipped: 1, error: 0 } });
    for (const id of open) {
      const record = await api.engine.cases.get(id);
      expect([record.status, record.error?.message]).toEqual(['cancelled', 'supplier gone']);
    }
    expect((await allResults(started.body.id)).find((result) => result.caseId === finishedCase)).toMatchObject({ outcome: 'skipped', code: 'CASE_STATE_CONFLICT', status: 'cancelled' });
  });

  it('sends a signal with its payload to every waiting case of a filter', async () => {
    const waiting = [await start('gated', 'signal-me'), await start('gated', 'signal-me'), await start('gated', 'signal-me')];
    const started = await call('POST', '/v1/cases/bulk/signal', { filter: { key: 'batch=signal-me', status: 'waiting' }, signal: { name: 'go', payload: { by: 'ops' } } });
    expect(started.status).toBe(202);
    expect(started.body.signal).toEqual({ name: 'go', payload: { by: 'ops' } });
    expect(await finished(started.body.id)).toMatchObject({ counts: { ok: 3, skipped: 0, error: 0 } });
    for (const id of waiting) {
      const record = await api.engine.cases.get(id);
      expect([record.steps.gate?.status, record.steps.gate?.output]).toEqual(['completed', { signal: 'go', payload: { by: 'ops' } }]);
    }
  });

  it('refuses bad requests with a code, before doing anything', async () => {
    const refusals: Array<[string, unknown]> = [
      ['/v1/cases/bulk/signal', { filter: {} }],
      ['/v1/cases/bulk/retry', { filter: {}, limit: 10_001 }],
      ['/v1/cases/bulk/retry', { filter: {}, limit: 0 }],
      ['/v1/cases/bulk/retry', { filter: { colour: 'red' } }],
      ['/v1/cases/bulk/retry', { filter: { errorCode: 'a"b' } }],
      ['/v1/cases/bulk/retry', { filter: { updatedAfter: 'an hour ago' } }],
      ['/v1/cases/bulk/retry', {}],
      ['/v1/cases/bulk/cancel', { filter: {}, signal: { name: 'go' } }],
      ['/v1/cases/bulk/signal', { filter: {}, signal: { name: 'go', payload: JSON.parse(`${'{"a":'.repeat(100)}1${'}'.repeat(100)}`) as unknown } }],
    ];
    for (const [url, payload] of refusals) {
      const response = await call('POST', url, payload);
      expect([url, JSON.stringify(payload), response.status, response.body.error.code]).toEqual([url, JSON.stringify(payload), 400, 'INPUT_INVALID']);
    }
    const missing = await call('GET', `/v1/bulk/${uuidv7()}`);
    expect([missing.status, missing.body.error.code]).toEqual([404, 'BULK_OPERATION_NOT_FOUND']);
    expect((await call('GET', '/v1/bulk/not-an-id')).status).toBe(400);
  });
});

describe('bulk operations run in pages', () => {
  it('are resumed from their last page after their runner died, and can be stopped', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await start('fragile', 'resume'));
    for (const id of ids) await end(id, { failWith: 'UPSTREAM_UNAVAILABLE' });
    const logger = createLogger({ level: 'silent', name: 'bulk-test' });
    const service = new BulkService({ store: api.engine.store, cases: api.engine.cases, clock: api.engine.clock, newId: () => uuidv7(), logger, pageSize: 2, staleAfterMs: 1_000 });
    // An operation whose runner died before its first page: its progress is 5 s old, stale for
    // this service (1 s) but not for the API process's own resumer (60 s), which must not race it.
    const now = Date.now();
    const stalled: BulkOperation = sampleBulkOperation({
      id: uuidv7(now - 60_000),
      filter: { businessKey: { name: 'batch', value: 'resume' } },
      createdAt: now - 5_000,
      updatedAt: now - 5_000,
      createdBy: 'test',
    });
    await api.engine.store.insertBulkOperation(stalled);
    expect(await service.resumeStalled()).toBe(1);
    const done = await finished(stalled.id);
    expect(done).toMatchObject({ status: 'completed', done: 5, counts: { ok: 5, skipped: 0, error: 0 } });
    // Three pages of two, read back in order.
    expect((await allResults(stalled.id)).map((result) => result.caseId)).toEqual([...ids].reverse());
    expect(await service.resumeStalled()).toBe(0);

    // A stop holds whatever the runner writes next.
    const again = await service.start({ params: { action: 'retry' }, filter: { businessKey: { name: 'batch', value: 'resume' } }, limit: 5 }, 'test');
    const stopped = await call('POST', `/v1/bulk/${again.id}/stop`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.status).toBe('stopped');
    await service.close();
    const after = (await call('GET', `/v1/bulk/${again.id}`)).body;
    expect([after.status, after.finishedAt]).toEqual(['stopped', stopped.body.finishedAt]);
  });
});
