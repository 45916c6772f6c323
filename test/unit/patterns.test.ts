import { describe, expect, it } from 'vitest';
import type { CaseEvent, CaseState, Command, Transition } from '../../lib/core/state.js';
import { createCase, outstandingWork, transition } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { T0 } from './fixtures.js';

/**
 * The control-flow patterns of the language, rule by rule on the pure core (YAWL numbers in the
 * names): choices and merges, multiple instances, loops, signals, timers, sub-workflows,
 * cancellation, failure policies and sagas, retry.
 */

type Definition = Parameters<typeof compileWorkflow>[0];

/** A little driver: a case, the events applied to it so far, and what each step of it looks like. */
function scenario(definition: Definition, input: Record<string, unknown> = {}) {
  const workflow = compileWorkflow(definition, 1);
  let last: Transition = createCase(workflow, { id: 'c', input, now: T0 });
  let state: CaseState = last.state;
  let now = T0;
  const all: Transition[] = [last];
  return {
    workflow,
    get state() {
      return state;
    },
    get last() {
      return last;
    },
    statuses() {
      return Object.fromEntries(Object.entries(state.steps).map(([id, step]) => [id, step.status]));
    },
    send(...events: CaseEvent[]) {
      now += 10;
      last = transition(workflow, state, events, now);
      state = last.state;
      all.push(last);
      return last;
    },
    done(stepId: string, output: unknown = null, extra: Partial<CaseEvent> = {}) {
      return this.send({ type: 'stepCompleted', stepId, attempt: 1, at: now + 5, startedAt: now + 1, output, ...extra } as CaseEvent);
    },
    fail(stepId: string, extra: Partial<CaseEvent> = {}) {
      return this.send({ type: 'stepFailed', stepId, attempt: 1, at: now + 5, error: { code: 'BOOM', message: 'it broke', retryable: false }, ...extra } as CaseEvent);
    },
    commands(type: Command['type']) {
      return all.flatMap((result) => result.commands).filter((command) => command.type === type);
    },
    traceTypes(stepId?: string) {
      return all
        .flatMap((result) => result.events)
        .filter((event) => stepId === undefined || event.stepId === stepId)
        .map((event) => event.type);
    },
  };
}

const task = (id: string, extra: Record<string, unknown> = {}) => ({ id, task: `t.${id}`, ...extra });

describe('exclusive choice and simple merge (WCP4, WCP5)', () => {
  const definition = {
    name: 'choice',
    steps: [
      task('check'),
      task('big', { after: ['check'], when: 'steps.check.output.amount > 100' }),
      task('small', { after: ['check'], when: 'steps.check.output.amount <= 100' }),
      task('ship', { after: ['big', 'small'] }),
    ],
  };

  it('takes the branch whose condition holds and skips the other', () => {
    const run = scenario(definition);
    run.done('check', { amount: 250 });
    expect(run.statuses()).toMatchObject({ big: 'scheduled', small: 'skipped', ship: 'pending' });
    expect(run.last.events.find((event) => event.type === 'step.skipped')?.data).toEqual({ reason: 'condition is false: steps.check.output.amount <= 100' });
  });

  it('merges: the step after the branches runs once, after the branch taken', () => {
    const run = scenario(definition);
    run.done('check', { amount: 50 });
    run.done('small', 'ok');
    expect(run.statuses()).toMatchObject({ big: 'skipped', small: 'completed', ship: 'scheduled' });
    run.done('ship');
    expect(run.state.status).toBe('completed');
  });
});

describe('multi-choice and synchronizing merge (WCP6, WCP7)', () => {
  const definition = {
    name: 'multi',
    steps: [
      task('email', { when: 'input.notify.exists(n, n == "email")' }),
      task('sms', { when: 'input.notify.exists(n, n == "sms")' }),
      task('push', { when: 'input.notify.exists(n, n == "push")' }),
      task('log', { after: ['email', 'sms', 'push'] }),
    ],
  };

  it('starts every branch whose condition holds and waits only for those', () => {
    const run = scenario(definition, { notify: ['email', 'push'] });
    expect(run.statuses()).toEqual({ email: 'scheduled', sms: 'skipped', push: 'scheduled', log: 'pending' });
    run.done('email');
    expect(run.statuses().log).toBe('pending');
    run.done('push');
    expect(run.statuses().log).toBe('scheduled');
  });

  it('skips a step when every branch before it was skipped (dead-path elimination)', () => {
    const run = scenario(definition, { notify: [] });
    expect(run.statuses()).toEqual({ email: 'skipped', sms: 'skipped', push: 'skipped', log: 'skipped' });
    expect(run.state.status).toBe('completed');
  });

  it('fails a step whose condition cannot be evaluated', () => {
    const run = scenario(definition, { notify: 'email' });
    expect(run.state.status).toBe('failed');
    expect(run.state.steps.email?.error).toMatchObject({ code: 'CONDITION_FAILED' });
  });
});

