import { Environment, type ParseResult } from '@marcbachmann/cel-js';
import { BudgetExceeded, CONDITION_BUDGET, ConditionSession, installMeter, planMetering, withinBudget } from './condition-budget.js';
import { ErrorCode } from './error-codes.js';
import { WorkfleetError } from './errors.js';

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
const FUNCTIONS = new Set([
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
const MAX_EXPRESSION_LENGTH = 2_000;

/**
 * Comprehensions nested deeper than this are refused when a definition is applied: each level
 * multiplies the work by the length of a list (the budget stops it at run time anyway, but a
 * definition that cannot work is better refused before any case runs it). Three levels reach
 * data nested three deep (orders, their lines, their tags).
 */
const MAX_COMPREHENSION_NESTING = 3;

const COMPREHENSIONS = new Set(['exists', 'all', 'exists_one', 'filter', 'map']);

const environment = new Environment({
  unlistedVariablesAreDyn: false,
  enableOptionalTypes: true,
  homogeneousAggregateLiterals: false,
  limits: { maxAstNodes: 500, maxDepth: 40, maxListElements: 100, maxMapEntries: 100, maxCallArguments: 8 },
});
for (const name of VARIABLES) environment.registerVariable(name, 'dyn');
installMeter(environment);

const cache = new Map<string, ParseResult>();

function firstLine(message: string): string {
  return message.split('\n')[0]?.trim() ?? message;
}

interface AstNode {
  op: string;
  args: unknown;
}

const isNode = (node: unknown): node is AstNode => node !== null && typeof node === 'object' && 'op' in node;

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
    planMetering(parsed.ast);
    if (cache.size > 5_000) cache.clear();
    cache.set(expression, parsed);
  }
  return parsed;
}

/** How deep comprehensions nest in a syntax tree: in the body of another, not chained after it. */
function comprehensionNesting(node: unknown): number {
  if (Array.isArray(node)) return node.reduce((deepest: number, item) => Math.max(deepest, comprehensionNesting(item)), 0);
  if (!isNode(node)) return 0;
  const args = node.args;
  if (node.op === 'rcall' && Array.isArray(args) && typeof args[0] === 'string' && COMPREHENSIONS.has(args[0])) {
    return Math.max(comprehensionNesting(args[1]), 1 + comprehensionNesting(args[2]));
  }
  return comprehensionNesting(args);
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
  const nesting = comprehensionNesting(parsed.ast);
  if (nesting > MAX_COMPREHENSION_NESTING) {
    return `nests comprehensions (exists, all, exists_one, filter, map) ${nesting} deep; at most ${MAX_COMPREHENSION_NESTING} may be nested`;
  }
  const checked = parsed.check();
  if (!checked.valid) return `is not a valid CEL expression: ${firstLine(checked.error?.message ?? 'type error')}`;
  if (checked.type !== 'bool' && checked.type !== 'dyn') return `must be true or false, but gives ${checked.type ?? 'a value'}`;
  return undefined;
}

/** How an expression reads `steps`: by the names it writes, and whether it also reads it otherwise. */
function stepReads(parsed: ParseResult): { named: Set<string>; whole: boolean } {
  const named = new Set<string>();
  let whole = false;
  const isSteps = (node: unknown) => isNode(node) && node.op === 'id' && node.args === 'steps';
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) walk(item);
      return;
    }
    if (!isNode(node)) return;
    const args = node.args;
    if (isSteps(node)) whole = true;
    if (Array.isArray(args) && isSteps(args[0])) {
      const key: unknown = args[1];
      const name =
        (node.op === '.' || node.op === '.?') && typeof key === 'string'
          ? key
          : (node.op === '[]' || node.op === '[?]') && isNode(key) && key.op === 'value' && typeof key.args === 'string'
            ? key.args
            : undefined;
      if (name !== undefined) {
        named.add(name);
        walk(args.slice(1));
        return;
      }
    }
    walk(args);
  };
  walk(parsed.ast);
  return { named, whole };
}

/**
 * The steps whose outputs an expression reads: `steps.x…`, `steps.?x…` and `steps["x"]…`.
 * A computed key (`steps[input.which]`) names no step and is not counted.
 */
export function stepsReadBy(expression: string): string[] {
  try {
    return [...stepReads(compile(expression)).named];
  } catch {
    return [];
  }
}

