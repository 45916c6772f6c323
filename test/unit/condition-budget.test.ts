import { describe, expect, it } from 'vitest';
import { CONDITION_BUDGET } from '../../lib/core/condition-budget.js';
import { DefinitionInvalidError } from '../../lib/core/errors.js';
import { ConditionBudgetError, evaluateCondition, expressionProblem } from '../../lib/core/expressions.js';
import type { CaseEvent } from '../../lib/core/state.js';
import { createCase, transition } from '../../lib/core/transition.js';
import { compileWorkflow, validateDefinition } from '../../lib/core/validate.js';
import { T0 } from './fixtures.js';

/**
 * A condition's cost is bounded: nested comprehensions over a few hundred bytes of input used to
 * block the process for seconds (three `map`s over 200 numbers: 8 million iterations, about 7 s
 * here). Every evaluation is metered now, and one that runs out fails quickly with
 * CONDITION_BUDGET_EXCEEDED.
 */

const numbers = (length: number) => Array.from({ length }, (_, index) => index);
/** The attack of the issue: under 1 KB of input. */
const attackInput = { a: numbers(200) };
const ATTACK = 'size(input.a.map(x, input.a.map(y, input.a.map(z, x + y + z)))) > 0';

/** Evaluates and says how it ended and how long it took. */
function attempt(expression: string, input: unknown) {
  const started = performance.now();
  try {
    const result = evaluateCondition(expression, { input });
    return { result, error: undefined, ms: performance.now() - started };
  } catch (error) {
    return { result: undefined, error: error as Error & { code?: string; retryable?: boolean; details?: unknown }, ms: performance.now() - started };
  }
}