describe('multiple instances (WCP14): forEach', () => {
  const definition = (failure: 'failFast' | 'collect' = 'failFast') => ({
    name: 'each',
    steps: [
      task('pack', { forEach: { items: '${input.lines}', concurrency: 2, failure }, input: { sku: '${item.sku}', position: '${index}' } }),
      task('ship', { after: ['pack'], input: { packed: '${steps.pack.output.items}' } }),
    ],
  });
  const lines = [{ sku: 'a' }, { sku: 'b' }, { sku: 'c' }];

  it('runs the task per item, no more at once than the concurrency, and fans the outputs in in item order', () => {
    const run = scenario(definition(), { lines });
    const jobs = run.commands('enqueueStep') as Array<Command & { type: 'enqueueStep' }>;
    expect(jobs.map((job) => [job.jobId, job.job.input, job.job.idempotencyKey])).toEqual([
      ['c.pack.i0', { sku: 'a', position: 0 }, 'c:pack:0'],
      ['c.pack.i1', { sku: 'b', position: 1 }, 'c:pack:1'],
    ]);
    run.done('pack', 'B', { instance: 1 });
    expect((run.last.commands[0] as Command & { type: 'enqueueStep' }).jobId).toBe('c.pack.i2');
    run.done('pack', 'C', { instance: 2 });
    expect(run.statuses().pack).toBe('running');
    run.done('pack', 'A', { instance: 0 });
    expect(run.state.steps.pack?.output).toEqual({ items: ['A', 'B', 'C'], failed: [] });
    expect((run.last.commands[0] as Command & { type: 'enqueueStep' }).job.input).toEqual({ packed: ['A', 'B', 'C'] });
  });

  it('runs a single item', () => {
    const run = scenario(definition(), { lines: [{ sku: 'only' }] });
    run.done('pack', 'X', { instance: 0 });
    expect(run.state.steps.pack?.output).toEqual({ items: ['X'], failed: [] });
  });

  it('completes at once for no items', () => {
    const run = scenario(definition(), { lines: [] });
    expect(run.state.steps.pack).toMatchObject({ status: 'completed', output: { items: [], failed: [] } });
  });

  it('fails fast: the first item that fails fails the step and stops the others', () => {
    const run = scenario(definition('failFast'), { lines });
    run.fail('pack', { instance: 0 });
    expect(run.state.steps.pack).toMatchObject({ status: 'failed', error: { code: 'ITEM_FAILED' } });
    expect(run.state.status).toBe('failed');
    expect(run.commands('cancelJobs')).toEqual([{ type: 'cancelJobs', jobs: [{ queue: 'default', jobId: 'c.pack.i1' }] }]);
  });

  it('collects failures when asked, and goes on', () => {
    const run = scenario(definition('collect'), { lines });
    run.fail('pack', { instance: 1 });
    run.done('pack', 'A', { instance: 0 });
    run.done('pack', 'C', { instance: 2 });
    expect(run.state.steps.pack?.output).toEqual({ items: ['A', null, 'C'], failed: [{ index: 1, error: expect.objectContaining({ code: 'BOOM' }) }] });
    expect(run.statuses().ship).toBe('scheduled');
  });

  it('fails a step whose items are not an array', () => {
    const run = scenario(definition(), { lines: 'abc' });
    expect(run.state.steps.pack?.error?.code).toBe('ITEMS_INVALID');
  });

  it('takes 1,000 items', () => {
    const items = Array.from({ length: 1_000 }, (_, sku) => ({ sku }));
    const run = scenario({ name: 'many', steps: [task('pack', { forEach: { items: '${input.items}', concurrency: 50 }, input: '${item.sku}' })] }, { items });
    expect(run.commands('enqueueStep')).toHaveLength(50);
    for (let index = 0; index < 1_000; index++) run.done('pack', index * 2, { instance: index });
    expect(run.commands('enqueueStep')).toHaveLength(1_000);
    expect((run.state.steps.pack?.output as { items: number[] }).items).toEqual(items.map((_, index) => index * 2));
    expect(run.state.status).toBe('completed');
  });
});

