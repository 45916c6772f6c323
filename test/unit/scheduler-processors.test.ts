import type { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { CaseEvent } from '../../lib/core/state.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import type { Delivery } from '../../lib/ports/queues.js';
import { enforceDeadlines } from '../../scheduler/deadlines.js';
import { intakeProcessor, intakeRequestId } from '../../scheduler/intake.js';
import { resultsProcessor } from '../../scheduler/results.js';
import { memoryEngine, type MemoryEngine } from '../helpers/memory-engine.js';
import { orderDefinition, T0 } from './fixtures.js';

/**
 * The scheduler's processors on the MemoryStore and RecordingQueues, as BullMQ would hand them
 * jobs: intake (start jobs), results (step reports) and the deadline check. The same parts
 * against real servers: test/integration/scheduler.test.ts.
 */

const logger = createLogger({ level: 'silent', name: 'scheduler-unit' });

function delivery(data: unknown, options: { id?: string; name?: string; enqueuedAt?: number } = {}): Delivery<unknown> {
  return {
    id: options.id ?? '1',
    queue: 'cases',
    name: options.name ?? 'start',
    data,
    enqueuedAt: options.enqueuedAt ?? T0 - 1_000,
    attempt: 1,
    maxAttempts: 1,
    signal: new AbortController().signal,
    reportProgress: async () => undefined,
  };
}

async function counted(counter: Counter, labels: Record<string, string>): Promise<number> {
  const { values } = await counter.get();
  return values.find((value) => Object.entries(labels).every(([name, label]) => value.labels[name] === label))?.value ?? 0;
}

async function orderEngine(): Promise<MemoryEngine & { metrics: Metrics }> {
  const engine = memoryEngine({ now: T0 });
  await engine.workflows.apply(orderDefinition);
  return { ...engine, metrics: new Metrics('scheduler') };
}

const order = { workflow: 'order', input: { sku: 'book', amount: 25 } };

describe('intakeProcessor', () => {
  it('starts a case from a start job, as the intake door; the same job delivered again finds it', async () => {
    const engine = await orderEngine();
    const intake = intakeProcessor({ ...engine, logger });
    expect(await intake(delivery(order, { id: '7' }))).toEqual({ kind: 'complete' });
    expect(await intake(delivery(order, { id: '7' }))).toEqual({ kind: 'complete' });
    const { cases } = await engine.store.listCases({ limit: 10 });
    expect(cases).toHaveLength(1);
    expect(await engine.store.getCase(cases[0]?.id ?? '')).toMatchObject({ startedBy: 'intake', requestId: intakeRequestId('7'), idempotencyScope: 'engine' });
    expect(engine.queues.jobIds()).toHaveLength(2);
  });

  it('makes a case of its own for a job whose id came again after Redis was wiped (another time it was added)', async () => {
    const engine = await orderEngine();
    const intake = intakeProcessor({ ...engine, logger });
    await intake(delivery(order, { id: '1', enqueuedAt: T0 - 5_000 }));
    await intake(delivery(order, { id: '1', enqueuedAt: T0 - 1_000 }));
    expect((await engine.store.listCases({ limit: 10 })).cases).toHaveLength(2);
  });

  it('fails once, with the reason, a job of another name or one that is not a start request; starts nothing', async () => {
    const engine = await orderEngine();
    const intake = intakeProcessor({ ...engine, logger });
    expect(await intake(delivery(order, { name: 'begin' }))).toEqual({ kind: 'fail', reason: expect.stringMatching(/^UNKNOWN_JOB_NAME: .*"begin"/) });
    expect(await intake(delivery({ workflow: 'order', input: 'not an object' }))).toEqual({ kind: 'fail', reason: expect.stringMatching(/^INPUT_INVALID: /) });
    expect(await intake(delivery({ workflow: 'nope' }))).toEqual({ kind: 'fail', reason: expect.stringMatching(/^WORKFLOW_NOT_FOUND: /) });
    expect((await engine.store.listCases({ limit: 10 })).cases).toEqual([]);
    expect(await counted(engine.metrics.intakeRejected, { code: 'UNKNOWN_JOB_NAME' })).toBe(1);
    expect(await counted(engine.metrics.intakeRejected, { code: 'INPUT_INVALID' })).toBe(1);
    expect(await counted(engine.metrics.intakeRejected, { code: 'WORKFLOW_NOT_FOUND' })).toBe(1);
  });

  it('defers, spending no attempt, a job whose start could not enqueue its steps; the next delivery finishes it', async () => {
    const engine = await orderEngine();
    const intake = intakeProcessor({ ...engine, logger });
    engine.queues.failNextEnqueue(new Error('redis unreachable'));
    const deferred = await intake(delivery(order));
    expect(deferred).toMatchObject({ kind: 'defer', reason: expect.stringContaining('did not finish (it may have been made)') });
    // Two seconds, and as much again at random, so that deferred jobs do not all come back at once.
    const until = (deferred as { until: number }).until;
    expect(until).toBeGreaterThanOrEqual(T0 + 2_000);
    expect(until).toBeLessThan(T0 + 4_000);
    expect(engine.queues.jobIds()).toEqual([]);
    expect(await intake(delivery(order))).toEqual({ kind: 'complete' });
    const { cases } = await engine.store.listCases({ limit: 10 });
    expect(cases).toHaveLength(1);
    expect(engine.queues.jobIds()).toEqual([`${cases[0]?.id}.reserve`, `${cases[0]?.id}.charge`]);
  });
});

describe('resultsProcessor', () => {
  const completed = (stepId: string, output: unknown): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at: T0 + 10, startedAt: T0 + 5, output });

  it('applies a report to its case once, counting the repeat as a duplicate', async () => {
    const engine = await orderEngine();
    const results = resultsProcessor({ ...engine, logger });
    const { record } = await engine.cases.start(order);
    const report = { caseId: record.id, event: completed('reserve', { id: 'r-1' }) };
    expect(await results(delivery(report))).toEqual({ kind: 'complete' });
    expect(await results(delivery(report))).toEqual({ kind: 'complete' });
    expect(await engine.store.getCase(record.id)).toMatchObject({ revision: 1, steps: { reserve: { status: 'completed', output: { id: 'r-1' } } } });
    expect(await counted(engine.metrics.transitions, { outcome: 'duplicate' })).toBe(1);
  });

  it('drops a report for a case that does not exist, and fails one that is not a report', async () => {
    const engine = await orderEngine();
    const results = resultsProcessor({ ...engine, logger });
    expect(await results(delivery({ caseId: '01a00000-0000-7000-8000-0000000fffff', event: completed('reserve', {}) }))).toEqual({ kind: 'complete' });
    expect(await results(delivery({ caseId: 'x', event: { type: 'nonsense' } }))).toMatchObject({ kind: 'fail' });
  });

  it('defers a report whose next steps could not be enqueued; its redelivery enqueues them without applying it again', async () => {
    const engine = await orderEngine();
    const results = resultsProcessor({ ...engine, logger });
    const { record } = await engine.cases.start(order);
    await results(delivery({ caseId: record.id, event: completed('reserve', { id: 'r-1' }) }));
    const charge = { caseId: record.id, event: completed('charge', { receipt: 'c-1' }) };
    engine.queues.failNextEnqueue(new Error('redis unreachable'));
    expect(await results(delivery(charge))).toMatchObject({ kind: 'defer' });
    expect(engine.queues.job(`${record.id}.ship`)).toBeUndefined();
    expect(await results(delivery(charge))).toEqual({ kind: 'complete' });
    expect(engine.queues.job(`${record.id}.ship`)).toMatchObject({ input: { reservation: 'r-1' } });
    expect((await engine.store.getCase(record.id))?.revision).toBe(2);
  });
});

describe('enforceDeadlines', () => {
  it('fails an open case once its deadline has passed, and only then; two schedulers at once end it once', async () => {
    const engine = memoryEngine({ now: T0 });
    await engine.workflows.apply({ name: 'brief', deadline: '1m', steps: [{ id: 'a', task: 't' }] });
    const { record } = await engine.cases.start({ workflow: 'brief' });
    const other = engine.peer();
    engine.clock.time = T0 + 60_000 - 1;
    expect(await enforceDeadlines(engine)).toBe(0);
    engine.clock.time = T0 + 60_000;
    const counts = await Promise.all([enforceDeadlines(engine), enforceDeadlines({ ...engine, advancer: other.advancer })]);
    expect(counts).toEqual([1, 1]);
    expect(await engine.store.getCase(record.id)).toMatchObject({ status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
    expect((await engine.store.readTrace(record.id)).filter((event) => event.type === 'case.failed')).toHaveLength(1);
    expect(engine.queues.cancelled.map((job) => job.jobId)).toContain(`${record.id}.a`);
    expect(await enforceDeadlines(engine)).toBe(0);
  });
});
