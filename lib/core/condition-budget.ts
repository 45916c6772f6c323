import type { Environment } from '@marcbachmann/cel-js';

/**
 * The evaluation budget of a condition. CEL has no loops, but its comprehensions (`exists`, `all`,
 * `exists_one`, `filter`, `map`) nest: three `map`s over a list of 100 numbers (300 bytes of
 * input) are a million iterations, a second of a blocked event loop, and each level more
 * multiplies it by the list's length. The parse limits (nodes, depth) bound the expression, not
 * its cost against the data, and cel-js has no runtime limit, so every evaluation is metered:
 *
 * - every node the interpreter evaluates is one step (a comprehension's body once per element);
 * - a value an operator walks costs a quarter step per element, entry or 64 characters: both
 *   sides of a comparison (`==` on two lists compares every element), the list right of `in`,
 *   the arguments of string functions;
 * - a value an operator builds may not exceed `stringLength` characters or `listLength`
 *   elements, and costs a step per element or 64 characters (`+` copies lists and strings).
 *
 * A step is about 40 ns of interpreter work (with the meter), so the budget bounds a condition to
 * about 10 ms on an idle core, a few tens on a busy one, while a condition over a forEach-sized
 * list (10,000 items) still fits.
 * Costs are counted, not timed: the same condition on the same data passes or fails the same way
 * in every process (transitions are pure).
 */
export const CONDITION_BUDGET = { steps: 200_000, transitionSteps: 500_000, stringLength: 100_000, listLength: 100_000 } as const;

/**
 * What the conditions one transition evaluates share. A transition may evaluate many (up to 500
 * steps with a `when` become ready at once), so besides each condition's budget they have
 * `transitionSteps` together: one transition blocks its process for tens of milliseconds at
 * most. It also remembers the case data already turned into CEL values (`memo`), so that the
 * input and the step outputs are converted once per transition, not once per condition.
 */
export class ConditionSession {
  remaining: number = CONDITION_BUDGET.transitionSteps;
  readonly memo = new WeakMap<object, unknown>();
}

/** Raised inside cel-js when a condition runs out of budget; `evaluateCondition` turns it into a ConditionBudgetError. */
export class BudgetExceeded extends Error {
  constructor(readonly reason: string) {
    super(`condition budget exceeded: ${reason}`);
    this.name = 'BudgetExceeded';
  }
}

interface AstNode {
  op: string;
  args: unknown;
}

const isNode = (node: unknown): node is AstNode => node !== null && typeof node === 'object' && typeof (node as { op?: unknown }).op === 'string';

/** What metering a node's value involves, found once per parsed expression (`planMetering`). */
const WALKED = 1; // an operator walks the whole value (a side of a comparison, a function argument)
const MEMBERSHIP = 2; // right of `in`: a list is walked element by element, a map is one lookup
const BUILT = 4; // the value is new (`+`, string functions, map and filter): its size is bounded
const COPIED = 8; // `+` copies both operands into the value it builds

/** Plans by node. Nodes without one cost one step and nothing else, which keeps the meter cheap. */
const plans = new WeakMap<object, number>();

const COMPARISONS = new Set(['==', '!=', '<', '<=', '>', '>=']);
/** Functions that take constant time whatever their arguments (or, the macros, are metered step by step). */
const CONSTANT_TIME = new Set(['size', 'type', 'dyn', 'has', 'orValue', 'hasValue', 'value', 'exists', 'all', 'exists_one', 'filter', 'map']);
/** Functions and macros whose result is a new string or list. */
const BUILDERS = new Set(['string', 'lowerAscii', 'upperAscii', 'trim', 'filter', 'map']);

const plan = (node: unknown, flags: number) => {
  if (isNode(node)) plans.set(node, (plans.get(node) ?? 0) | flags);
};

/** Plans the metering of a parsed expression's nodes (see CONDITION_BUDGET); once per expression. */
export function planMetering(node: unknown): void {
  if (Array.isArray(node)) {
    for (const item of node) planMetering(item);
    return;
  }
  if (!isNode(node)) return;
  const args = node.args;
  if (Array.isArray(args)) {
    if (COMPARISONS.has(node.op)) for (const operand of args) plan(operand, WALKED);
    if (node.op === 'in') {
      plan(args[0], WALKED);
      plan(args[1], MEMBERSHIP);
    }
    if (node.op === '+') plan(node, BUILT | COPIED);
    const name: unknown = args[0];
    if ((node.op === 'call' || node.op === 'rcall') && typeof name === 'string') {
      if (!CONSTANT_TIME.has(name)) for (const operand of args.slice(1).flat()) plan(operand, WALKED);
      if (BUILDERS.has(name)) plan(node, BUILT);
    }
  }
  planMetering(args);
}

/** One evaluation's account. */
class Meter {
  spent = 0;
  private error: BudgetExceeded | undefined;
  /** Sizes of the containers seen, so that a list compared in every iteration is measured once. */
  private readonly sizes = new WeakMap<object, number>();

  /** `limit`: the steps this evaluation may take; `why`: what running out of them means. */
  constructor(
    readonly limit: number,
    private readonly why: string,
  ) {}

  /** Fails this evaluation for having taken more than its steps. */
  overspent(): never {
    return this.exceed(this.exceeded ?? this.why);
  }

