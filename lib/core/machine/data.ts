import type { CompiledStep } from '../definition.js';
import { ErrorCode } from '../error-codes.js';
import { ConditionBudgetError, ConditionError, evaluateCondition, stepsNeededBy } from '../expressions.js';
import type { CaseState, ErrorInfo } from '../state.js';
import type { TemplateScope } from '../template.js';
import type { Draft } from './draft.js';

/** What templates (step inputs, forEach items, sleep times, the case output) read of a case. */
export function scope(state: CaseState, extra: Partial<TemplateScope> = {}): TemplateScope {
  const stepOutputs: Record<string, unknown> = {};
  for (const [id, step] of Object.entries(state.steps)) {
    if (step.status === 'completed' || step.status === 'compensated' || step.status === 'failed') stepOutputs[id] = step.output ?? null;
  }
  return { input: state.input, stepOutputs, case: { id: state.id, workflow: state.workflow, version: state.version }, ...extra };
}

/**
 * The variables of `expression`: its `steps` holds only the steps it reads (all when it reads them
 * by computed keys). What it sees of a step is kept per step state for the transition, so that the
 * CEL values made of it are made once (`ConditionSession.memo`).
 */
function conditionVariables(draft: Draft, expression: string, extra: Record<string, unknown>) {
  const state = draft.state;
  const steps: Record<string, { output: unknown; status: string }> = {};
  const names = stepsNeededBy(expression);
  const read = names === undefined ? Object.entries(state.steps) : names.flatMap((name) => (Object.hasOwn(state.steps, name) ? [[name, state.steps[name]] as const] : []));
  for (const [id, step] of read) {
    if (!step) continue;
    let view = draft.conditionViews.get(step);
    if (!view) draft.conditionViews.set(step, (view = { output: step.output ?? null, status: step.status }));
    steps[id] = view;
  }
  return { input: state.input, steps, case: { id: state.id, workflow: state.workflow, version: state.version }, ...extra };
}

/** The step error of a condition that failed or ran out of budget: neither is retried (the same data gives the same answer). */
function conditionErrorInfo(error: unknown): ErrorInfo {
  const known = error instanceof ConditionError || error instanceof ConditionBudgetError;
  return {
    code: known ? error.code : ErrorCode.conditionFailed,
    message: (error as Error).message,
    retryable: false,
    ...(known && error.details !== undefined ? { details: error.details } : {}),
  };
}

/** Evaluates a step's condition (`when`, `repeat.while`) within the transition's budget: its value, or the step error it ends in. */
export function stepCondition(draft: Draft, step: CompiledStep, field: 'when' | 'repeat.while', expression: string, extra: Record<string, unknown> = {}): { holds: boolean } | { error: ErrorInfo } {
  try {
    return { holds: evaluateCondition(expression, conditionVariables(draft, expression, extra), { stepId: step.id, field }, draft.conditions) };
  } catch (error) {
    return { error: conditionErrorInfo(error) };
  }
}
