import { describe, expect, it } from 'vitest';
import type { CaseEvent, CaseState } from '../../lib/core/state.js';
import { createCase, outstandingJobs, outstandingWork, transition } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { order, startedOrder, T0 } from './fixtures.js';

const error = { code: 'BOOM', message: 'it broke', retryable: true };

const completed = (stepId: string, output: unknown, attempt = 1, at = T0 + 100): CaseEvent => ({
  type: 'stepCompleted',
  stepId,
  attempt,
  at,
  startedAt: at - 10,
  output,
});

/** Applies events one at a time, as separate transitions, returning the last state. */
function run(state: CaseState, ...events: CaseEvent[]): CaseState {
  return events.reduce((current, event) => transition(order, current, [event], T0 + 1_000).state, state);
}

describe('createCase', () => {
  it('schedules the steps that wait for nothing and records the creation', () => {
    const { state, events, commands } = createCase(order, { id: 'case-1', input: { sku: 'book', amount: 25 }, now: T0 });
    expect(state.status).toBe('running');
    expect(state.revision).toBe(0);
    expect(state.deadlineAt).toBe(T0 + order.deadlineMs);
    expect(Object.fromEntries(Object.entries(state.steps).map(([id, step]) => [id, step.status]))).toEqual({
      reserve: 'scheduled',
      charge: 'scheduled',
      ship: 'pending',
    });
    expect(events.map((event) => [event.seq, event.type, event.stepId])).toEqual([
      [1, 'case.created', undefined],
      [2, 'step.scheduled', 'reserve'],
      [3, 'step.scheduled', 'charge'],
    ]);
    expect(state.seq).toBe(3);
    expect(commands).toEqual([
      expect.objectContaining({ type: 'enqueueStep', queue: 'default', jobId: 'case-1.reserve', job: expect.objectContaining({ input: { sku: 'book' } }) }),
      expect.objectContaining({ jobId: 'case-1.charge', job: expect.objectContaining({ input: { amount: 25 }, idempotencyKey: 'case-1:charge', maxAttempts: 2 }) }),
    ]);
  });
});

