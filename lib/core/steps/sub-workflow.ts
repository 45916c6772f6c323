import { LIMITS } from '../definition.js';
import { ErrorCode } from '../error-codes.js';
import { runOf } from '../machine/draft.js';
import { childCommand } from '../machine/jobs.js';
import { completeStep, failStep } from '../machine/step-ends.js';
import type { StepRules } from './kind.js';

/**
 * A sub-workflow step (`workflow:`): starts a child case and ends as it ends. The child is found
 * again by its idempotency key (parent, step, run), so a start issued twice makes one child.
 */
export const subWorkflowStep: StepRules = {
  activate(draft, step) {
    const depth = (draft.state.depth ?? 0) + 1;
    draft.setStep(step.id, { ...draft.freshStep(step.id), status: 'running', startedAt: draft.now });
    draft.emit('step.started', draft.now, { workflow: step.workflow?.name }, step.id);
    if (depth > LIMITS.maxNesting) {
      return failStep(draft, step.id, { code: ErrorCode.nestingTooDeep, message: `sub-workflows nest at most ${LIMITS.maxNesting} deep` }, draft.now);
    }
    draft.commands.push(childCommand(draft.state, step));
  },

  event(draft, step, event) {
    const state = draft.stepState(step.id);
    if (event.type === 'timerFired' || state.status !== 'running' || runOf(state) !== event.run) return;
    if (event.type === 'childStarted') {
      if (state.childCaseId === event.childId) return;
      draft.setStep(step.id, { ...state, childCaseId: event.childId });
      draft.emit('child.started', event.at, { childId: event.childId }, step.id);
      return;
    }
    draft.setStep(step.id, { ...state, childCaseId: event.childId });
    if (event.status === 'completed') return completeStep(draft, step.id, event.output ?? null, event.at, { childId: event.childId });
    const error = {
      code: event.status === 'cancelled' ? ErrorCode.childCancelled : ErrorCode.childFailed,
      message: `sub-workflow case ${event.childId} ${event.status}${event.error ? `: ${event.error.message}` : ''}`,
      details: { childId: event.childId, cause: event.error ?? null },
    };
    failStep(draft, step.id, error, event.at, { childId: event.childId });
  },

  stop(draft, step, reason) {
    if (draft.stepState(step.id).status === 'running') draft.commands.push({ type: 'cancelChildren', caseId: draft.state.id, reason });
  },

  outstanding(state, step, stepState) {
    return stepState.status === 'running' && stepState.childCaseId === undefined ? [childCommand(state, step)] : [];
  },
};