const needed = new Map<string, readonly string[] | undefined>();

/**
 * The steps a condition needs in its `steps` variable: those it names, or undefined when it
 * reads `steps` otherwise too (a computed key, `size(steps)`, a loop variable of that name) and
 * needs them all. Conditions are given only what they read, so that evaluating the `when` of each
 * of 500 steps does not convert the state of 500 steps each time.
 */
export function stepsNeededBy(expression: string): readonly string[] | undefined {
  if (needed.has(expression)) return needed.get(expression);
  let result: readonly string[] | undefined;
  try {
    const reads = stepReads(compile(expression));
    result = reads.whole ? undefined : [...reads.named];
  } catch {
    result = undefined;
  }
  if (needed.size > 5_000) needed.clear();
  needed.set(expression, result);
  return result;
}

/**
 * JSON values as CEL sees them: whole numbers become integers (BigInt). `memo` keeps what was
 * converted for the conditions of one transition (case data does not change while it runs, and
 * CEL never modifies its variables).
 */
function toCel(value: unknown, memo: WeakMap<object, unknown>): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (value === null || typeof value !== 'object') return value;
  const known = memo.get(value);
  if (known !== undefined) return known;
  let out: unknown;
  if (Array.isArray(value)) out = value.map((item) => toCel(item, memo));
  else {
    const object: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      // `__proto__` alone would set the prototype when assigned; defining every key is 10 times slower.
      if (key === '__proto__') Object.defineProperty(object, key, { value: toCel(item, memo), enumerable: true, writable: true, configurable: true });
      else object[key] = toCel(item, memo);
    }
    out = object;
  }
  memo.set(value, out);
  return out;
}

/** Where a condition sits in its definition, for messages: `when` of step "ship". */
export interface ConditionSite {
  stepId: string;
  field: 'when' | 'repeat.while';
}

const siteOf = (site: ConditionSite | undefined) => (site ? `${site.field} of step "${site.stepId}": ` : '');
const shortened = (expression: string) => (expression.length > 200 ? `${expression.slice(0, 200)}…` : expression);

/** A condition that cannot be evaluated (a missing field, a type mismatch, not a boolean). */
export class ConditionError extends WorkfleetError {
  constructor(expression: string, reason: string, site?: ConditionSite) {
    super(ErrorCode.conditionFailed, `${siteOf(site)}condition "${shortened(expression)}" could not be evaluated: ${reason}`, { details: site });
    this.name = 'ConditionError';
  }
}

/** A condition that ran out of its evaluation budget (CONDITION_BUDGET): it fails its step, and trying again cannot help. */
export class ConditionBudgetError extends WorkfleetError {
  constructor(expression: string, reason: string, site?: ConditionSite) {
    const budget = `${CONDITION_BUDGET.steps} steps, strings of ${CONDITION_BUDGET.stringLength} characters, lists of ${CONDITION_BUDGET.listLength} elements`;
    super(ErrorCode.conditionBudgetExceeded, `${siteOf(site)}condition "${shortened(expression)}" exceeds its evaluation budget (${budget}): ${reason}`, {
      details: { ...site, reason, budget: CONDITION_BUDGET },
    });
    this.name = 'ConditionBudgetError';
  }
}

/**
 * Evaluates a condition that passed `expressionProblem`, within CONDITION_BUDGET (and what is
 * left of `session`'s, the conditions of one transition); throws ConditionError if it does not
 * give a boolean, ConditionBudgetError if it costs too much.
 */
export function evaluateCondition(
  expression: string,
  variables: Readonly<Partial<Record<(typeof VARIABLES)[number], unknown>>>,
  site?: ConditionSite,
  session: ConditionSession = new ConditionSession(),
): boolean {
  const context: Record<string, unknown> = {};
  for (const name of VARIABLES) context[name] = toCel(variables[name] ?? null, session.memo);
  let result: unknown;
  try {
    const parsed = compile(expression);
    result = withinBudget((): unknown => parsed(context), session);
  } catch (error) {
    if (error instanceof BudgetExceeded) throw new ConditionBudgetError(expression, error.reason, site);
    throw new ConditionError(expression, firstLine((error as Error).message), site);
  }
  if (typeof result !== 'boolean') throw new ConditionError(expression, `it gave ${typeof result}, not true or false`, site);
  return result;
}
