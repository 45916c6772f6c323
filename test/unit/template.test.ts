import { describe, expect, it } from 'vitest';
import { collectReferences, renderTemplate, type TemplateScope } from '../../lib/core/template.js';

const scope: TemplateScope = {
  input: { order: { id: 'o-1', lines: [{ sku: 'a' }, { sku: 'b' }] }, 'odd key': 7, flag: false },
  stepOutputs: { charge: { receipt: 'r-9', amount: 25 } },
  case: { id: 'case-1', workflow: 'order', version: 3 },
};

describe('renderTemplate', () => {
  it('replaces a whole-string reference with the value and its type', () => {
    expect(renderTemplate('${steps.charge.output.amount}', scope)).toBe(25);
    expect(renderTemplate('${input.order}', scope)).toEqual({ id: 'o-1', lines: [{ sku: 'a' }, { sku: 'b' }] });
    expect(renderTemplate('${input.flag}', scope)).toBe(false);
    expect(renderTemplate('${input}', scope)).toBe(scope.input);
  });

  it('interpolates references inside longer text', () => {
    expect(renderTemplate('order ${input.order.id} paid with ${steps.charge.output.receipt}', scope)).toBe('order o-1 paid with r-9');
    expect(renderTemplate('n=${steps.charge.output.amount}', scope)).toBe('n=25');
    expect(renderTemplate('lines: ${input.order.lines}', scope)).toBe('lines: [{"sku":"a"},{"sku":"b"}]');
  });

  it('reads array indexes and quoted keys', () => {
    expect(renderTemplate('${input.order.lines[1].sku}', scope)).toBe('b');
    expect(renderTemplate('${input.order.lines.0.sku}', scope)).toBe('a');
    expect(renderTemplate('${input["odd key"]}', scope)).toBe(7);
  });

  it('reads case facts', () => {
    expect(renderTemplate({ id: '${case.id}', wf: '${case.workflow}@${case.version}' }, scope)).toEqual({ id: 'case-1', wf: 'order@3' });
  });

  it('yields null for a path that leads nowhere, and empty text inside strings', () => {
    expect(renderTemplate('${input.missing.deeper}', scope)).toBeNull();
    expect(renderTemplate('${steps.unknown.output}', scope)).toBeNull();
    expect(renderTemplate('[${input.missing}]', scope)).toBe('[]');
  });

  it('never reaches the prototype chain', () => {
    expect(renderTemplate('${input.order.toString}', scope)).toBeNull();
    expect(renderTemplate('${input.order.hasOwnProperty}', scope)).toBeNull();
  });

  it('refuses references through __proto__, prototype or constructor when the definition is checked', () => {
    for (const text of ['${input.constructor}', '${input.order.__proto__}', '${steps.a.output["prototype"]}']) {
      expect(collectReferences(text, 'steps[0].input').issues).toEqual([{ path: 'steps[0].input', message: expect.stringMatching(/is not a data field and cannot be referenced$/) }]);
    }
  });

  it('reads the length of an array (an own property)', () => {
    expect(renderTemplate('${input.order.lines.length}', scope)).toBe(2);
  });

  it('keeps a "__proto__" key of a template as a plain key', () => {
    const template = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown;
    const out = renderTemplate(template, scope) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(out)).toEqual(['__proto__', 'a']);
  });

  it('writes a literal ${ for $${', () => {
    expect(renderTemplate('cost: $${input.x}', scope)).toBe('cost: ${input.x}');
  });

  it('walks arrays and objects and leaves other values alone', () => {
    expect(renderTemplate([1, null, true, { a: ['${input.order.id}'] }], scope)).toEqual([1, null, true, { a: ['o-1'] }]);
  });
});

describe('collectReferences', () => {
  it('lists references with the path where each stands', () => {
    const { references, issues } = collectReferences({ a: ['x ${input.a}', { b: '${steps.s1.output.v}' }] }, 'steps[0].input');
    expect(issues).toEqual([]);
    expect(references.map((item) => [item.path, item.reference.root, item.reference.stepId])).toEqual([
      ['steps[0].input.a[0]', 'input', undefined],
      ['steps[0].input.a[1].b', 'steps', 's1'],
    ]);
  });

  it.each([
    ['${nothing.here}', 'must start with input, steps, case, item or index'],
    ['${steps.a.result}', 'a step reference reads steps.<id>.output'],
    ['${case.secret}', 'case has only id, workflow and version'],
    ['${input.a', 'unclosed'],
    ['${input.a[x]}', 'must hold an index'],
    ['${input..a}', 'expected a name after'],
  ])('reports %j as malformed', (text, message) => {
    const { issues } = collectReferences({ v: text }, 'output');
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe('output.v');
    expect(issues[0]?.message).toContain(message);
  });
});
