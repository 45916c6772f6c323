import { ErrorCode } from './error-codes.js';
import type { CaseEvent, CaseState, ErrorInfo, StepState, UnitState } from './state.js';

/**
 * How large a case may grow. A case is one MongoDB document (16 MiB at most) and a transition
 * one history entry that may carry up to the whole case (a forEach step that ends writes every
 * item's output again as its own), so the budget stays well under the limit: a case that
 * outgrew its document could never commit again and would jam for ever.
 */
export interface CaseBudget {
  /** Serialized size of the whole case: input, steps with their outputs, buffered signals. */
  maxCaseBytes: number;
}

export const CASE_BUDGET_LIMITS = {
  /** Default case budget: 4 MiB, a quarter of MongoDB's document limit. */
  defaultMaxCaseBytes: 4 * 1024 * 1024,
  /** The largest budget a deployment may set: half the document limit, for the history entry that repeats the case's outputs. */
  maxCaseBytes: 8 * 1024 * 1024,
  /** The smallest: a case input (512 KiB) and a step output (1 MiB) must fit. */
  minCaseBytes: 2 * 1024 * 1024,
  /** Signals kept for steps not yet waiting, as JSON: a share of the budget, so that buffered signals alone never fill a case. */
  maxBufferedSignalBytes: 1024 * 1024,
} as const;

export const DEFAULT_CASE_BUDGET: CaseBudget = { maxCaseBytes: CASE_BUDGET_LIMITS.defaultMaxCaseBytes };

const NON_ASCII = /[^\x00-\x7f]/;

/** UTF-8 length of a string: what it takes in a BSON document. */
export function utf8Length(text: string): number {
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code < 0xdc00 && index + 1 < text.length) {
      // A surrogate pair: one code point of four bytes.
      bytes += 4;
      index += 1;
    } else bytes += 3;
  }
  return bytes;
}

/** Serialized size of a JSON value (as the store keeps payloads: JSON text). */
export function jsonBytes(value: unknown): number {
  return utf8Length(JSON.stringify(value ?? null) ?? 'null');
}

/**
 * Sizes of parts of a state already measured. States are immutable and a transition copies only
 * what it changes, so an unchanged step, item or signal keeps its object and is measured once:
 * measuring a case after a transition costs the parts that changed (and a lookup per item of a
 * forEach step that changed). Keyed weakly: a forgotten state takes its sizes with it.
 */
const measured = new WeakMap<object, number>();

function remembered<T extends object>(part: T, measure: (part: T) => number): number {
  const known = measured.get(part);
  if (known !== undefined) return known;
  const bytes = measure(part);
  measured.set(part, bytes);
  return bytes;
}

const valueBytes = (value: unknown): number => (value !== null && typeof value === 'object' ? remembered(value, jsonBytes) : jsonBytes(value));

const unitBytes = (unit: UnitState): number => remembered(unit, jsonBytes);

/** The items' share of a forEach step's size, kept apart so the step's next version can start from it. */
const itemTotals = new WeakMap<StepState, number>();

/**
 * The size of a step. A forEach step changes with each of its items (a new object each time),
 * so given its version before the transition (`hint`), its items are measured as that total
 * plus the items that changed (an identity check per item) rather than looked up one by one.
 */
function stepBytes(step: StepState, hint: StepState | undefined): number {
  return remembered(step, (part) => {
    const { instances, output, ...rest } = part;
    let items = 0;
    const base = hint?.instances && hint.itemCount === part.itemCount && hint.run === part.run ? itemTotals.get(hint) : undefined;
    if (instances && hint?.instances && base !== undefined) {
      // Within one run a step's items are all made when it starts and none goes away.
      items = base;
      for (const key in instances) {
        const unit = instances[key] as UnitState;
        const before = hint.instances[key];
        if (unit !== before) items += unitBytes(unit) - (before === undefined ? 0 : unitBytes(before));
      }
    } else for (const unit of Object.values(instances ?? {})) items += unitBytes(unit);
    if (instances) itemTotals.set(part, items);
    return jsonBytes(rest) + (output === undefined ? 0 : valueBytes(output)) + items;
  });
}

/** Buffered signals' payloads, as JSON. */
export function bufferedSignalBytes(state: Pick<CaseState, 'signals'>): number {
  let bytes = 0;
  for (const signal of state.signals ?? []) bytes += remembered(signal, jsonBytes);
  return bytes;
}

/**
 * The serialized size of a case as the store keeps it, give or take field names: a projection
 * document holds this much, and no history entry holds more. `before`: the state the transition
 * started from, whose measured parts the changed ones are measured against.
 */
export function caseBytes(state: CaseState, before?: CaseState): number {
  const { steps, signals: _signals, input, output, ...rest } = state;
  let bytes = jsonBytes(rest) + valueBytes(input) + (output === undefined ? 0 : valueBytes(output)) + bufferedSignalBytes(state);
  for (const [id, step] of Object.entries(steps)) bytes += stepBytes(step, before?.steps[id]);
  return bytes;
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MiB`;

/** The error of a change that would grow a case past its budget. */
export function tooLargeError(bytes: number, budget: CaseBudget, what: string): ErrorInfo {
  return {
    code: ErrorCode.caseTooLarge,
    message: `${what} would grow the case to ${mib(bytes)}, past its budget of ${mib(budget.maxCaseBytes)} (CASE_MAX_BYTES)`,
    retryable: false,
    details: { bytes, maxCaseBytes: budget.maxCaseBytes },
  };
}

/**
 * Events whose transition may go past the budget: they only stop work or remark on the case, so
 * they shrink it or grow it by a few bytes, and a case over its budget (a budget lowered, a case
 * from before budgets) must still be able to end.
 */
export function mayExceedBudget(event: CaseEvent): boolean {
  return event.type === 'cancel' || event.type === 'deadlineExceeded' || event.type === 'stuck' || event.type === 'stepFailed' || event.type === 'retry';
}

/**
 * What stands in for an event whose transition would take the case past its budget: a step's
 * result that does not fit fails the step (not retryable: the same output would not fit again),
 * and the workflow's failure policy takes it from there. Undefined for events that carry no
 * result of a step: a signal is refused, anything else fails the case.
 */
export function tooLargeSubstitute(event: CaseEvent, error: ErrorInfo): CaseEvent | undefined {
  switch (event.type) {
    case 'stepCompleted': {
      const { output: _output, type: _type, ...unit } = event;
      return { ...unit, type: 'stepFailed', error };
    }
    case 'childFinished':
      if (event.status !== 'completed') return undefined;
      return { type: 'childFinished', stepId: event.stepId, run: event.run, childId: event.childId, status: 'failed', error, at: event.at };
    default:
      return undefined;
  }
}
