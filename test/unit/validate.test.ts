import { describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../lib/core/definition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { orderDefinition, problems } from './fixtures.js';

const step = (id: string, extra: Record<string, unknown> = {}) => ({ id, task: `t.${id}`, ...extra });

describe('validateDefinition', () => {
  it('accepts a valid definition', () => {
    expect(problems(orderDefinition)).toEqual([]);
  });

  it('names an unknown dependency by its path, with a suggestion', () => {
    expect(problems({ name: 'w', steps: [step('validate'), step('charge'), step('ship', { after: ['chrage'] })] })).toEqual(['steps[2].after[0]: unknown step "chrage" (did you mean "charge"?)']);
  });

  it('rejects cycles and says which steps form one', () => {
    const issues = problems({ name: 'w', steps: [step('a', { after: ['c'] }), step('b', { after: ['a'] }), step('c', { after: ['b'] })] });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/^steps: dependency cycle: (a|b|c) → (a|b|c) → (a|b|c) → \1$/);
  });

  it('rejects a step waiting for itself', () => {
    expect(problems({ name: 'w', steps: [step('a', { after: ['a'] })] })).toEqual(['steps[0].after[0]: step "a" cannot wait for itself']);
  });

  it('rejects duplicate step ids', () => {
    expect(problems({ name: 'w', steps: [step('a'), step('a')] })).toEqual(['steps[1].id: duplicate step id "a"']);
  });

  it('rejects unknown fields and missing required ones', () => {
    expect(problems({ name: 'w', steps: [{ id: 'a', task: 't' }], color: 'blue' })).toEqual(['color: unknown field "color"']);
    expect(problems({ name: 'w', steps: [{ id: 'a' }] })).toEqual(['steps[0]: give the step one of task, sleep, waitFor or workflow']);
    expect(problems({ steps: [step('a')] })).toEqual([expect.stringMatching(/^name: /)]);
  });

  it('explains a bad duration', () => {
    expect(problems({ name: 'w', steps: [step('a', { timeout: 'soon' })] })).toEqual(['steps[0].timeout: "soon" is not a duration: use milliseconds or text like "250ms", "30s", "5m", "1h30m"']);
  });

  it('caps timeouts and deadlines', () => {
    expect(problems({ name: 'w', deadline: '400d', steps: [step('a', { timeout: '2d' })] })).toEqual(['deadline: must be at most 31536000000 ms', 'steps[0].timeout: must be at most 86400000 ms']);
  });

  it('keeps workfleet queues for workfleet', () => {
    expect(problems({ name: 'w', steps: [step('a', { queue: 'results' })] })).toEqual(['steps[0].queue: "results" is reserved for workfleet itself (reserved: cases, results, timers)']);
  });

  it('checks that references read steps that have run', () => {
    const issues = problems({
      name: 'w',
      steps: [step('a'), step('b', { after: ['a'], input: { x: '${steps.a.output.v}' } }), step('c', { after: ['b'], input: { y: '${steps.a.output.v}' } }), step('d', { input: { z: '${steps.a.output.v}' } })],
    });
    expect(issues).toEqual(['steps[3].input.z: "${steps.a.output.v}" reads step "a", which is not guaranteed to have run: add it to after']);
  });

  it('checks references in the case output', () => {
    expect(problems({ name: 'w', steps: [step('a')], output: { r: '${steps.zzz.output}' } })).toEqual(['output.r: unknown step "zzz" in "${steps.zzz.output}"']);
  });

  it('refuses documents that are not objects and empty step lists', () => {
    expect(problems(null)).toEqual(['expected object']);
    expect(problems({ name: 'w', steps: [] })).toEqual(['steps: expected array length to be greater or equal to 1']);
  });

  it('checks conditions when the definition is applied, with the path to them', () => {
    expect(problems({ name: 'w', steps: [step('a', { when: 'input.name.matches("a+")' })] })).toEqual(['steps[0].when: calls matches(), which conditions may not use']);
    expect(problems({ name: 'w', steps: [step('a', { repeat: { while: 'output.ready ==', maxIterations: 3 } })] })[0]).toMatch(/^steps\[0\]\.repeat\.while: is not a valid CEL expression: /);
    expect(problems({ name: 'w', steps: [step('a', { when: 'process.exit(1)' })] })[0]).toMatch(/^steps\[0\]\.when: /);
    expect(problems({ name: 'w', steps: [step('a', { when: 'input.amount + 1' })] })).toEqual(['steps[0].when: must be true or false, but gives int']);
  });

  it('checks the kinds of steps and their modifiers', () => {
    expect(problems({ name: 'w', steps: [{ id: 'a', task: 't', sleep: { for: '1s' } }] })).toEqual(['steps[0]: a step does one thing: it has task and sleep']);
    expect(problems({ name: 'w', steps: [{ id: 'a', sleep: { for: '1s', until: 'x' } }] })).toEqual(['steps[0].sleep: give exactly one of for and until']);
    expect(problems({ name: 'w', steps: [{ id: 'a', waitFor: { signals: ['go'] }, forEach: { items: '${input.x}' } }] })).toEqual(['steps[0].forEach: forEach runs a task for each item: give the step a task']);
    expect(problems({ name: 'w', steps: [step('a', { forEach: { items: 'lines: ${input.x}' } })] })).toEqual(['steps[0].forEach.items: must be one reference to an array, like "${input.lines}"']);
    expect(problems({ name: 'w', steps: [step('a', { input: '${item}' })] })).toEqual(['steps[0].input: "${item}" exists only in the input and limit keys of a forEach step']);
    expect(problems({ name: 'w', steps: [step('a', { onFailure: 'compensate' })] })).toEqual(['steps[0].onFailure: compensate needs steps with a compensate task to run']);
  });

  it('finds every problem of a file in one pass, each once', () => {
    // Before, this took three rounds: the schema problem first, then the condition, then the references.
    const issues = problems({
      name: 'order',
      steps: [
        step('reserve', { timeout: 'soon' }),
        step('charge', { when: 'input.amount >' }),
        step('ship', { after: ['chrage'] }),
        step('notify', { input: { tracking: '${steps.ship.output.trackingNumber}' } }),
      ],
    });
    expect(issues).toEqual([
      'steps[0].timeout: "soon" is not a duration: use milliseconds or text like "250ms", "30s", "5m", "1h30m"',
      expect.stringMatching(/^steps\[1\]\.when: is not a valid CEL expression: /),
      'steps[2].after[0]: unknown step "chrage" (did you mean "charge"?)',
      'steps[3].input.tracking: "${steps.ship.output.trackingNumber}" reads step "ship", which is not guaranteed to have run: add it to after',
    ]);
  });

  it('checks the well-formed parts of a document whose shape is broken elsewhere', () => {
    const issues = problems({
      name: 42,
      steps: [{ task: 't' }, step('b', { after: 'a' }), step('c', { after: ['b', 'x'], retry: 'often', input: '${steps.zz.output}' }), step('c')],
      color: 'blue',
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^name: /),
        expect.stringMatching(/^steps\[0\]\.id: /),
        expect.stringMatching(/^steps\[1\]\.after: /),
        expect.stringMatching(/^steps\[2\]\.retry: /),
        'color: unknown field "color"',
        'steps[2].after[1]: unknown step "x"',
        'steps[2].input: unknown step "zz" in "${steps.zz.output}"',
        'steps[3].id: duplicate step id "c"',
      ]),
    );
    expect(new Set(issues).size).toBe(issues.length);
  });

  it('reports a cycle together with the other problems', () => {
    const issues = problems({ name: 'w', steps: [step('a', { after: ['b'] }), step('b', { after: ['a'], when: 'steps.c.output.ok' }), step('c', { timeout: 'x' })] });
    expect(issues).toEqual([
      expect.stringMatching(/^steps\[2\]\.timeout: /),
      expect.stringMatching(/^steps: dependency cycle: /),
      'steps[1].when: "steps.c" reads step "c", which is not guaranteed to have run: add it to after',
    ]);
  });

  it('checks that conditions read only steps upstream, as step inputs do', () => {
    const definition = (when: string, after?: string[]) => ({
      name: 'w',
      steps: [step('check'), step('other'), step('gate', { after: ['check'] }), step('act', { when, ...(after ? { after } : {}) })],
    });
    expect(problems(definition('steps.check.output.ok'))).toEqual(['steps[3].when: "steps.check" reads step "check", which is not guaranteed to have run: add it to after']);
    // Upstream through another step is enough, as it is for references in inputs.
    expect(problems(definition('steps.check.output.ok', ['gate']))).toEqual([]);
    expect(problems(definition('has(steps.other.output) || steps["check"].output.ok', ['check']))).toEqual([
      'steps[3].when: "steps.other" reads step "other", which is not guaranteed to have run: add it to after',
    ]);
    expect(problems(definition('steps.?chek.output.orValue(false)', ['check']))).toEqual(['steps[3].when: unknown step "chek" in "steps.chek" (did you mean "check"?)']);
    expect(problems(definition('input.ok', []))).toEqual([]);
    expect(problems({ name: 'w', steps: [step('a'), step('poll', { repeat: { while: 'steps.a.output.more && output.pending', maxIterations: 3 } })] })).toEqual([
      'steps[1].repeat.while: "steps.a" reads step "a", which is not guaranteed to have run: add it to after',
    ]);
  });

  it('checks a declared input schema when the definition is applied', () => {
    expect(problems({ name: 'w', input: { type: 'object', required: ['sku'], properties: { sku: { type: 'string' } } }, steps: [step('a')] })).toEqual([]);
    expect(
      problems({
        name: 'w',
        input: { type: 'object', requried: ['sku'], properties: { sku: { type: 'text' }, qty: { minimum: '1' }, code: { pattern: '(a+)+$' } }, $ref: '#/$defs/none' },
        steps: [step('a')],
      }),
    ).toEqual([
      'input.requried: unknown keyword "requried" (did you mean "required"?) (extensions start with "x-")',
      'input.properties.sku.type: must be one of null, boolean, object, array, number, integer, string, or an array of them without repeats',
      'input.properties.qty.minimum: must be a number',
      'input.properties.code.pattern: a repeated group repeats inside itself (like "(a+)+"), which can take exponential time',
      'input.$ref: "#/$defs/none" refers to no subschema of this schema',
    ]);
    expect(problems({ name: 'w', input: 'object', steps: [step('a')] })).toEqual(['input: expected object']);
    expect(problems({ name: 'w', input: { type: 'array' }, steps: [step('a')] })).toEqual(['input.type: the case input is a JSON object, so the schema must allow "object"']);
    expect(problems({ name: 'w', input: { $defs: { a: { $ref: '#/$defs/b' }, b: { allOf: [{ $ref: '#/$defs/a' }] } }, $ref: '#/$defs/a' }, steps: [step('a')] })).toEqual([
      expect.stringMatching(/^input: \$ref loops back to .* without reading into the input/),
    ]);
    expect(problems({ name: 'w', input: { $id: 'https://x', unevaluatedProperties: false, properties: { a: { $ref: 'https://example.com/s.json' } } }, steps: [step('a')] })).toEqual([
      'input.$id: input schemas are self-contained: leave out $id and refer to "#/$defs/<name>"',
      'input.unevaluatedProperties: unevaluatedProperties is not supported: use additionalProperties',
      'input.properties.a.$ref: "https://example.com/s.json": only references inside this schema are supported, like "#/$defs/address"',
    ]);
  });

  it('refuses a step id that could not be a key or a job id', () => {
    expect(problems({ name: 'w', steps: [step('a.b')] })[0]).toMatch(/^steps\[0\]\.id: /);
    expect(problems({ name: 'w', steps: [step('$a')] })[0]).toMatch(/^steps\[0\]\.id: /);
  });
});

