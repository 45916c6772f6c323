import { describe, expect, it } from 'vitest';
import { CASE_BUDGET_LIMITS, caseBytes, jsonBytes, utf8Length, type CaseBudget } from '../../lib/core/case-size.js';
import { LIMITS } from '../../lib/core/definition.js';
import type { CaseEvent, CaseState } from '../../lib/core/state.js';
import { createCase, transition } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { T0 } from './fixtures.js';

/** A small budget, so that a few outputs of a few KB reach it. */
const budget: CaseBudget = { maxCaseBytes: 20_000 };
const text = (bytes: number) => 'x'.repeat(bytes);

const fan = (failure: 'failFast' | 'collect', onFailure?: 'continue') =>
  compileWorkflow(
    {
      name: 'fan',
      steps: [
        { id: 'each', task: 'big', forEach: { items: '${input.items}', concurrency: 100, failure }, ...(onFailure ? { onFailure } : {}) },
        { id: 'after', task: 'small', after: ['each'] },
      ],
    },
    1,
  );

const signals = compileWorkflow(
  {
    name: 'sig',
    steps: [
      { id: 'first', task: 'slow' },
      { id: 'wait', after: ['first'], waitFor: { signals: ['late'] } },
    ],
  },
  1,
);

const item = (index: number, output: unknown, at = T0 + 10): CaseEvent => ({ type: 'stepCompleted', stepId: 'each', instance: index, attempt: 1, at, startedAt: at - 1, output });

/** Events applied one transition each, as the advancer commits them. */
function run(workflow: ReturnType<typeof fan>, state: CaseState, events: CaseEvent[], limit = budget) {
  let current = state;
  const refused: string[] = [];
  for (const event of events) {
    const result = transition(workflow, current, [event], T0 + 100, limit);
    current = result.state;
    refused.push(...(result.refused ?? []).map((refusal) => refusal.error.code));
  }
  return { state: current, refused };
}

describe('measuring a case', () => {
  it('counts UTF-8 bytes, as BSON stores them', () => {
    expect(utf8Length('abc')).toBe(3);
    expect(utf8Length('é')).toBe(2);
    expect(utf8Length('€')).toBe(3);
    expect(utf8Length('😀')).toBe(4);
    expect(jsonBytes({ a: 'é' })).toBe(JSON.stringify({ a: 'é' }).length + 1);
    expect(jsonBytes(undefined)).toBe(4);
  });

  it('is the size of the case as JSON, measured part by part', () => {
    const state = createCase(fan('collect'), { id: 'c', input: { items: [1, 2, 3] }, now: T0 }).state;
    const after = transition(fan('collect'), state, [item(0, { blob: text(1_000) })], T0 + 20).state;
    const whole = utf8Length(JSON.stringify(after));
    // Field by field the same JSON, give or take the separators between the parts.
    expect(Math.abs(caseBytes(after) - whole)).toBeLessThan(200);
    expect(caseBytes(after) - caseBytes(state)).toBeGreaterThan(1_000);
    // Measured again (remembered parts): the same answer.
    expect(caseBytes(after)).toBe(caseBytes(after));
  });

  it('measures a forEach step from its version before the transition exactly as from scratch', () => {
    const workflow = fan('collect');
    let state = createCase(workflow, { id: 'c', input: { items: [0, 1, 2, 3] }, now: T0 }).state;
    caseBytes(state);
    for (const [index, output] of [
      [2, text(300)],
      [0, { é: 'ü'.repeat(50) }],
      [3, null],
      [1, text(10)],
    ] as const) {
      const next = transition(workflow, state, [item(index, output)], T0 + 20, { maxCaseBytes: 1_000_000 }).state;
      expect(caseBytes(next, state)).toBe(caseBytes(structuredClone(next)));
      state = next;
    }
    expect(state.steps.each?.status).toBe('completed');
  });
});