  spend(units: number): void {
    this.spent += units;
    if (this.spent > this.limit) this.overspent();
  }

  /** Fails this evaluation; every later step fails at once, so an error CEL absorbs (`error || true`) changes nothing. */
  exceed(reason: string): never {
    // One error, thrown again at every later step: quantifiers keep going after an error
    // (`exists` may still find a true), and capturing a stack at each would cost more than the step.
    this.error ??= new BudgetExceeded(reason);
    this.spent = Infinity;
    throw this.error;
  }

  get exceeded(): string | undefined {
    return this.error?.reason;
  }

  /** What walking a value costs: one per scalar, element and entry, one per 64 characters of a string. */
  size(value: unknown): number {
    if (typeof value === 'string') return 1 + (value.length >> 6);
    if (value === null || typeof value !== 'object') return 1;
    const known = this.sizes.get(value);
    if (known !== undefined) return known;
    let total = 1;
    if (Array.isArray(value)) {
      for (const item of value) total += this.size(item);
    } else if (value instanceof Map) {
      for (const [key, item] of value) total += this.size(key) + this.size(item);
    } else if (value instanceof Uint8Array) {
      total += value.length >> 6;
    } else if (typeof (value as { orValue?: unknown }).orValue === 'function') {
      // cel-js's optional: compared by the value it holds.
      total += this.size((value as { orValue(fallback: null): unknown }).orValue(null));
    } else if (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null) {
      for (const [key, item] of Object.entries(value)) total += 1 + (key.length >> 6) + this.size(item);
    }
    this.sizes.set(value, total);
    return total;
  }

  /** Charges what evaluating a node to `result` walked and built, as its plan says. */
  account(flags: number, result: unknown): void {
    // Comparing an element costs about a quarter of a step of the interpreter (measured: 2 million
    // element comparisons in 19 ms, a step about 40 ns).
    if (flags & WALKED || (flags & MEMBERSHIP && Array.isArray(result))) this.spend(this.size(result) >> 2);
    if (!(flags & BUILT)) return;
    if (typeof result === 'string') {
      if (result.length > CONDITION_BUDGET.stringLength) this.exceed(`it builds a string of ${result.length} characters, more than ${CONDITION_BUDGET.stringLength}`);
      this.spend(result.length >> 6);
    } else if (Array.isArray(result)) {
      if (result.length > CONDITION_BUDGET.listLength) this.exceed(`it builds a list of ${result.length} elements, more than ${CONDITION_BUDGET.listLength}`);
      // map and filter paid for their elements step by step.
      if (flags & COPIED) this.spend(result.length);
    }
  }
}

let current: Meter | undefined;

interface Evaluator {
  run(ast: unknown, ctx: unknown): unknown;
}

/**
 * Meters every evaluation of `environment`. cel-js evaluates every node below the root through
 * its evaluator's `run` (comprehension bodies included, once per element), so wrapping that one
 * method on the environment's evaluator counts everything. The evaluator is private; a probe
 * function, registered under a name no definition may call (conditions may call only the
 * functions on the allow-list), hands it over once. The unit tests of the budget fail if a
 * version of cel-js stops evaluating this way.
 */
export function installMeter(environment: Environment): void {
  let evaluator: Evaluator | undefined;
  environment.registerFunction('workfleetMeterProbe(): bool', function (this: Evaluator) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- handing the evaluator over is the probe's purpose
    evaluator = this;
    return true;
  });
  environment.evaluate('workfleetMeterProbe()', {});
  const target = evaluator;
  if (!target || typeof target.run !== 'function') throw new Error('cel-js did not hand over its evaluator: conditions cannot be metered');
  const run = target.run.bind(target);
  // The hot path of every condition: one comparison per step, one lookup for a plan.
  target.run = (ast: unknown, ctx: unknown): unknown => {
    const meter = current;
    if (meter === undefined) return run(ast, ctx);
    if (++meter.spent > meter.limit) meter.overspent();
    const result = run(ast, ctx);
    const flags = plans.get(ast as object);
    if (flags !== undefined) meter.account(flags, result);
    return result;
  };
}

/**
 * Runs `evaluate` (one synchronous cel-js evaluation) under a fresh budget, within what is left of
 * `session`'s; returns its result, or throws BudgetExceeded when the budget ran out, even where
 * CEL absorbed the failure.
 */
export function withinBudget<T>(evaluate: () => T, session?: ConditionSession): T {
  const shared = session !== undefined && session.remaining < CONDITION_BUDGET.steps;
  const meter = shared
    ? new Meter(session.remaining, `the conditions of this transition together take more than ${CONDITION_BUDGET.transitionSteps} evaluation steps`)
    : new Meter(CONDITION_BUDGET.steps, `it takes more than ${CONDITION_BUDGET.steps} evaluation steps`);
  const outer = current;
  current = meter;
  try {
    let result: T;
    try {
      result = evaluate();
    } catch (error) {
      if (meter.exceeded !== undefined) throw new BudgetExceeded(meter.exceeded);
      throw error;
    }
    if (meter.exceeded !== undefined) throw new BudgetExceeded(meter.exceeded);
    return result;
  } finally {
    current = outer;
    if (session) session.remaining = Math.max(0, session.remaining - Math.min(meter.spent, meter.limit));
  }
}
