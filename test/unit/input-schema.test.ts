import { describe, expect, it } from 'vitest';
import { checkInputSchema, INPUT_SCHEMA_LIMITS } from '../../lib/core/input-schema-check.js';
import { unsafePatternReason } from '../../lib/core/regex-safety.js';
import { compileInputSchema, inputSchemaIssues } from '../../lib/core/input-schema.js';
import { compileWorkflow } from '../../lib/core/validate.js';

/** The problems of an input under a schema, as "pointer: message". */
function problems(schema: unknown, input: unknown): string[] {
  return inputSchemaIssues(compileInputSchema(schema), input).map((issue) => `${issue.pointer}: ${issue.message}`);
}

const order = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['sku', 'quantity'],
  additionalProperties: false,
  properties: {
    sku: { type: 'string', pattern: '^[a-z]+-[0-9]+$' },
    quantity: { type: 'integer', minimum: 1, maximum: 100 },
    amount: { type: 'number', exclusiveMinimum: 0, multipleOf: 0.01 },
    lines: { type: 'array', minItems: 1, items: { $ref: '#/$defs/line' }, uniqueItems: true },
    channel: { enum: ['web', 'shop'] },
  },
  $defs: { line: { type: 'object', required: ['sku'], properties: { sku: { type: 'string', minLength: 2 } } } },
};

describe('inputSchemaIssues', () => {
  it('accepts an input that matches', () => {
    expect(problems(order, { sku: 'book-42', quantity: 1, amount: 25.5, lines: [{ sku: 'ab' }], channel: 'web' })).toEqual([]);
  });

  it('names every problem with its JSON pointer, in one pass', () => {
    expect(problems(order, { quantity: 1.5, amount: 0, extra: true, lines: [{ sku: 'a' }, {}, { sku: 'a' }], channel: 'mail' })).toEqual([
      '/input/sku: is required',
      '/input/quantity: must be integer, not number',
      '/input/amount: must be > 0',
      '/input/extra: unknown field',
      '/input/lines: must not repeat items: items 0 and 2 are equal',
      '/input/lines/0/sku: must be at least 2 characters long',
      '/input/lines/1/sku: is required',
      '/input/lines/2/sku: must be at least 2 characters long',
      '/input/channel: must be one of "web", "shop"',
    ]);
    expect(inputSchemaIssues(compileInputSchema(order), { quantity: 1 })[0]).toEqual({ path: 'input.sku', pointer: '/input/sku', message: 'is required' });
  });

  it('checks patterns, uniqueness, lengths in characters and multiples', () => {
    expect(problems(order, { sku: 'Book 42', quantity: 101, amount: 1.005, lines: [{ sku: 'ab' }, { sku: 'ab' }] })).toEqual([
      '/input/sku: must match the pattern "^[a-z]+-[0-9]+$"',
      '/input/quantity: must be <= 100',
      '/input/amount: must be a multiple of 0.01',
      '/input/lines: must not repeat items: items 0 and 1 are equal',
    ]);
    expect(problems({ properties: { name: { maxLength: 2 } } }, { name: '😀😀' })).toEqual([]);
  });

  it('applies combinators and conditionals', () => {
    const schema = {
      properties: {
        payment: {
          oneOf: [
            { required: ['card'], properties: { card: { type: 'string' } } },
            { required: ['iban'], properties: { iban: { type: 'string' } } },
          ],
        },
        contact: { anyOf: [{ type: 'string' }, { type: 'null' }] },
        kind: { not: { const: 'test' } },
      },
      if: { properties: { express: { const: true } }, required: ['express'] },
      then: { required: ['phone'] },
      dependentRequired: { gift: ['message'] },
    };
    expect(problems(schema, { payment: { card: 'x' }, contact: null, kind: 'real' })).toEqual([]);
    expect(problems(schema, { payment: { card: 'x', iban: 'y' }, contact: 3, kind: 'test', express: true, gift: 'yes' })).toEqual([
      '/input/phone: is required',
      '/input/message: is required when "gift" is given',
      '/input/payment: must match exactly one of the 2 schemas in oneOf, but matches 2',
      '/input/contact: matches none of the 2 schemas in anyOf',
      '/input/kind: must not match the schema in not',
    ]);
  });

  it('stops at the issue limit', () => {
    const schema = { properties: { items: { items: { type: 'string' } } } };
    expect(problems(schema, { items: Array.from({ length: 50 }, (_, index) => index) })).toHaveLength(INPUT_SCHEMA_LIMITS.maxIssues);
  });

  it('bounds the work any input can cause', () => {
    // Each level of anyOf tries both branches, and both fail only at the bottom: 2^40 checks for a naive checker.
    const schema = {
      $defs: {
        node: { anyOf: [{ $ref: '#/$defs/inner' }, { $ref: '#/$defs/inner' }] },
        inner: { type: 'object', required: ['next'], properties: { next: { $ref: '#/$defs/node' } } },
      },
      $ref: '#/$defs/node',
    };
    let input: Record<string, unknown> = {};
    for (let depth = 0; depth < 40; depth++) input = { next: input };
    expect(problems(schema, { next: { next: {} } })).toEqual(['/input: matches none of the 2 schemas in anyOf']);
    const started = performance.now();
    const issues = problems(schema, input);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(issues).toEqual([expect.stringMatching(/^\/input: takes more than 200000 checks/)]);
  });

  it('is prepared once per workflow version, with the compiled definition', () => {
    const compiled = compileWorkflow({ name: 'w', input: order, steps: [{ id: 'a', task: 't' }] }, 3);
    expect(compiled.inputSchema).toBeDefined();
    expect(compiled.inputSchema?.parts.patterns.get('^[a-z]+-[0-9]+$')).toBeInstanceOf(RegExp);
    expect(compileWorkflow({ name: 'w', steps: [{ id: 'a', task: 't' }] }, 1).inputSchema).toBeUndefined();
  });
});

