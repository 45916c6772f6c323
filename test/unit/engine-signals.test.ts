import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../lib/core/definition.js';
import type { CaseEvent } from '../../lib/core/state.js';
import { memoryEngine } from '../helpers/memory-engine.js';
import { T0 } from './fixtures.js';

/** CaseService.signal, cancel and retry on the MemoryStore: what is taken, what is refused, and what a refusal leaves. */

const approval = {
  name: 'approval',
  steps: [
    { id: 'approve', waitFor: { signals: ['approve', 'reject'] } },
    { id: 'ship', task: 'shipping.ship', after: ['approve'], input: { by: '${steps.approve.output.payload.by}' } },
  ],
};

/** A signal no step waits for yet is kept for the step that will. */
const buffered = {
  name: 'buffered',
  steps: [
    { id: 'first', task: 'slow' },
    { id: 'wait', after: ['first'], waitFor: { signals: ['late'] } },
  ],
};

const completed = (stepId: string, output: unknown, at = T0 + 10): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at, startedAt: at - 5, output });
/** The compensation of a step reported done. */
const undone = (stepId: string, at: number): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at, startedAt: at - 5, output: null, compensation: true });

async function engineWith(...definitions: object[]) {
  const engine = memoryEngine({ now: T0 });
  for (const definition of definitions) await engine.workflows.apply(definition);
  return engine;
}

describe('CaseService.signal', () => {
  it('hands the signal to the step waiting for it, which completes, and the case moves on', async () => {
    const { cases, queues } = await engineWith(approval);
    const { record } = await cases.start({ workflow: 'approval' });
    expect(queues.jobIds()).toEqual([]);
    const after = await cases.signal(record.id, 'approve', { by: 'ana' });
    expect(after).toMatchObject({ revision: 1, steps: { approve: { status: 'completed', output: { signal: 'approve', payload: { by: 'ana' } } }, ship: { status: 'scheduled' } } });
    expect(queues.job(`${record.id}.ship`)).toMatchObject({ input: { by: 'ana' } });
    // The step took its signal: another one is no longer accepted, and the case is left as it was.
    await expect(cases.signal(record.id, 'reject', null)).rejects.toMatchObject({ code: 'SIGNAL_NOT_ACCEPTED', details: { accepted: [] } });
    expect((await cases.get(record.id)).revision).toBe(1);
  });

  it('refuses a signal no step waits for, naming those it accepts, and writes nothing', async () => {
    const { cases, store } = await engineWith(approval);
    const { record } = await cases.start({ workflow: 'approval' });
    await expect(cases.signal(record.id, 'approved', {})).rejects.toMatchObject({ code: 'SIGNAL_NOT_ACCEPTED', details: { accepted: ['approve', 'reject'] } });
    expect((await store.getCase(record.id))?.revision).toBe(0);
    expect((await store.readTrace(record.id)).map((event) => event.type)).not.toContain('signal.received');
  });

  it('keeps a signal for a step not yet waiting, and gives it to the step when it starts waiting', async () => {
    const { cases, advancer } = await engineWith(buffered);
    const { record } = await cases.start({ workflow: 'buffered' });
    expect((await cases.signal(record.id, 'late', { n: 1 })).signals).toEqual([expect.objectContaining({ name: 'late', payload: { n: 1 } })]);
    expect(await advancer.apply(record.id, completed('first', null))).toBe('applied');
    expect(await cases.get(record.id)).toMatchObject({ status: 'completed', steps: { wait: { status: 'completed', output: { signal: 'late', payload: { n: 1 } } } } });
  });

  it('refuses a signal past the buffer before writing anything', async () => {
    const { cases, store } = await engineWith(buffered);
    const { record } = await cases.start({ workflow: 'buffered' });
    for (let n = 0; n < LIMITS.maxBufferedSignals; n++) await cases.signal(record.id, 'late', { n });
    const full = await store.getCase(record.id);
    expect(full?.signals).toHaveLength(LIMITS.maxBufferedSignals);
    await expect(cases.signal(record.id, 'late', { n: 'one too many' })).rejects.toMatchObject({ code: 'SIGNAL_BUFFER_FULL' });
    expect((await store.getCase(record.id))?.revision).toBe(full?.revision);
  });

  it('rejects, to its sender only, a signal that a batch of the mailbox refuses; the others of the batch are applied', async () => {
    const { cases, advancer, store } = await engineWith(buffered);
    const { record } = await cases.start({ workflow: 'buffered' });
    for (let n = 0; n < LIMITS.maxBufferedSignals - 2; n++) await cases.signal(record.id, 'late', { n });
    const signal = (n: string): CaseEvent => ({ type: 'signal', name: 'late', payload: { n }, at: T0 + 20 });
    // The first goes alone; the two that arrive while it is applied go together, and only one of them fits.
    const outcomes = await Promise.allSettled([advancer.apply(record.id, signal('a')), advancer.apply(record.id, signal('b')), advancer.apply(record.id, signal('c'))]);
    expect(outcomes.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : (outcome.reason as { code: string }).code))).toEqual(['applied', 'applied', 'SIGNAL_BUFFER_FULL']);
    const after = await store.getCase(record.id);
    expect(after?.signals).toHaveLength(LIMITS.maxBufferedSignals);
    expect(after?.signals?.at(-1)?.payload).toEqual({ n: 'b' });
    // The refusal is on the record, in the same revision as the signal that fitted.
    const last = (await store.readTrace(record.id)).filter((event) => event.type === 'signal.received').slice(-2);
    expect(last.map((event) => event.data)).toEqual([{ name: 'late' }, { name: 'late', refused: expect.objectContaining({ code: 'SIGNAL_BUFFER_FULL' }) }]);
  });
});

