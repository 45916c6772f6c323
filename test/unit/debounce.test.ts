import { describe, expect, it } from 'vitest';
import { burstDueAt, debounceKeyOf } from '../../lib/core/debounce.js';
import type { CompiledDebounce } from '../../lib/core/definition.js';
import { WorkfleetError } from '../../lib/core/errors.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { problems } from './fixtures.js';

/** `debounce:` in a definition: what validation refuses, what compiles, a start's key, and when a burst closes. */

const definition = (debounce: unknown) => ({ name: 'search-index', debounce, steps: [{ id: 'index', task: 'search.index' }] });

describe('debounce in a definition', () => {
  it('compiles a key, a quiet time and a bound, durations in ms', () => {
    expect(compileWorkflow(definition({ key: '${input.userId}', for: '5s', maxWait: '1m' }), 1).debounce).toEqual({ key: '${input.userId}', forMs: 5_000, maxWaitMs: 60_000 });
    expect(compileWorkflow(definition({ for: 300 }), 1).debounce).toEqual({ forMs: 300 });
    expect(compileWorkflow(definition(undefined), 1).debounce).toBeUndefined();
  });

  it('names each bad field by its path', () => {
    expect(problems(definition({ key: '${input.userId}' }))).toEqual([expect.stringMatching(/^debounce\.for: /)]);
    expect(problems(definition({ for: 'soon' }))).toEqual([expect.stringMatching(/^debounce\.for: "soon" is not a duration/)]);
    expect(problems(definition({ for: '5s', every: '1m' }))).toEqual(['debounce.every: unknown field "every"']);
    expect(problems(definition({ for: 0 }))).toEqual(['debounce.for: must be at least 1ms']);
    expect(problems(definition({ for: '8d' }))).toEqual(['debounce.for: must be at most 7d']);
    expect(problems(definition({ for: '5s', maxWait: '8d' }))).toEqual(['debounce.maxWait: must be at most 7d']);
    expect(problems(definition({ for: '5s', maxWait: '4s' }))).toEqual([expect.stringMatching(/^debounce\.maxWait: must be at least debounce\.for \(5s\)/)]);
    expect(problems(definition({ key: '', for: '5s' }))).toEqual([expect.stringMatching(/^debounce\.key: /)]);
  });

  it('names every problem of it in one pass, a bad field hiding none of the others', () => {
    expect(
      problems(definition({ key: '${steps.index.output}', for: '0s', maxWait: 'soon' }))
        .map((issue) => issue.split(':')[0])
        .sort(),
    ).toEqual(['debounce.for', 'debounce.key', 'debounce.maxWait']);
  });

  it('lets the key read the start input only, and refuses a malformed reference', () => {
    expect(problems(definition({ key: '${steps.index.output.id}', for: '5s' }))).toEqual([expect.stringMatching(/^debounce\.key: .*reads the start's input only/)]);
    expect(problems(definition({ key: 'user-${case.id}', for: '5s' }))).toEqual([expect.stringMatching(/^debounce\.key: .*reads the start's input only/)]);
    expect(problems(definition({ key: '${input.user', for: '5s' }))).toEqual([expect.stringMatching(/^debounce\.key: unclosed/)]);
    expect(problems(definition({ key: '${input.org}/${input.user.id}', for: '5s' }))).toEqual([]);
  });
});

describe('debounceKeyOf', () => {
  const workflow = { name: 'search-index', version: 1 };
  const keyOf = (key: string | undefined, input: unknown) => debounceKeyOf({ ...(key === undefined ? {} : { key }), forMs: 5_000 }, workflow, input);
  const refusal = (key: string, input: unknown) => {
    try {
      keyOf(key, input);
    } catch (error) {
      expect(error).toBeInstanceOf(WorkfleetError);
      return { code: (error as WorkfleetError).code, message: (error as WorkfleetError).message, details: (error as WorkfleetError).details };
    }
    throw new Error('a refusal expected');
  };

  it('renders the key against the input: text as it is, other values as canonical JSON', () => {
    expect(keyOf('${input.userId}', { userId: 'u-7' })).toBe('u-7');
    expect(keyOf('${input.userId}', { userId: 7 })).toBe('7');
    expect(keyOf('${input.user}', { user: { b: 1, a: 2 } })).toBe('{"a":2,"b":1}');
    expect(keyOf('${input.org}/${input.user}', { org: 'acme', user: 'u-7' })).toBe('acme/u-7');
    expect(keyOf(undefined, { anything: 1 })).toBe('');
  });

  it('refuses a start whose key reads nothing, naming the reference', () => {
    expect(refusal('${input.userId}', {})).toMatchObject({ code: 'DEBOUNCE_KEY_INVALID', details: { reference: 'input.userId' }, message: expect.stringMatching(/missing or null/) });
    expect(refusal('${input.userId}', { userId: null })).toMatchObject({ code: 'DEBOUNCE_KEY_INVALID' });
    // Interpolated, a missing part would still leave text ("acme/"): refused all the same.
    expect(refusal('${input.org}/${input.user}', { org: 'acme', user: '' })).toMatchObject({ code: 'DEBOUNCE_KEY_INVALID', details: { reference: 'input.user' }, message: expect.stringMatching(/empty/) });
  });

  it('refuses a key over 200 characters or with a lone surrogate', () => {
    expect(keyOf('${input.id}', { id: 'x'.repeat(200) })).toHaveLength(200);
    expect(refusal('${input.id}', { id: 'x'.repeat(201) })).toMatchObject({ code: 'DEBOUNCE_KEY_INVALID', details: { length: 201 } });
    expect(refusal('${input.id}', { id: 'a\ud800' })).toMatchObject({ code: 'DEBOUNCE_KEY_INVALID', message: expect.stringMatching(/lone surrogate/) });
  });
});

describe('burstDueAt', () => {
  const debounce: CompiledDebounce = { forMs: 5_000, maxWaitMs: 60_000 };

  it('closes a burst `for` after its latest start', () => {
    expect(burstDueAt(debounce, 0, 0)).toBe(5_000);
    expect(burstDueAt(debounce, 0, 4_000)).toBe(9_000);
    expect(burstDueAt({ forMs: 5_000 }, 0, 1_000_000)).toBe(1_005_000);
  });

  it('never later than maxWait after its first start', () => {
    expect(burstDueAt(debounce, 0, 55_000)).toBe(60_000);
    expect(burstDueAt(debounce, 0, 59_999)).toBe(60_000);
    // A start that came after the bound (its close was late) closes the burst at once.
    expect(burstDueAt(debounce, 0, 70_000)).toBe(60_000);
  });
});