describe('checkInputSchema', () => {
  it('resolves references by pointer and by anchor, and accepts extensions', () => {
    const schema = { $defs: { a: { $anchor: 'money', type: 'number' }, 'b/c': { type: 'string' } }, properties: { x: { $ref: '#money' }, y: { $ref: '#/$defs/b~1c' } }, 'x-ui': { order: 1 } };
    expect(checkInputSchema(schema).issues).toEqual([]);
    expect(problems(schema, { x: 'one', y: 2 })).toEqual(['/input/x: must be number, not string', '/input/y: must be string, not number']);
  });

  it('refuses a schema too large to check cheaply', () => {
    const wide = { properties: Object.fromEntries(Array.from({ length: 2_100 }, (_, index) => [`f${index}`, { type: 'string' }])) };
    expect(checkInputSchema(wide).issues).toEqual([{ path: 'input', message: `has more than ${INPUT_SCHEMA_LIMITS.maxSubschemas} subschemas` }]);
    let deep: unknown = { type: 'string' };
    for (let depth = 0; depth < 40; depth++) deep = { items: deep };
    expect(checkInputSchema(deep).issues[0]?.message).toMatch(/deeper than 32 levels/);
    expect(checkInputSchema({ $schema: 'http://json-schema.org/draft-07/schema#' }).issues[0]?.message).toMatch(/draft 2020-12/);
  });

  it('refuses patterns that repeat a repeated group', () => {
    for (const pattern of ['(a+)+$', '^(\\w*)*x', '((ab)*c)+', '(?:x+){2,}']) expect(unsafePatternReason(pattern), pattern).toBeDefined();
    for (const pattern of ['^[a-z]+-[0-9]+$', '^\\d+(\\.\\d+)?$', '(ab)+', '^[(+]+$', '(a+){2}', '\\(a+\\)+']) expect(unsafePatternReason(pattern), pattern).toBeUndefined();
  });
});