describe('compileWorkflow', () => {
  it('applies defaults and converts durations', () => {
    const compiled = compileWorkflow(
      { name: 'w', defaults: { timeout: '5s', queue: 'fast', retry: { maxAttempts: 7 } }, steps: [step('a'), step('b', { timeout: 250, retry: { backoff: { type: 'fixed' } } })] },
      4,
    );
    expect(compiled.version).toBe(4);
    expect(compiled.deadlineMs).toBe(DEFAULTS.deadlineMs);
    expect(compiled.steps.get('a')).toMatchObject({ queue: 'fast', timeoutMs: 5_000, maxAttempts: 7, breaker: 't.a' });
    expect(compiled.steps.get('b')).toMatchObject({ timeoutMs: 250, backoff: { type: 'fixed', delayMs: 1_000, maxDelayMs: 300_000 } });
  });

  it('orders steps so that every dependency comes first, and finds roots and sinks', () => {
    const compiled = compileWorkflow({ name: 'w', steps: [step('c', { after: ['b'] }), step('b', { after: ['a'] }), step('a'), step('d', { after: ['a'] })] }, 1);
    expect(compiled.order).toEqual(['a', 'b', 'c', 'd']);
    expect(compiled.roots).toEqual(['a']);
    expect(compiled.sinks).toEqual(['c', 'd']);
    expect(compiled.steps.get('a')?.dependents).toEqual(['b', 'd']);
  });
});
