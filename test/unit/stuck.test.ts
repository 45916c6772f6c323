import { describe, expect, it } from 'vitest';
import type { CaseState } from '../../lib/core/state.js';
import { stuckReason, type ObservedJob } from '../../lib/core/stuck.js';
import { outstandingJobs, transition } from '../../lib/core/transition.js';
import { order, startedOrder, T0 } from './fixtures.js';

const MINUTE = 60_000;
const LATER = T0 + 10 * MINUTE;

function observe(state: CaseState, overrides: Partial<ObservedJob> = {}): ObservedJob[] {
  return outstandingJobs(order, state).map((command) => ({ queue: command.queue, job: command.job, state: 'waiting', enqueuedAt: T0, attemptsMade: 0, ...overrides }));
}

const inputs = (state: CaseState, jobs: ObservedJob[], now = LATER) => ({ state, jobs, servedQueues: new Set(['default']), now, stuckAfterMs: 5 * MINUTE });

describe('stuckReason', () => {
  it('says nothing while the case moved recently', () => {
    const state = startedOrder();
    expect(stuckReason(inputs(state, observe(state), T0 + MINUTE))).toBeUndefined();
  });

  it('names the waiting step and whether any live worker takes its queue', () => {
    const state = startedOrder();
    expect(stuckReason(inputs(state, observe(state)))).toBe('step "reserve" has waited on queue "default" since 2026-11-22T12:00:00.000Z; its workers are busy with other jobs');
    expect(stuckReason({ ...inputs(state, observe(state)), servedQueues: new Set() })).toMatch(/no live worker takes that queue$/);
  });

  it('names a step that runs without an answer, with its attempt', () => {
    const state = startedOrder();
    expect(stuckReason(inputs(state, observe(state, { state: 'active', processedAt: T0 + 1_000, attemptsMade: 1 })))).toBe(
      'step "reserve" has been running since 2026-11-22T12:00:01.000Z (attempt 2) without an answer',
    );
  });

  it('gives a job taken or queued lately its time, however long the case has not moved', () => {
    const state = startedOrder();
    // The case last moved ten minutes ago; its job was handed to a worker a second ago (after an outage).
    expect(stuckReason(inputs(state, observe(state, { state: 'active', processedAt: LATER - 1_000 })))).toBeUndefined();
    expect(stuckReason(inputs(state, observe(state, { state: 'waiting', enqueuedAt: LATER - 1_000 })))).toBeUndefined();
    expect(stuckReason(inputs(state, observe(state, { state: 'active', processedAt: LATER - 6 * MINUTE })))).toMatch(/has been running since/);
  });

  it('waits for a delayed job that is not due yet, and calls an overdue one stuck', () => {
    const state = startedOrder();
    expect(stuckReason(inputs(state, observe(state, { state: 'delayed', dueAt: LATER + MINUTE })))).toBeUndefined();
    expect(stuckReason(inputs(state, observe(state, { state: 'delayed', dueAt: T0 + MINUTE })))).toMatch(/was delayed until 2026-11-22T12:01:00.000Z/);
  });

  it('gives a job the reconciler just restored or replaced its chance', () => {
    const state = startedOrder();
    for (const ended of ['missing', 'completed', 'failed'] as const) expect(stuckReason(inputs(state, observe(state, { state: ended })))).toBeUndefined();
  });

  it('does not call a case waiting for a signal stuck, but does a timer that never fired', () => {
    const waiting: CaseState = { ...startedOrder(), status: 'waiting', steps: { decide: { status: 'waiting', attempts: 0, attemptsDone: 0, waitingFor: { signals: ['approved'] } } } };
    expect(stuckReason(inputs(waiting, []))).toBeUndefined();
    const sleeping: CaseState = { ...waiting, steps: { decide: { status: 'waiting', attempts: 0, attemptsDone: 0, waitingFor: { until: T0 } } } };
    expect(stuckReason(inputs(sleeping, []))).toBe('the timer of step "decide" was due at 2026-11-22T12:00:00.000Z and has not fired');
  });

  it('calls an open case with nothing under way and nothing to wait for stuck', () => {
    const state = { ...startedOrder(), steps: {} };
    expect(stuckReason(inputs(state, []))).toBe('no step is scheduled, running or waiting: nothing can move the case on');
  });
});

describe('the stuck event', () => {
  it('records the reason once, keeps the last progress time, and any progress clears it', () => {
    const state = startedOrder();
    const marked = transition(order, state, [{ type: 'stuck', reason: 'r1', at: LATER }], LATER);
    expect(marked.state.stuck).toEqual({ reason: 'r1', since: LATER });
    expect(marked.state.updatedAt).toBe(state.updatedAt);
    expect(marked.events.map((event) => [event.type, event.data])).toEqual([['case.stuck', { reason: 'r1' }]]);
    expect(transition(order, marked.state, [{ type: 'stuck', reason: 'r1', at: LATER + 1 }], LATER + 1).events).toEqual([]);
    // A new reason keeps the time the case was first found stuck.
    expect(transition(order, marked.state, [{ type: 'stuck', reason: 'r2', at: LATER + 1 }], LATER + 1).state.stuck).toEqual({ reason: 'r2', since: LATER });

    const moved = transition(order, marked.state, [{ type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: LATER + 5, startedAt: LATER, output: { id: 'r' } }], LATER + 5);
    expect(moved.state.stuck).toBeUndefined();
    expect(moved.state.updatedAt).toBe(LATER + 5);
  });
});