describe('a signal wait with a timeout', () => {
  const timed = { name: 'timed', steps: [{ id: 'approve', waitFor: { signals: ['approve'], timeout: '1h' } }] };

  it('schedules its timer at the start; the timer firing first completes the step timed out, and a late signal is refused', async () => {
    const { cases, advancer, queues } = await engineWith(timed);
    const { record } = await cases.start({ workflow: 'timed' });
    const [timer] = [...queues.timers.values()];
    expect(timer).toMatchObject({ caseId: record.id, at: T0 + 3_600_000, event: { type: 'timerFired', stepId: 'approve', kind: 'signalTimeout' } });
    expect(await advancer.apply(record.id, timer?.event as CaseEvent)).toBe('applied');
    expect(await cases.get(record.id)).toMatchObject({ status: 'completed', steps: { approve: { output: { signal: null, timedOut: true } } } });
    await expect(cases.signal(record.id, 'approve', {})).rejects.toMatchObject({ code: 'CASE_STATE_CONFLICT' });
  });

  it('lets a timer that fires after the signal was taken change nothing', async () => {
    const { cases, advancer, queues, store } = await engineWith(timed);
    const { record } = await cases.start({ workflow: 'timed' });
    await cases.signal(record.id, 'approve', { ok: true });
    const [timer] = [...queues.timers.values()];
    expect(await advancer.apply(record.id, timer?.event as CaseEvent)).toBe('duplicate');
    expect(await store.getCase(record.id)).toMatchObject({ revision: 1, steps: { approve: { output: { signal: 'approve', payload: { ok: true } } } } });
  });
});

describe('CaseService.cancel and retry with compensations', () => {
  const booking = {
    name: 'booking',
    steps: [
      { id: 'hold', task: 'rooms.hold', compensate: { task: 'rooms.release', input: { hold: '${steps.hold.output.id}' } } },
      { id: 'pay', task: 'payments.charge', after: ['hold'] },
    ],
  };

  it('cancels with compensation: the completed step is undone first, then the case ends cancelled', async () => {
    const { cases, advancer, queues } = await engineWith(booking);
    const { record } = await cases.start({ workflow: 'booking' });
    await advancer.apply(record.id, completed('hold', { id: 'h-7' }));
    const cancelling = await cases.cancel(record.id, { reason: 'guest left', compensate: true });
    expect(cancelling.status).not.toBe('cancelled');
    expect(queues.cancelled.map((job) => job.jobId)).toEqual([`${record.id}.pay`]);
    const undo = [...queues.steps.values()].find((item) => item.job.compensation === true);
    expect(undo?.job).toMatchObject({ stepId: 'hold', task: 'rooms.release', input: { hold: 'h-7' } });
    expect(await advancer.apply(record.id, undone('hold', T0 + 30))).toBe('applied');
    expect(await cases.get(record.id)).toMatchObject({ status: 'cancelled', steps: { hold: { compensation: { status: 'completed' } } } });
  });

  it('refuses to retry a failed case whose completed steps were compensated', async () => {
    const [hold, pay] = booking.steps;
    const { cases, advancer } = await engineWith({ name: 'undoing', steps: [hold, { ...pay, onFailure: 'compensate' }] });
    const { record } = await cases.start({ workflow: 'undoing' });
    await advancer.apply(record.id, completed('hold', { id: 'h-7' }));
    await advancer.apply(record.id, { type: 'stepFailed', stepId: 'pay', attempt: 1, at: T0 + 20, error: { code: 'DECLINED', message: 'declined', retryable: false } });
    await advancer.apply(record.id, undone('hold', T0 + 30));
    expect((await cases.get(record.id)).status).toBe('failed');
    await expect(cases.retry(record.id)).rejects.toMatchObject({ code: 'CASE_STATE_CONFLICT', message: expect.stringContaining('compensated') });
  });
});

describe('CaseService.startChild', () => {
  it("gives the child the parent's starter and request id, and its place under the parent", async () => {
    const { cases, store } = await engineWith({ name: 'leaf', steps: [{ id: 'a', task: 't' }] }, { name: 'root', steps: [{ id: 'kid', workflow: { name: 'leaf' } }] });
    const { record: parent } = await cases.start({ workflow: 'root' }, { startedBy: 'keyA00000001', requestId: 'req-42' });
    const [child] = (await store.listCases({ workflow: 'leaf', limit: 10 })).cases;
    expect(await store.getCase(child?.id ?? '')).toMatchObject({ startedBy: 'keyA00000001', requestId: 'req-42', parent: { caseId: parent.id, stepId: 'kid', run: 0 }, depth: 1 });
  });
});
