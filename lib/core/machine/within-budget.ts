import { caseBytes, mayExceedBudget, tooLargeError, tooLargeSubstitute, type CaseBudget } from '../case-size.js';
import type { CaseEvent, UnitAddress } from '../state.js';
import { refuseSignal } from './case-events.js';
import type { Draft } from './draft.js';
import { settle } from './settle.js';
import { stopCase } from './step-ends.js';

/**
 * Applies one event (and settles) unless that takes the case past its budget. Then the event is
 * undone and, in its place, a step's result fails the step with CASE_TOO_LARGE (its failure
 * policy applies), a signal is refused, and anything else (or a failure whose aftermath still
 * does not fit) fails the case. Events that only stop or remark (mayExceedBudget) always apply,
 * so a case over its budget can still be cancelled, fail or be marked stuck.
 */
export function applyWithinBudget(draft: Draft, event: CaseEvent, budget: CaseBudget, apply: (draft: Draft, event: CaseEvent) => void): void {
  const applyAndSettle = (applied: CaseEvent) => {
    apply(draft, applied);
    settle(draft);
  };
  const start = draft.checkpoint();
  applyAndSettle(event);
  if (mayExceedBudget(event) || draft.events.length === start.events) return;
  const bytes = caseBytes(draft.state, start.state);
  if (bytes <= budget.maxCaseBytes) return;
  draft.restore(start);
  const error = tooLargeError(bytes, budget, growthOf(event));
  if (event.type === 'signal') return refuseSignal(draft, event, error);
  const substitute = tooLargeSubstitute(event, error);
  if (substitute) {
    applyAndSettle(substitute);
    // While compensations run, the case cannot be failed over again: the failure stands as it is.
    if (caseBytes(draft.state, start.state) <= budget.maxCaseBytes || draft.state.compensating) return;
    draft.restore(start);
  }
  if (draft.isOpen && !draft.state.compensating) stopCase(draft, 'failed', error, false);
  else applyAndSettle(event);
}

/** What grew the case, in the words of its CASE_TOO_LARGE error. */
function growthOf(event: CaseEvent): string {
  const unit = (stepId: string, address: UnitAddress) => `step "${stepId}"${address.instance === undefined ? '' : ` item ${address.instance}`}`;
  if (event.type === 'stepCompleted') return `the output of ${unit(event.stepId, event)}`;
  if (event.type === 'signal') return `signal "${event.name}"`;
  if (event.type === 'childFinished') return `the output of sub-workflow case ${event.childId}`;
  return `what follows ${event.type}${'stepId' in event ? ` of step "${event.stepId}"` : ''}`;
}