describe('structured loop (WCP21): repeat', () => {
  const definition = { name: 'poll', steps: [task('poll', { repeat: { while: '!output.ready', maxIterations: 5 } }), task('use', { after: ['poll'] })] };

  it('runs the task again while the condition holds, each iteration a job of its own', () => {
    const run = scenario(definition);
    run.done('poll', { ready: false }, { iteration: 1 });
    expect((run.last.commands[0] as Command & { type: 'enqueueStep' }).jobId).toBe('c.poll.n2');
    expect(run.state.steps.poll).toMatchObject({ status: 'scheduled', iteration: 2 });
    run.done('poll', { ready: true }, { iteration: 2 });
    expect(run.state.steps.poll).toMatchObject({ status: 'completed', output: { ready: true }, iteration: 2 });
    expect(run.statuses().use).toBe('scheduled');
    expect(run.traceTypes('poll').filter((type) => type === 'step.scheduled')).toHaveLength(2);
  });

  it('stops at maxIterations', () => {
    const run = scenario(definition);
    for (let iteration = 1; iteration <= 5; iteration++) run.done('poll', { ready: false }, { iteration });
    expect(run.state.steps.poll).toMatchObject({ status: 'completed', iteration: 5 });
    expect(run.last.events.find((event) => event.type === 'step.completed' && event.data.iterations === 5)?.data).toMatchObject({ stoppedAt: 'maxIterations' });
  });

  it('ignores a report about an earlier iteration', () => {
    const run = scenario(definition);
    run.done('poll', { ready: false }, { iteration: 1 });
    expect(run.done('poll', { ready: true }, { iteration: 1 }).events).toEqual([]);
  });
});

describe('deferred choice (WCP16): waiting for a signal, with a timeout', () => {
  const definition = {
    name: 'approval',
    steps: [
      { id: 'decide', waitFor: { signals: ['approve', 'reject'], timeout: '2d' } },
      task('ship', { after: ['decide'], when: 'steps.decide.output.signal == "approve"' }),
      task('refund', { after: ['decide'], when: 'steps.decide.output.signal != "approve"' }),
    ],
  };

  it('waits, shows the case waiting and what for, and sets a timer for the timeout', () => {
    const run = scenario(definition);
    expect(run.state.status).toBe('waiting');
    expect(run.state.steps.decide).toMatchObject({ status: 'waiting', waitingFor: { signals: ['approve', 'reject'], until: T0 + 2 * 86_400_000 } });
    expect(run.commands('scheduleTimer')).toEqual([expect.objectContaining({ jobId: 'c.decide.signalTimeout', at: T0 + 2 * 86_400_000, event: expect.objectContaining({ kind: 'signalTimeout' }) })]);
  });

  it('takes the branch the signal chose', () => {
    const run = scenario(definition);
    run.send({ type: 'signal', name: 'approve', payload: { by: 'ana' }, at: T0 + 5 });
    expect(run.state.steps.decide).toMatchObject({ status: 'completed', output: { signal: 'approve', payload: { by: 'ana' } } });
    expect(run.statuses()).toMatchObject({ ship: 'scheduled', refund: 'skipped' });
    expect(run.state.status).toBe('running');
    expect(run.traceTypes()).toContain('signal.received');
  });

  it('takes the other branch when the timeout fires first, and ignores a late signal', () => {
    const run = scenario(definition);
    run.send({ type: 'timerFired', stepId: 'decide', run: 0, kind: 'signalTimeout', at: T0 + 2 * 86_400_000 });
    expect(run.state.steps.decide?.output).toEqual({ signal: null, timedOut: true });
    expect(run.statuses()).toMatchObject({ ship: 'skipped', refund: 'scheduled' });
    run.send({ type: 'signal', name: 'approve', payload: null, at: T0 + 3 * 86_400_000 });
    expect(run.state.steps.decide?.output).toEqual({ signal: null, timedOut: true });
  });

  it('keeps a signal that arrives before the step waits for it', () => {
    const run = scenario({ name: 'early', steps: [task('prepare'), { id: 'wait', after: ['prepare'], waitFor: { signals: ['go'] } }] });
    run.send({ type: 'signal', name: 'go', payload: 42, at: T0 + 1 });
    expect(run.state.signals).toEqual([{ name: 'go', payload: 42, at: T0 + 1 }]);
    run.done('prepare');
    expect(run.state.steps.wait).toMatchObject({ status: 'completed', output: { signal: 'go', payload: 42 } });
    expect(run.state.signals).toEqual([]);
  });
});