describe('the evaluation budget of a condition', () => {
  it('refuses the nested-map attack quickly, with a code, the budget and the reason', () => {
    expect(JSON.stringify({ input: attackInput }).length).toBeLessThan(1_000);
    const { result, error, ms } = attempt(ATTACK, attackInput);
    expect(result).toBeUndefined();
    expect(error).toBeInstanceOf(ConditionBudgetError);
    expect(error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
    expect(error?.retryable).toBe(false);
    expect(error?.message).toContain(`it takes more than ${CONDITION_BUDGET.steps} evaluation steps`);
    expect(error?.details).toMatchObject({ budget: CONDITION_BUDGET });
    // 200,000 steps take about 10 ms; the bound leaves room for a loaded machine. Unbounded: 7 s.
    expect(ms).toBeLessThan(1_000);
  });

  it.each([
    ['exists', 'input.a.exists(x, input.a.exists(y, input.a.exists(z, x + y + z < 0)))'],
    ['all', 'input.a.all(x, input.a.all(y, input.a.all(z, x + y + z >= 0)))'],
    ['exists_one', 'input.a.exists_one(x, input.a.exists_one(y, input.a.exists_one(z, x + y + z == 0)))'],
    ['filter', 'size(input.a.filter(x, size(input.a.filter(y, size(input.a.filter(z, x + y + z > 1)) > 0)) > 0)) > 0'],
  ])('refuses nested %s the same way', (_name, expression) => {
    const { error, ms } = attempt(expression, attackInput);
    expect(error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
    expect(ms).toBeLessThan(1_000);
  });

  it('is not fooled by CEL absorbing the error (`error || true` is true in CEL)', () => {
    expect(attempt(`${ATTACK} || true`, attackInput).error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
    expect(attempt(`true && (input.a.exists(x, ${ATTACK.replace('> 0', '< 0')}) || input.a.exists(x, x == 1))`, attackInput).error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
  });

  it('counts what comparisons walk: two 20,000-element lists compared in every iteration', () => {
    const input = { a: numbers(100), b: numbers(20_000), c: numbers(20_000) };
    const { error, ms } = attempt('input.a.exists(x, input.b == input.c && x < 0)', input);
    expect(error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
    expect(ms).toBeLessThan(1_000);
    // Once is fine: 40,000 elements.
    expect(attempt('input.b == input.c', input).result).toBe(true);
  });

  it('bounds the strings and lists a condition builds', () => {
    const input = { s: 'x'.repeat(60_000), b: numbers(30_000) };
    const long = attempt('input.s + input.s != ""', input);
    expect(long.error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
    expect(long.error?.message).toContain(`it builds a string of 120000 characters, more than ${CONDITION_BUDGET.stringLength}`);
    const list = attempt('size(input.b + input.b + input.b + input.b) > 0', input);
    expect(list.error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
    expect(list.error?.message).toContain(`it builds a list of 120000 elements, more than ${CONDITION_BUDGET.listLength}`);
    expect(attempt('input.a.exists(x, input.s.upperAscii() == "")', { ...input, a: numbers(1_000) }).error?.code).toBe('CONDITION_BUDGET_EXCEEDED');
    // Reading a long string is no building: it passes.
    expect(attempt('size(input.s) == 60000 && input.s.startsWith("xx")', input).result).toBe(true);
  });

  it('lets real conditions over forEach-sized data through (10,000 items)', () => {
    const lines = Array.from({ length: 10_000 }, (_, index) => ({ sku: `sku-${index}`, quantity: index % 7, tags: ['a', 'b'] }));
    const input = { lines, allowed: ['sku-1', 'sku-2', 'sku-3'], country: 'DE' };
    expect(attempt('input.lines.all(l, l.quantity >= 0 && l.sku != "")', input).result).toBe(true);
    expect(attempt('input.lines.exists(l, l.quantity > 5 && l.sku in input.allowed)', input).result).toBe(false);
    expect(attempt('size(input.lines.filter(l, "a" in l.tags)) == 10000 && input.country == "DE"', input).result).toBe(true);
    expect(attempt('input.lines.map(l, l.quantity).exists(q, q == 6)', input).result).toBe(true);
  });

  it('gives the same answer for the same condition and data (counted, not timed)', () => {
    const input = { a: numbers(150) };
    // 150 × 150 × (about 9 steps) is just over the budget; 100 × 100 × 9 is under.
    const over = 'input.a.all(x, input.a.all(y, x + y >= 0 && x >= 0))';
    const outcomes = Array.from({ length: 3 }, () => attempt(over, input).error?.code);
    expect(outcomes).toEqual(['CONDITION_BUDGET_EXCEEDED', 'CONDITION_BUDGET_EXCEEDED', 'CONDITION_BUDGET_EXCEEDED']);
    expect(attempt(over, { a: numbers(100) }).result).toBe(true);
  });
});

describe('comprehension nesting when a definition is applied', () => {
  it('refuses comprehensions nested more than 3 deep, and allows chains of them', () => {
    const four = 'input.a.exists(w, input.a.exists(x, input.a.exists(y, input.a.exists(z, w + x + y + z == 0))))';
    expect(expressionProblem(four)).toBe('nests comprehensions (exists, all, exists_one, filter, map) 4 deep; at most 3 may be nested');
    expect(() => validateDefinition({ name: 'w', steps: [{ id: 'a', task: 't.a', when: four }] })).toThrow(DefinitionInvalidError);
    try {
      validateDefinition({ name: 'w', steps: [{ id: 'a', task: 't.a', when: four }] });
    } catch (error) {
      expect((error as DefinitionInvalidError).issues).toEqual([{ path: 'steps[0].when', message: expect.stringContaining('4 deep') }]);
    }
    expect(expressionProblem(ATTACK)).toBeUndefined();
    expect(expressionProblem('input.a.map(x, x + 1).filter(x, x > 2).map(x, x * 2).exists(x, x == 4)')).toBeUndefined();
  });
});

describe('a condition over budget in a case', () => {
  it('fails the step of a `when` at the case start, naming the step, the field and the budget', () => {
    const workflow = compileWorkflow(
      {
        name: 'w',
        steps: [
          { id: 'gate', task: 't.gate', when: ATTACK },
          { id: 'other', task: 't.other' },
        ],
      },
      1,
    );
    const started = performance.now();
    const { state } = createCase(workflow, { id: 'c', input: attackInput, now: T0 });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(state.status).toBe('failed');
    expect(state.steps.gate?.status).toBe('failed');
    expect(state.steps.gate?.error).toMatchObject({
      code: 'CONDITION_BUDGET_EXCEEDED',
      retryable: false,
      details: { stepId: 'gate', field: 'when', budget: CONDITION_BUDGET },
    });
    expect(state.steps.gate?.error?.message).toMatch(/^when of step "gate": condition "size\(input\.a\.map.*exceeds its evaluation budget \(200000 steps/);
    expect(state.error).toMatchObject({ code: 'STEP_FAILED', stepId: 'gate' });
  });

  it('fails the step of a `when` evaluated when an earlier step completes (as a worker or the scheduler applies it)', () => {
    const workflow = compileWorkflow(
      {
        name: 'w',
        steps: [
          { id: 'fetch', task: 't.fetch' },
          { id: 'gate', task: 't.gate', after: ['fetch'], when: ATTACK.replaceAll('input.a', 'steps.fetch.output') },
        ],
      },
      1,
    );
    const { state } = createCase(workflow, { id: 'c', input: {}, now: T0 });
    const done: CaseEvent = { type: 'stepCompleted', stepId: 'fetch', attempt: 1, at: T0 + 5, startedAt: T0 + 1, output: numbers(200) };
    const next = transition(workflow, state, [done], T0 + 10);
    expect(next.state.steps.gate?.error).toMatchObject({ code: 'CONDITION_BUDGET_EXCEEDED', details: { stepId: 'gate', field: 'when' } });
    expect(next.state.status).toBe('failed');
  });

  it('bounds the conditions of one transition together, not only each', () => {
    // Ten steps ready at once, each condition about 130,000 steps (under its own budget).
    const costly = 'input.a.all(x, input.a.all(y, x + y >= 0 && x >= 0))';
    const steps = Array.from({ length: 10 }, (_, index) => ({ id: `s${index}`, task: 't.s', when: costly, onFailure: 'continue' as const }));
    const workflow = compileWorkflow({ name: 'w', steps }, 1);
    expect(attempt(costly, { a: numbers(120) }).result).toBe(true);
    const started = performance.now();
    const { state } = createCase(workflow, { id: 'c', input: { a: numbers(120) }, now: T0 });
    expect(performance.now() - started).toBeLessThan(2_000);
    const statuses = steps.map((step) => state.steps[step.id]?.status);
    // 500,000 steps together: three such conditions fit, the fourth runs out, the rest fail at once.
    expect(statuses.slice(0, 3)).toEqual(['scheduled', 'scheduled', 'scheduled']);
    expect(statuses.slice(4)).toEqual(['failed', 'failed', 'failed', 'failed', 'failed', 'failed']);
    expect(state.steps.s9?.error).toMatchObject({
      code: 'CONDITION_BUDGET_EXCEEDED',
      details: { stepId: 's9', reason: `the conditions of this transition together take more than ${CONDITION_BUDGET.transitionSteps} evaluation steps` },
    });
  });

  it('evaluates the attack as the `when` of 500 steps in one transition within the shared budget', () => {
    const steps = Array.from({ length: 500 }, (_, index) => ({ id: `s${index}`, task: 't.s', when: ATTACK, onFailure: 'continue' as const }));
    const workflow = compileWorkflow({ name: 'w', steps }, 1);
    const started = performance.now();
    const { state } = createCase(workflow, { id: 'c', input: attackInput, now: T0 });
    // About 50 ms here; unbounded, 500 × 2.6 s.
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(Object.values(state.steps).every((step) => step.error?.code === 'CONDITION_BUDGET_EXCEEDED')).toBe(true);
  });

  it('gives a condition the steps it names, or all of them when it reads steps by a computed key', () => {
    const definition = (when: string) => ({
      name: 'w',
      steps: [
        { id: 'fetch', task: 't.fetch' },
        { id: 'check', task: 't.check' },
        { id: 'gate', task: 't.gate', after: ['fetch', 'check'], when },
      ],
    });
    const run = (when: string) => {
      const workflow = compileWorkflow(definition(when), 1);
      let { state } = createCase(workflow, { id: 'c', input: { which: 'check' }, now: T0 });
      for (const stepId of ['fetch', 'check']) {
        state = transition(workflow, state, [{ type: 'stepCompleted', stepId, attempt: 1, at: T0 + 5, startedAt: T0 + 1, output: { ok: stepId === 'check' } }], T0 + 10).state;
      }
      return state.steps.gate?.status;
    };
    expect(run('steps.check.output.ok && !steps.fetch.output.ok')).toBe('scheduled');
    expect(run('steps[input.which].output.ok')).toBe('scheduled');
    expect(run('size(steps) == 3 && steps.exists(id, id == "check")')).toBe('scheduled');
    expect(run('steps.fetch.output.ok')).toBe('skipped');
  });

  it('fails a repeat step whose `while` runs out of budget', () => {
    const workflow = compileWorkflow({ name: 'w', steps: [{ id: 'poll', task: 't.poll', repeat: { while: ATTACK.replaceAll('input.a', 'output'), maxIterations: 5 } }] }, 1);
    const { state } = createCase(workflow, { id: 'c', input: {}, now: T0 });
    const done: CaseEvent = { type: 'stepCompleted', stepId: 'poll', attempt: 1, at: T0 + 5, startedAt: T0 + 1, output: numbers(200) };
    const next = transition(workflow, state, [done], T0 + 10);
    expect(next.state.steps.poll?.error).toMatchObject({ code: 'CONDITION_BUDGET_EXCEEDED', retryable: false, details: { stepId: 'poll', field: 'repeat.while' } });
    expect(next.state.steps.poll?.error?.message).toMatch(/^repeat\.while of step "poll": /);
  });
});