describe('a step output that would take the case past its budget', () => {
  it('fails that item with CASE_TOO_LARGE, not retryable; failFast then fails the step and the case', () => {
    const workflow = fan('failFast');
    const state = createCase(workflow, { id: 'c', input: { items: [0, 1, 2, 3, 4] }, now: T0 }).state;
    const { state: after } = run(workflow, state, [item(0, text(6_000)), item(1, text(6_000)), item(2, text(6_000)), item(3, text(6_000))]);
    expect(after.steps.each?.instances?.['0']?.status).toBe('completed');
    expect(after.steps.each?.instances?.['1']?.status).toBe('completed');
    expect(after.steps.each?.instances?.['2']?.status).toBe('completed');
    expect(after.steps.each?.instances?.['3']).toMatchObject({ status: 'failed', error: { code: 'CASE_TOO_LARGE', retryable: false } });
    expect(after.steps.each?.instances?.['3']?.output).toBeUndefined();
    expect(after.status).toBe('failed');
    expect(after.error).toMatchObject({ code: 'STEP_FAILED', details: { cause: { code: 'ITEM_FAILED' } } });
    expect(caseBytes(after)).toBeLessThanOrEqual(budget.maxCaseBytes);
  });

  it('with onFailure continue, the case goes on without the output', () => {
    const workflow = fan('failFast', 'continue');
    const state = createCase(workflow, { id: 'c', input: { items: [0, 1] }, now: T0 }).state;
    const { state: after } = run(workflow, state, [item(0, text(5_000)), item(1, text(30_000))]);
    expect(after.steps.each?.status).toBe('failed');
    expect(after.steps.after?.status).toBe('scheduled');
    expect(after.status).toBe('running');
  });

  it('counts the forEach output that repeats every item: the item that completes the step fails instead', () => {
    // Each item fits; all of them and their repetition in the step's output do not.
    const workflow = fan('collect');
    const state = createCase(workflow, { id: 'c', input: { items: [0, 1, 2] }, now: T0 }).state;
    const { state: after } = run(workflow, state, [item(0, text(4_000)), item(1, text(4_000)), item(2, text(4_000))]);
    expect(after.steps.each?.instances?.['2']).toMatchObject({ status: 'failed', error: { code: 'CASE_TOO_LARGE' } });
    expect(after.steps.each).toMatchObject({ status: 'completed', output: { items: [text(4_000), text(4_000), null], failed: [{ index: 2 }] } });
    expect(caseBytes(after)).toBeLessThanOrEqual(budget.maxCaseBytes);
  });

  it('fails the case with CASE_TOO_LARGE when even the step failing does not bring it under', () => {
    // Collect: the failed item still ends the step, whose output repeats the two large ones.
    const workflow = fan('collect');
    const state = createCase(workflow, { id: 'c', input: { items: [0, 1, 2] }, now: T0 }).state;
    const { state: after } = run(workflow, state, [item(0, text(6_000)), item(1, text(6_000)), item(2, 'small')]);
    expect(after.status).toBe('failed');
    expect(after.error).toMatchObject({ code: 'CASE_TOO_LARGE', retryable: false });
    expect(after.error?.message).toMatch(/past its budget of 0\.02 MiB/);
  });

  it('always applies a cancel, a failure or a stuck mark, even to a case already over its budget', () => {
    const workflow = fan('collect');
    const state = createCase(workflow, { id: 'c', input: { items: [0, 1, 2] }, now: T0 }).state;
    const { state: big } = run(workflow, state, [item(0, text(12_000)), item(1, text(12_000))], { maxCaseBytes: 1_000_000 });
    expect(caseBytes(big)).toBeGreaterThan(budget.maxCaseBytes);
    const stuck = transition(workflow, big, [{ type: 'stuck', reason: 'why', at: T0 + 200 }], T0 + 200, budget);
    expect(stuck.state.stuck?.reason).toBe('why');
    const cancelled = transition(workflow, big, [{ type: 'cancel', reason: 'enough', at: T0 + 200 }], T0 + 200, budget);
    expect(cancelled.state.status).toBe('cancelled');
    const failed = transition(workflow, big, [{ type: 'stepFailed', stepId: 'each', instance: 2, attempt: 1, at: T0 + 200, error: { code: 'X', message: 'no' } }], T0 + 200, budget);
    expect(failed.state.steps.each?.instances?.['2']?.status).toBe('failed');
  });
});

describe('signals that would not fit', () => {
  const start = () => createCase(signals, { id: 's', input: {}, now: T0 }).state;
  const signal = (payload: unknown, at = T0 + 50): CaseEvent => ({ type: 'signal', name: 'late', payload, at });

  it('refuses one whose payload would take the case past its budget, records it, keeps the case as it was', () => {
    const { state, refused } = run(signals, start(), [signal(text(8_000)), signal(text(8_000)), signal(text(8_000))]);
    expect(refused).toEqual(['CASE_TOO_LARGE']);
    expect(state.signals).toHaveLength(2);
    const last = transition(signals, state, [signal(text(8_000))], T0 + 100, budget);
    expect(last.refused?.[0]?.error).toMatchObject({ code: 'CASE_TOO_LARGE' });
    expect(last.events).toEqual([expect.objectContaining({ type: 'signal.received', data: { name: 'late', refused: expect.objectContaining({ code: 'CASE_TOO_LARGE' }) } })]);
    // A refusal is no progress: the case's last progress time stands.
    expect(last.state.updatedAt).toBe(state.updatedAt);
    expect(last.state.signals).toBe(state.signals);
  });

  it('refuses the one past the count bound instead of dropping the oldest', () => {
    const events = Array.from({ length: LIMITS.maxBufferedSignals + 1 }, (_, index) => signal({ n: index }, T0 + index));
    const { state, refused } = run(signals, start(), events, { maxCaseBytes: 1_000_000 });
    expect(refused).toEqual(['SIGNAL_BUFFER_FULL']);
    expect(state.signals).toHaveLength(LIMITS.maxBufferedSignals);
    expect(state.signals?.[0]?.payload).toEqual({ n: 0 });
  });

  it('refuses one past the buffered bytes bound, whatever the case budget', () => {
    const half = text(CASE_BUDGET_LIMITS.maxBufferedSignalBytes / 2);
    const { refused } = run(signals, start(), [signal(half), signal(half)], { maxCaseBytes: 8 * 1024 * 1024 });
    expect(refused).toEqual(['SIGNAL_BUFFER_FULL']);
  });

  it('still hands a large signal to a step waiting for it when it fits (its output and the case output repeat it)', () => {
    const waiting = run(signals, start(), [{ type: 'stepCompleted', stepId: 'first', attempt: 1, at: T0 + 5, startedAt: T0 + 1, output: null }]).state;
    expect(waiting.steps.wait?.status).toBe('waiting');
    const { state, refused } = run(signals, waiting, [signal(text(8_000))]);
    expect(refused).toEqual([]);
    expect(state.status).toBe('completed');
  });
});