describe('timers: sleep', () => {
  it('waits with a delayed timer and completes when it fires', () => {
    const run = scenario({ name: 'nap', steps: [{ id: 'nap', sleep: { for: '1h' } }, task('after', { after: ['nap'] })] });
    expect(run.state.steps.nap).toMatchObject({ status: 'waiting', waitingFor: { until: T0 + 3_600_000 } });
    expect(run.commands('scheduleTimer')).toEqual([expect.objectContaining({ jobId: 'c.nap.sleep', at: T0 + 3_600_000 })]);
    expect(outstandingWork(run.workflow, run.state)).toEqual([expect.objectContaining({ type: 'scheduleTimer', jobId: 'c.nap.sleep' })]);
    run.send({ type: 'timerFired', stepId: 'nap', run: 0, kind: 'sleep', at: T0 + 3_600_000 });
    expect(run.statuses()).toEqual({ nap: 'completed', after: 'scheduled' });
  });

  it('sleeps until a time from the data, and not at all when it has passed', () => {
    const definition = { name: 'until', steps: [{ id: 'wait', sleep: { until: '${input.at}' } }] };
    expect(scenario(definition, { at: new Date(T0 + 60_000).toISOString() }).state.steps.wait?.waitingFor).toEqual({ until: T0 + 60_000 });
    expect(scenario(definition, { at: new Date(T0 - 1).toISOString() }).state.status).toBe('completed');
    expect(scenario(definition, { at: 'soon' }).state.steps.wait?.error?.code).toBe('SLEEP_UNTIL_INVALID');
  });
});

describe('sub-workflows', () => {
  const definition = { name: 'parent', steps: [{ id: 'child', workflow: { name: 'kid', version: 2 }, input: { n: '${input.n}' } }, task('after', { after: ['child'], input: '${steps.child.output.total}' })] };

  it('starts the child case with an idempotency key and takes its output', () => {
    const run = scenario(definition, { n: 3 });
    expect(run.commands('startChild')).toEqual([
      {
        type: 'startChild',
        parent: { caseId: 'c', stepId: 'child', run: 0 },
        depth: 1,
        idempotencyKey: 'child:c:child:0',
        request: { workflow: 'kid', version: 2, input: { n: 3 } },
      },
    ]);
    run.send({ type: 'childStarted', stepId: 'child', run: 0, childId: 'k1', at: T0 + 1 });
    expect(run.state.steps.child?.childCaseId).toBe('k1');
    run.send({ type: 'childFinished', stepId: 'child', run: 0, childId: 'k1', status: 'completed', output: { total: 9 }, at: T0 + 2 });
    expect((run.last.commands[0] as Command & { type: 'enqueueStep' }).job.input).toBe(9);
  });

  it('fails the step when the child fails', () => {
    const run = scenario(definition, { n: 3 });
    run.send({ type: 'childFinished', stepId: 'child', run: 0, childId: 'k1', status: 'failed', error: { code: 'STEP_FAILED', message: 'x' }, at: T0 + 2 });
    expect(run.state.steps.child?.error).toMatchObject({ code: 'CHILD_FAILED', details: { childId: 'k1' } });
  });

  it('tells the parent when a child case ends', () => {
    const workflow = compileWorkflow({ name: 'kid', steps: [task('a')] }, 1);
    const child = createCase(workflow, { id: 'k1', input: {}, now: T0, parent: { caseId: 'c', stepId: 'child', run: 0 }, depth: 1 });
    const ended = transition(workflow, child.state, [{ type: 'stepCompleted', stepId: 'a', attempt: 1, at: T0 + 2, startedAt: T0 + 1, output: 5 }], T0 + 3);
    expect(ended.commands).toEqual([{ type: 'notifyParent', caseId: 'c', event: { type: 'childFinished', stepId: 'child', run: 0, childId: 'k1', status: 'completed', output: { a: 5 }, at: T0 + 3 } }]);
  });
});

describe('cancellation (WCP19/20)', () => {
  it('stops what runs, cancels child cases, and ends the case cancelled', () => {
    const run = scenario({ name: 'x', steps: [task('a'), { id: 'sub', workflow: { name: 'kid' } }, task('b', { after: ['a'] })] });
    run.send({ type: 'cancel', reason: 'customer changed their mind', compensate: false, at: T0 + 5 });
    expect(run.state).toMatchObject({ status: 'cancelled', error: { code: 'CANCELLED', message: 'customer changed their mind' } });
    expect(run.statuses()).toEqual({ a: 'cancelled', sub: 'cancelled', b: 'pending' });
    expect(run.commands('cancelJobs')).toEqual([{ type: 'cancelJobs', jobs: [{ queue: 'default', jobId: 'c.a' }] }]);
    expect(run.commands('cancelChildren')).toEqual([{ type: 'cancelChildren', caseId: 'c', reason: 'customer changed their mind' }]);
    expect(run.send({ type: 'cancel', reason: 'again', compensate: false, at: T0 + 6 }).events).toEqual([]);
  });
});