describe('transition', () => {
  it('marks a step running when its start is reported', () => {
    const result = transition(order, startedOrder(), [{ type: 'stepStarted', stepId: 'reserve', attempt: 1, at: T0 + 5, worker: 'w1' }], T0 + 6);
    expect(result.state.steps.reserve).toMatchObject({ status: 'running', attempts: 1, startedAt: T0 + 5 });
    expect(result.state.revision).toBe(1);
    expect(result.state.updatedAt).toBe(T0 + 6);
    expect(result.events).toEqual([{ seq: 4, type: 'step.started', stepId: 'reserve', at: T0 + 5, data: { attempt: 1, worker: 'w1' } }]);
  });

  it('waits at the join until every branch has completed (synchronization)', () => {
    const afterReserve = transition(order, startedOrder(), [completed('reserve', { id: 'r-1' })], T0 + 200);
    expect(afterReserve.state.steps.ship?.status).toBe('pending');
    expect(afterReserve.commands).toEqual([]);

    const afterCharge = transition(order, afterReserve.state, [completed('charge', { receipt: 'c-1' })], T0 + 300);
    expect(afterCharge.state.steps.ship?.status).toBe('scheduled');
    expect(afterCharge.commands).toEqual([expect.objectContaining({ jobId: 'case-1.ship', job: expect.objectContaining({ input: { reservation: 'r-1', note: 'receipt c-1' } }) })]);
  });

  it('reports a start it never saw when a completion arrives first', () => {
    const result = transition(order, startedOrder(), [completed('reserve', { id: 'r-1' }, 1, T0 + 50)], T0 + 60);
    expect(result.events.map((event) => [event.type, event.at])).toEqual([
      ['step.started', T0 + 40],
      ['step.completed', T0 + 50],
    ]);
    expect(result.state.steps.reserve).toMatchObject({ status: 'completed', attempts: 1, startedAt: T0 + 40, finishedAt: T0 + 50, output: { id: 'r-1' } });
  });

  it('completes the case with its output template once every step has completed', () => {
    const definition = compileWorkflow(
      {
        name: 'o',
        steps: [
          { id: 'a', task: 't' },
          { id: 'b', task: 't', after: ['a'] },
        ],
        output: { total: '${steps.b.output.n}', from: '${input.who}' },
      },
      1,
    );
    let state = createCase(definition, { id: 'c', input: { who: 'me' }, now: T0 }).state;
    state = transition(definition, state, [completed('a', { n: 1 })], T0 + 1).state;
    const result = transition(definition, state, [completed('b', { n: 2 }, 1, T0 + 200)], T0 + 201);
    expect(result.state).toMatchObject({ status: 'completed', output: { total: 2, from: 'me' }, finishedAt: T0 + 201 });
    expect(result.events.at(-1)).toMatchObject({ type: 'case.completed', data: { durationMs: 201 } });
  });

  it('makes the default output from the steps nothing waits for', () => {
    const state = run(startedOrder(), completed('reserve', { id: 'r' }), completed('charge', { receipt: 'c' }), completed('ship', { tracking: 'T1' }));
    expect(state.status).toBe('completed');
    expect(state.output).toEqual({ ship: { tracking: 'T1' } });
  });

  it('ignores a duplicate report: no new state, no events, no commands', () => {
    const once = transition(order, startedOrder(), [completed('reserve', { id: 'r-1' })], T0 + 200);
    const twice = transition(order, once.state, [completed('reserve', { id: 'r-2' })], T0 + 300);
    expect(twice.state).toBe(once.state);
    expect(twice.events).toEqual([]);
    expect(twice.commands).toEqual([]);
  });

  it('ignores a start report that arrives after its attempt ended', () => {
    const done = run(startedOrder(), completed('reserve', { id: 'r' }));
    const late = transition(order, done, [{ type: 'stepStarted', stepId: 'reserve', attempt: 1, at: T0 + 1 }], T0 + 500);
    expect(late.events).toEqual([]);
    expect(late.state).toBe(done);
  });

  it('records a retry and keeps the step scheduled for its next attempt', () => {
    const result = transition(order, startedOrder(), [{ type: 'stepRetrying', stepId: 'charge', attempt: 1, at: T0 + 20, startedAt: T0 + 10, error, retryAt: T0 + 1_020 }], T0 + 21);
    expect(result.state.steps.charge).toMatchObject({ status: 'scheduled', attempts: 1, attemptsDone: 1, error, nextAttemptAt: T0 + 1_020 });
    expect(result.events.map((event) => event.type)).toEqual(['step.started', 'step.retried']);
    expect(result.events[1]?.data).toMatchObject({ attempt: 1, error, retryAt: T0 + 1_020, durationMs: 10 });
    // A late start report for the failed attempt changes nothing; the next attempt's does.
    const late = transition(order, result.state, [{ type: 'stepStarted', stepId: 'charge', attempt: 1, at: T0 + 10 }], T0 + 30);
    expect(late.events).toEqual([]);
    const next = transition(order, result.state, [{ type: 'stepStarted', stepId: 'charge', attempt: 2, at: T0 + 1_030 }], T0 + 1_031);
    expect(next.state.steps.charge).toMatchObject({ status: 'running', attempts: 2, startedAt: T0 + 10 });
  });

  it('fails the case when a step fails for good, naming the step and the cause', () => {
    const result = transition(
      order,
      startedOrder(),
      [{ type: 'stepFailed', stepId: 'charge', attempt: 2, at: T0 + 50, startedAt: T0 + 40, error: { code: 'CARD_DECLINED', message: 'declined', retryable: false } }],
      T0 + 51,
    );
    expect(result.state.status).toBe('failed');
    expect(result.state.error).toMatchObject({ code: 'STEP_FAILED', stepId: 'charge', attempt: 2, message: 'step "charge" failed after 2 attempts: declined' });
    expect(result.state.steps.charge).toMatchObject({ status: 'failed', error: { code: 'CARD_DECLINED', stepId: 'charge', attempt: 2 } });
    // The other branch, still under way, is cancelled with the case: its job is stopped.
    expect(result.events.map((event) => [event.type, event.stepId])).toEqual([
      ['step.started', 'charge'],
      ['step.failed', 'charge'],
      ['step.cancelled', 'reserve'],
      ['case.failed', undefined],
    ]);
    expect(result.state.steps.reserve?.status).toBe('cancelled');
    expect(result.commands).toEqual([{ type: 'cancelJobs', jobs: [{ queue: 'default', jobId: 'case-1.reserve' }] }]);
  });

  it('ignores a branch that reports after its case failed and cancelled it', () => {
    const failed = run(startedOrder(), { type: 'stepFailed', stepId: 'charge', attempt: 1, at: T0 + 5, error });
    const late = transition(order, failed, [completed('reserve', { id: 'r' })], T0 + 600);
    expect(late.events).toEqual([]);
    expect(late.state.steps.reserve?.status).toBe('cancelled');
    expect(late.state.steps.ship?.status).toBe('pending');
  });

  it('defers a step for an open breaker without counting an attempt', () => {
    const result = transition(order, startedOrder(), [{ type: 'stepDeferred', stepId: 'charge', attempt: 1, at: T0 + 5, breaker: 'payments', until: T0 + 30_000 }], T0 + 6);
    expect(result.state.steps.charge).toMatchObject({ status: 'scheduled', attempts: 0, attemptsDone: 0, deferredBy: 'payments', nextAttemptAt: T0 + 30_000 });
    expect(result.events).toMatchObject([{ type: 'step.deferred', stepId: 'charge', data: { attempt: 1, breaker: 'payments', until: T0 + 30_000 } }]);
    // The same deferral reported twice is one event.
    expect(transition(order, result.state, [{ type: 'stepDeferred', stepId: 'charge', attempt: 1, at: T0 + 5, breaker: 'payments', until: T0 + 30_000 }], T0 + 7).events).toEqual([]);
    // When the attempt finally runs, the deferral marks are cleared.
    const ran = run(result.state, completed('charge', { receipt: 'c' }));
    expect(ran.steps.charge).not.toHaveProperty('deferredBy');
    expect(ran.steps.charge).toMatchObject({ status: 'completed', attempts: 1 });
  });

  it('puts breaker changes into the trace', () => {
    const result = transition(
      order,
      startedOrder(),
      [
        { type: 'breakerOpened', stepId: 'charge', at: T0 + 5, breaker: 'payments', until: T0 + 30_005 },
        { type: 'breakerClosed', stepId: 'charge', at: T0 + 40_000, breaker: 'payments' },
      ],
      T0 + 40_001,
    );
    expect(result.events.map((event) => [event.type, event.data.breaker])).toEqual([
      ['breaker.opened', 'payments'],
      ['breaker.closed', 'payments'],
    ]);
  });

  it('fails an open case at its deadline, once', () => {
    const result = transition(order, startedOrder(), [{ type: 'deadlineExceeded', at: T0 + order.deadlineMs }], T0 + order.deadlineMs);
    expect(result.state.status).toBe('failed');
    expect(result.state.error?.code).toBe('DEADLINE_EXCEEDED');
    expect(transition(order, result.state, [{ type: 'deadlineExceeded', at: T0 + order.deadlineMs + 1 }], T0).events).toEqual([]);
  });

  it('applies several events in one transition with consecutive seq numbers and one revision', () => {
    const result = transition(order, startedOrder(), [completed('reserve', { id: 'r' }), completed('charge', { receipt: 'c' })], T0 + 500);
    expect(result.state.revision).toBe(1);
    expect(result.events.map((event) => event.seq)).toEqual([4, 5, 6, 7, 8]);
    expect(result.events.map((event) => event.type)).toEqual(['step.started', 'step.completed', 'step.started', 'step.completed', 'step.scheduled']);
  });

  it('ignores reports about steps the workflow does not have', () => {
    expect(transition(order, startedOrder(), [completed('nope', {})], T0).events).toEqual([]);
  });
});

