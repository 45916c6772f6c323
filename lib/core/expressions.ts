import { Environment, type ParseResult } from '@marcbachmann/cel-js';

/**
 * Conditions (`when`, `repeat.while`) are CEL expressions (Common Expression Language, the
 * language of Kubernetes admission policies and Envoy), evaluated by an interpreter (cel-js
 * walks the parsed tree; it never builds code). CEL has no loops, no I/O and no assignment; on
 * top of that, only the functions in FUNCTIONS may be called, so that a definition cannot, for
 * instance, run a pathological regular expression. The variables an expression can read:
 *
 * - `input`: the case input; `steps`: `{ <id>: { output } }` of the steps that completed;
 * - `case`: `{ id, workflow, version }`;
 * - in `repeat.while`: `output` (the iteration's output) and `iteration` (from 1).
 *
 * JSON numbers without a fraction are CEL integers, others doubles; comparisons mix them freely.
 */

/** Functions and macros an expression may call. Everything else is refused when a definition is applied. */
export const FUNCTIONS = new Set([
  'size',
  'has',
  'exists',
  'all',
  'exists_one',
  'filter',
  'map',
  'contains',
  'startsWith',
  'endsWith',
  'lowerAscii',
  'upperAscii',
  'trim',
  'int',
  'uint',
  'double',
  'string',
  'bool',
  'type',
  'dyn',
  'timestamp',
  'duration',
  'getFullYear',
  'getMonth',
  'getDayOfMonth',
  'getDayOfWeek',
  'getHours',
  'getMinutes',
  'getSeconds',
  'min',
  'max',
  'orValue',
  'hasValue',
  'value',
]);

const VARIABLES = ['input', 'steps', 'case', 'output', 'iteration', 'item', 'index'] as const;

/** Expressions larger than this are refused: conditions are short. */
export const MAX_EXPRESSION_LENGTH = 2_000;

const environment = new Environment({
  unlistedVariablesAreDyn: false,
  enableOptionalTypes: true,
  homogeneousAggregateLiterals: false,
  limits: { maxAstNodes: 500, maxDepth: 40, maxListElements: 100, maxMapEntries: 100, maxCallArguments: 8 },
});
for (const name of VARIABLES) environment.registerVariable(name, 'dyn');

const cache = new Map<string, ParseResult>();

function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? message;
}

interface AstNode {
  op: string;
  args: unknown;
}

/** The functions an expression calls, found by walking its syntax tree. */
function calledFunctions(node: unknown, found: Set<string> = new Set()): Set<string> {
  if (Array.isArray(node)) {
    for (const item of node) calledFunctions(item, found);
  } else if (node && typeof node === 'object' && 'op' in node) {
    const { op, args } = node as AstNode;
    if ((op === 'call' || op === 'rcall') && Array.isArray(args) && typeof args[0] === 'string') found.add(args[0]);
    calledFunctions(args, found);
  }
  return found;
}

function compile(expression: string): ParseResult {
  let parsed = cache.get(expression);
  if (!parsed) {
    parsed = environment.parse(expression);
    if (cache.size > 5_000) cache.clear();
    cache.set(expression, parsed);
  }
  return parsed;
}

/** Why an expression cannot be used, or undefined when it can. */
export function expressionProblem(expression: string): string | undefined {
  if (expression.length > MAX_EXPRESSION_LENGTH) return `is longer than ${MAX_EXPRESSION_LENGTH} characters`;
  let parsed: ParseResult;
  try {
    parsed = compile(expression);
  } catch (error) {
    return `is not a valid CEL expression: ${firstLine((error as Error).message)}`;
  }
  const refused = [...calledFunctions(parsed.ast)].filter((name) => !FUNCTIONS.has(name));
  if (refused.length > 0) return `calls ${refused.map((name) => `${name}()`).join(', ')}, which conditions may not use`;
  const checked = parsed.check();
  if (!checked.valid) return `is not a valid CEL expression: ${firstLine(checked.error?.message ?? 'type error')}`;
  if (checked.type !== 'bool' && checked.type !== 'dyn') return `must be true or false, but gives ${checked.type ?? 'a value'}`;
  return undefined;
}

const isNode = (node: unknown): node is AstNode => node !== null && typeof node === 'object' && 'op' in node;

/**
 * The steps whose outputs an expression reads: `steps.x…`, `steps.?x…` and `steps["x"]…`.
 * A computed key (`steps[input.which]`) names no step and is not counted.
 */
export function stepsReadBy(expression: string): string[] {
  let parsed: ParseResult;
  try {
    parsed = compile(expression);
  } catch {
    return [];
  }
  const found = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
      return;
    }
    if (!isNode(node)) return;
    const args = node.args;
    if (Array.isArray(args) && isNode(args[0]) && args[0].op === 'id' && args[0].args === 'steps') {
      const key: unknown = args[1];
      if ((node.op === '.' || node.op === '.?') && typeof key === 'string') found.add(key);
      if ((node.op === '[]' || node.op === '[?]') && isNode(key) && key.op === 'value' && typeof key.args === 'string') found.add(key.args);
    }
    walk(args);
  };
  walk(parsed.ast);
  return [...found];
}

/** JSON values as CEL sees them: whole numbers become integers (BigInt). */
function toCel(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCel);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) Object.defineProperty(out, key, { value: toCel(item), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

export class ConditionError extends Error {
  readonly code = 'CONDITION_FAILED';
  constructor(expression: string, reason: string) {
    super(`condition "${expression}" could not be evaluated: ${reason}`);
    this.name = 'ConditionError';
  }
}

/** Evaluates a condition that passed `expressionProblem`; throws ConditionError if it does not give a boolean. */
export function evaluateCondition(expression: string, variables: Readonly<Partial<Record<(typeof VARIABLES)[number], unknown>>>): boolean {
  const context: Record<string, unknown> = {};
  for (const name of VARIABLES) context[name] = toCel(variables[name] ?? null);
  let result: unknown;
  try {
    result = compile(expression)(context);
  } catch (error) {
    throw new ConditionError(expression, firstLine((error as Error).message));
  }
  if (typeof result !== 'boolean') throw new ConditionError(expression, `it gave ${typeof result}, not true or false`);
  return result;
}