describe('failure policies and sagas', () => {
  const saga = (policy: 'fail' | 'continue' | 'compensate') => ({
    name: 'trip',
    steps: [
      task('flight', { compensate: { task: 'flight.cancel', input: { booking: '${steps.flight.output.id}' } } }),
      task('hotel', { after: ['flight'], compensate: { task: 'hotel.cancel', input: { booking: '${steps.hotel.output.id}' } } }),
      task('car', { after: ['hotel'], onFailure: policy }),
      task('mail', { after: ['car'] }),
    ],
  });

  it('continue: the failed step counts as done and the case goes on', () => {
    const run = scenario(saga('continue'));
    run.done('flight', { id: 'F1' });
    run.done('hotel', { id: 'H1' });
    run.fail('car');
    expect(run.statuses()).toMatchObject({ car: 'failed', mail: 'scheduled' });
    run.done('mail');
    expect(run.state.status).toBe('completed');
  });

  it('compensate: undoes completed steps one at a time, latest first, then fails the case', () => {
    const run = scenario(saga('compensate'));
    run.done('flight', { id: 'F1' });
    run.done('hotel', { id: 'H1' });
    run.fail('car');
    expect(run.traceTypes()).toContain('case.compensating');
    const first = run.last.commands.at(-1) as Command & { type: 'enqueueStep' };
    expect([first.jobId, first.job.task, first.job.input, first.job.compensation]).toEqual(['c.hotel.undo', 'hotel.cancel', { booking: 'H1' }, true]);
    run.done('hotel', null, { compensation: true });
    expect(run.statuses().hotel).toBe('compensated');
    const second = run.last.commands.at(-1) as Command & { type: 'enqueueStep' };
    expect([second.jobId, second.job.input]).toEqual(['c.flight.undo', { booking: 'F1' }]);
    run.done('flight', null, { compensation: true });
    expect(run.state).toMatchObject({ status: 'failed', error: { code: 'STEP_FAILED', stepId: 'car', details: { compensated: ['hotel', 'flight'], compensationFailed: [] } } });
  });

  it('cancel follows the workflow onCancel when the request does not say', () => {
    const run = scenario({ ...saga('fail'), onCancel: 'compensate' as const });
    run.done('flight', { id: 'F1' });
    run.send({ type: 'cancel', reason: 'stop', at: T0 + 50 });
    expect(run.traceTypes()).toContain('case.compensating');
    const plain = scenario(saga('fail'));
    plain.done('flight', { id: 'F1' });
    plain.send({ type: 'cancel', reason: 'stop', at: T0 + 50 });
    expect(plain.state.status).toBe('cancelled');
  });

  it('cancel with compensate: undoes, then ends cancelled', () => {
    const run = scenario(saga('fail'));
    run.done('flight', { id: 'F1' });
    run.send({ type: 'cancel', reason: 'stop', compensate: true, at: T0 + 50 });
    expect(run.statuses()).toMatchObject({ flight: 'completed', hotel: 'cancelled' });
    run.done('flight', null, { compensation: true });
    expect(run.state.status).toBe('cancelled');
    expect(run.statuses().flight).toBe('compensated');
  });
});

describe('retrying a failed case', () => {
  it('runs the failed steps again with new job ids and the same idempotency keys', () => {
    const run = scenario({ name: 'r', steps: [task('a'), task('b', { after: ['a'] })] });
    run.done('a', 1);
    run.fail('b');
    expect(run.state.status).toBe('failed');
    run.send({ type: 'retry', at: T0 + 100 });
    expect(run.state.status).toBe('running');
    expect(run.state.error).toBeUndefined();
    const job = run.last.commands[0] as Command & { type: 'enqueueStep' };
    expect([job.jobId, job.job.idempotencyKey, job.job.run]).toEqual(['c.b.r1', 'c:b', 1]);
    // Reports from the first run no longer count; the new run's do.
    expect(run.done('b', 'old').events).toEqual([]);
    run.done('b', 2, { run: 1 });
    expect(run.state).toMatchObject({ status: 'completed', output: { b: 2 } });
    expect(run.traceTypes()).toContain('case.retried');
  });

  it('is refused for a case that is not failed', () => {
    const run = scenario({ name: 'r', steps: [task('a')] });
    expect(run.send({ type: 'retry', at: T0 }).events).toEqual([]);
  });
});
