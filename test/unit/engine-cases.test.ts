import { describe, expect, it } from 'vitest';
import type { CaseEvent } from '../../lib/core/state.js';
import { memoryEngine } from '../helpers/memory-engine.js';
import { orderDefinition, T0 } from './fixtures.js';

/** CaseService on the MemoryStore: starting cases once, whichever door, and what each start enqueues. */

async function orderEngine() {
  const engine = memoryEngine({ now: T0 });
  await engine.workflows.apply(orderDefinition);
  return engine;
}

const body = (extra: Record<string, unknown> = {}) => ({ workflow: 'order', input: { sku: 'book', amount: 25 }, ...extra });

const completed = (stepId: string, output: unknown, at = T0 + 10): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at, startedAt: at - 5, output });

describe('CaseService.start', () => {
  it('stores the case and enqueues the steps that wait for nothing, inputs rendered', async () => {
    const { cases, store, queues } = await orderEngine();
    const { record, created } = await cases.start(body(), { startedBy: 'key-1', requestId: 'req-1' });
    expect(created).toBe(true);
    expect(record).toMatchObject({ workflow: 'order', version: 1, status: 'running', revision: 0, startedBy: 'key-1', requestId: 'req-1' });
    expect(await store.getCase(record.id)).toEqual(record);
    expect(queues.jobIds()).toEqual([`${record.id}.reserve`, `${record.id}.charge`]);
    expect(queues.job(`${record.id}.reserve`)).toMatchObject({ caseId: record.id, stepId: 'reserve', task: 'inventory.reserve', input: { sku: 'book' }, requestId: 'req-1' });
    expect(queues.job(`${record.id}.charge`)).toMatchObject({ task: 'payments.charge', input: { amount: 25 }, maxAttempts: 2 });
    expect((await cases.trace(record.id)).map((event) => [event.type, event.stepId])).toEqual([
      ['case.created', undefined],
      ['step.scheduled', 'reserve'],
      ['step.scheduled', 'charge'],
    ]);
  });

  it('answers a replayed idempotency key with the case the first start made', async () => {
    const { cases, store, queues } = await orderEngine();
    const first = await cases.start(body({ idempotencyKey: 'order-77' }));
    const replay = await cases.start(body({ idempotencyKey: 'order-77' }));
    expect(replay.created).toBe(false);
    expect(replay.record).toEqual(first.record);
    expect((await store.listCases({ limit: 10 })).cases.map((item) => item.id)).toEqual([first.record.id]);
    expect(queues.jobIds()).toEqual([`${first.record.id}.reserve`, `${first.record.id}.charge`]);
    // The same key with another request is refused, not answered with a case it did not ask for.
    await expect(cases.start(body({ idempotencyKey: 'order-77', input: { sku: 'pen', amount: 3 } }))).rejects.toMatchObject({
      code: 'IDEMPOTENCY_CONFLICT',
      details: { caseId: first.record.id },
    });
  });

  it('answers a key with its case within the idempotency window, and makes a new case once it is over', async () => {
    const { cases, clock } = await orderEngine();
    const first = await cases.start(body({ idempotencyKey: 'hourly', idempotencyWindow: '1h' }));
    expect(first.record.idempotencyExpiresAt).toBe(T0 + 3_600_000);
    clock.time = T0 + 3_599_999;
    // A replay's own window changes nothing: the key's lifetime is the first start's.
    expect(await cases.start(body({ idempotencyKey: 'hourly', idempotencyWindow: '1ms' }))).toMatchObject({ created: false, record: { id: first.record.id } });
    clock.time = T0 + 3_600_000;
    // Over: a new case, even for another request (no conflict with an expired key).
    const next = await cases.start(body({ idempotencyKey: 'hourly', input: { sku: 'pen', amount: 3 } }));
    expect(next.created).toBe(true);
    expect(next.record.id).not.toBe(first.record.id);
    clock.time = T0 + 10 * 3_600_000;
    // The new case had no window: the key answers with it for ever.
    expect(await cases.start(body({ idempotencyKey: 'hourly', input: { sku: 'pen', amount: 3 } }))).toMatchObject({ created: false, record: { id: next.record.id } });
  });

  it('makes one case of an intake job delivered twice (its job id as the key)', async () => {
    const { cases, store } = await orderEngine();
    const first = await cases.start(body(), { fallbackIdempotencyKey: 'intake-job-9', startedBy: 'intake' });
    const again = await cases.start(body(), { fallbackIdempotencyKey: 'intake-job-9', startedBy: 'intake' });
    expect([first.created, again.created, again.record.id]).toEqual([true, false, first.record.id]);
    // A key in the request wins over the job id.
    const keyed = await cases.start(body({ idempotencyKey: 'own-key' }), { fallbackIdempotencyKey: 'intake-job-9' });
    expect(keyed.created).toBe(true);
    expect((await store.listCases({ limit: 10 })).cases).toHaveLength(2);
  });

  it('scopes keys: one per API key, one shared by the intake queue and anonymous callers, one the engine derives in', async () => {
    const { cases } = await orderEngine();
    const a = await cases.start(body({ idempotencyKey: 'k-1' }), { startedBy: 'keyA00000001' });
    const b = await cases.start(body({ idempotencyKey: 'k-1' }), { startedBy: 'keyB00000002' });
    expect(b.created).toBe(true);
    expect(b.record.id).not.toBe(a.record.id);
    // Another producer's different request under the same key is no conflict, and names nothing.
    expect((await cases.start(body({ idempotencyKey: 'k-1', input: { sku: 'pen', amount: 1 } }), { startedBy: 'keyC00000003' })).created).toBe(true);
    const open = await cases.start(body({ idempotencyKey: 'k-2' }), { startedBy: 'anonymous' });
    expect((await cases.start(body({ idempotencyKey: 'k-2' }), { startedBy: 'intake' })).record.id).toBe(open.record.id);
    // A derived key is not the same key as a producer's that spells it alike.
    const derived = await cases.start(body(), { fallbackIdempotencyKey: 'k-2', startedBy: 'intake' });
    expect(derived.created).toBe(true);
    expect(derived.record).toMatchObject({ idempotencyKey: 'k-2', idempotencyScope: 'engine' });
  });

  it('enqueues on a replay the steps a first start stored but could not enqueue', async () => {
    const { cases, store, queues } = await orderEngine();
    queues.failNextEnqueue(new Error('redis unreachable'));
    // The failure says the case may exist, and which (the API answers 503 with it when the cause is a server away).
    const failure = cases.start(body({ idempotencyKey: 'k' }));
    await expect(failure).rejects.toMatchObject({ code: 'START_INCOMPLETE', retryable: true, cause: expect.objectContaining({ message: 'redis unreachable' }) });
    const [stored] = (await store.listCases({ limit: 10 })).cases;
    await expect(failure).rejects.toMatchObject({ details: { caseId: stored?.id, idempotencyKey: 'k' } });
    expect(stored?.status).toBe('running');
    expect(queues.jobIds()).toEqual([]);
    const replay = await cases.start(body({ idempotencyKey: 'k' }));
    expect(replay).toMatchObject({ created: false, record: { id: stored?.id } });
    expect(queues.jobIds()).toEqual([`${stored?.id}.reserve`, `${stored?.id}.charge`]);
  });

  it('refuses an unknown workflow or an invalid request and stores nothing', async () => {
    const { cases, store, queues } = await orderEngine();
    await expect(cases.start({ workflow: 'nope' })).rejects.toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
    await expect(cases.start({ workflow: 'order', version: 2 })).rejects.toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
    await expect(cases.start({ workflow: 42 })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    expect((await store.listCases({ limit: 10 })).cases).toEqual([]);
    expect(queues.stepRequests).toEqual([]);
  });
});

describe('CaseService operations', () => {
  it('cancels an open case, stopping its jobs, and refuses to signal or cancel it afterwards', async () => {
    const { cases, queues } = await orderEngine();
    const { record } = await cases.start(body());
    const cancelled = await cases.cancel(record.id, { reason: 'customer asked' });
    expect(cancelled).toMatchObject({ status: 'cancelled', error: { code: 'CANCELLED', message: 'customer asked' } });
    expect(queues.cancelled.map((job) => job.jobId).sort()).toEqual([`${record.id}.charge`, `${record.id}.reserve`]);
    await expect(cases.cancel(record.id, {})).rejects.toMatchObject({ code: 'CASE_STATE_CONFLICT' });
    await expect(cases.signal(record.id, 'go', {})).rejects.toMatchObject({ code: 'CASE_STATE_CONFLICT' });
  });

  it('retries a failed case with new jobs for its failed steps only', async () => {
    const { cases, advancer, queues } = await orderEngine();
    const { record } = await cases.start(body());
    await expect(cases.retry(record.id)).rejects.toMatchObject({ code: 'CASE_STATE_CONFLICT' });
    await advancer.apply(record.id, completed('reserve', { id: 'r-1' }));
    const error = { code: 'DECLINED', message: 'card declined', retryable: false };
    await advancer.apply(record.id, { type: 'stepFailed', stepId: 'charge', attempt: 1, at: T0 + 20, error });
    expect((await cases.get(record.id)).status).toBe('failed');
    const retried = await cases.retry(record.id);
    expect(retried).toMatchObject({ status: 'running', steps: { reserve: { status: 'completed' }, charge: { status: 'scheduled', run: 1 } } });
    expect(queues.jobIds()).toEqual([`${record.id}.reserve`, `${record.id}.charge`, `${record.id}.charge.r1`]);
  });

  it('reports an unknown case as not found', async () => {
    const { cases } = await orderEngine();
    const missing = '01a00000-0000-7000-8000-0000000fffff';
    await expect(cases.get(missing)).rejects.toMatchObject({ code: 'CASE_NOT_FOUND' });
    await expect(cases.trace(missing)).rejects.toMatchObject({ code: 'CASE_NOT_FOUND' });
    await expect(cases.signal(missing, 'go', null)).rejects.toMatchObject({ code: 'CASE_NOT_FOUND' });
  });
});