describe('outstandingJobs', () => {
  it('lists a job for every scheduled or running step of an open case', () => {
    const state = run(startedOrder(), { type: 'stepStarted', stepId: 'reserve', attempt: 1, at: T0 + 1 });
    expect(outstandingJobs(order, state).map((command) => command.jobId)).toEqual(['case-1.reserve', 'case-1.charge']);
  });

  it('lists nothing for a finished case', () => {
    const state = run(startedOrder(), { type: 'deadlineExceeded', at: T0 });
    expect(outstandingJobs(order, state)).toEqual([]);
  });
});

describe('outstandingWork of a finished case', () => {
  it('is nothing for a top-level case, and the notice to its parent for a child case', () => {
    const finished: CaseState = { ...startedOrder(), status: 'completed', finishedAt: T0 + 5, output: { x: 1 } };
    expect(outstandingJobs(order, finished)).toEqual([]);
    expect(outstandingWork(order, finished)).toEqual([]);
    const child: CaseState = { ...finished, parent: { caseId: 'parent-1', stepId: 'sub', run: 0 } };
    // Sent again when a duplicate report reaches the child: its first sending may have been lost.
    expect(outstandingWork(order, child)).toEqual([
      { type: 'notifyParent', caseId: 'parent-1', event: { type: 'childFinished', stepId: 'sub', run: 0, childId: 'case-1', status: 'completed', at: T0 + 5, output: { x: 1 } } },
    ]);
  });
});
