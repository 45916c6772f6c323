import { sampleBulkOperation } from '../helpers/samples.js';
import { describe, expect, it } from 'vitest';
import { BULK_LIMITS, type BulkOperation } from '../../lib/core/bulk.js';
import { memoryEngine, type MemoryEngine } from '../helpers/memory-engine.js';
import { waitFor } from '../helpers/wait.js';
import { orderDefinition, T0 } from './fixtures.js';

/** BulkService on the MemoryStore: previews, runs page by page through the single-case calls, resumes a stalled run. */

const decline = { code: 'DECLINED', message: 'card declined', retryable: false };

/** `failed` failed order cases, then `running` running ones, oldest first. */
async function orders(engine: MemoryEngine, failed: number, running: number): Promise<{ failed: string[]; running: string[] }> {
  await engine.workflows.apply(orderDefinition);
  const made = { failed: [] as string[], running: [] as string[] };
  for (let i = 0; i < failed + running; i++) {
    const { record } = await engine.cases.start({ workflow: 'order', input: { sku: 'book', amount: i } });
    if (i < failed) {
      await engine.advancer.apply(record.id, { type: 'stepFailed', stepId: 'charge', attempt: 1, at: T0 + 10, error: decline });
      made.failed.push(record.id);
    } else {
      made.running.push(record.id);
    }
  }
  return made;
}

const finished = (engine: MemoryEngine, id: string) =>
  waitFor(
    'the bulk operation to finish',
    async () => {
      const operation = await engine.bulk.get(id);
      return operation.status === 'running' ? undefined : operation;
    },
    { timeoutMs: 5_000, intervalMs: 5 },
  );

describe('BulkService', () => {
  it('previews a run: what matches, by status, what the action applies to, and how many it would act on', async () => {
    const engine = memoryEngine({ now: T0 });
    const made = await orders(engine, 3, 2);
    const preview = await engine.bulk.preview({ params: { action: 'retry' }, filter: { workflow: 'order' }, limit: 4 });
    expect(preview).toMatchObject({ matched: 5, atLeast: false, byStatus: { failed: 3, running: 2 }, eligible: 3, wouldAct: 4 });
    expect(preview.sample.map((item) => item.id)).toEqual([...made.failed, ...made.running].reverse());
    // A preview changes nothing.
    expect((await engine.store.countCases({ status: 'failed' }, 100)).total).toBe(3);
  });

  it('runs page by page through the single-case call: applied where the state allows, skipped where it does not', async () => {
    const engine = memoryEngine({ now: T0, bulkPageSize: 2 });
    const made = await orders(engine, 3, 2);
    const started = await engine.bulk.start({ params: { action: 'cancel', reason: 'recall' }, filter: { workflow: 'order' }, limit: 10 }, 'key-admin');
    expect(started).toMatchObject({ status: 'running', total: 5, done: 0, createdBy: 'key-admin' });
    const operation = await finished(engine, started.id);
    expect(operation).toMatchObject({ status: 'completed', total: 5, done: 5, pages: 3, counts: { ok: 2, skipped: 3, error: 0 } });
    for (const id of made.running) expect(await engine.cases.get(id)).toMatchObject({ status: 'cancelled', error: { message: 'recall' } });
    for (const id of made.failed) expect((await engine.cases.get(id)).status).toBe('failed');
    const { results, nextPage } = await engine.bulk.results(started.id);
    expect(nextPage).toBeNull();
    expect(results.map((result) => [result.caseId, result.outcome])).toEqual([...made.failed.map((id) => [id, 'skipped']), ...made.running.map((id) => [id, 'ok'])].reverse());
    expect((await engine.bulk.results(started.id, { outcome: 'skipped' })).results.every((result) => result.code === 'CASE_STATE_CONFLICT' && result.status === 'failed')).toBe(true);
  });

  it('acts on `limit` cases at most, and corrects the total to what it did', async () => {
    const engine = memoryEngine({ now: T0, bulkPageSize: 2 });
    const made = await orders(engine, 5, 0);
    const started = await engine.bulk.start({ params: { action: 'retry' }, filter: { status: 'failed' }, limit: 3 }, 'key-admin');
    expect(await finished(engine, started.id)).toMatchObject({ status: 'completed', total: 3, done: 3, counts: { ok: 3, skipped: 0, error: 0 } });
    const statuses = await Promise.all(made.failed.map(async (id) => (await engine.cases.get(id)).status));
    // Newest first: the three newest were retried, the two oldest are still failed.
    expect(statuses).toEqual(['failed', 'failed', 'running', 'running', 'running']);
  });

  it('resumes an operation whose runner stopped writing progress, and only once it is stale', async () => {
    const engine = memoryEngine({ now: T0, bulkPageSize: 2 });
    const made = await orders(engine, 3, 0);
    // Stored as its runner left it when it died: running, no page done.
    const orphan: BulkOperation = sampleBulkOperation({ id: 'bulk-orphan', limit: 10, total: 3, createdAt: T0, updatedAt: T0, createdBy: 'key-admin' });
    await engine.store.insertBulkOperation(orphan);
    expect(await engine.bulk.resumeStalled()).toBe(0);
    engine.clock.time = T0 + BULK_LIMITS.staleAfterMs + 1;
    expect(await engine.bulk.resumeStalled()).toBe(1);
    expect(await finished(engine, orphan.id)).toMatchObject({ status: 'completed', done: 3, counts: { ok: 3 } });
    for (const id of made.failed) expect((await engine.cases.get(id)).status).toBe('running');
  });

  it('answers a stop of a finished operation with it as it is, and an unknown id as not found', async () => {
    const engine = memoryEngine({ now: T0 });
    await orders(engine, 1, 0);
    const started = await engine.bulk.start({ params: { action: 'retry' }, filter: { status: 'failed' }, limit: 10 }, 'key-admin');
    const done = await finished(engine, started.id);
    expect(await engine.bulk.stop(started.id)).toEqual(done);
    await expect(engine.bulk.get('no-such-operation')).rejects.toMatchObject({ code: 'BULK_OPERATION_NOT_FOUND' });
    await expect(engine.bulk.stop('no-such-operation')).rejects.toMatchObject({ code: 'BULK_OPERATION_NOT_FOUND' });
  });
});
