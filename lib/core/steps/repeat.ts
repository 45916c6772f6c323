import { stepCondition } from '../machine/data.js';
import { runOf, without } from '../machine/draft.js';
import { completeStep, failStep } from '../machine/step-ends.js';
import { isLive, scheduleUnit, unitRef } from '../machine/units.js';
import type { StepRules } from './kind.js';
import { failOwnUnit, taskStep } from './task.js';

/**
 * A task step with `repeat`: its job runs again, one iteration after another, while
 * `repeat.while` holds (it sees the last output and the iteration), up to `maxIterations`. Each
 * iteration is a new unit with its own job id and idempotency key; the step is its own unit.
 */
export const repeatStep: StepRules = {
  activate(draft, step) {
    draft.setStep(step.id, { ...draft.freshStep(step.id), iteration: 1 });
    scheduleUnit(draft, unitRef(step, { run: runOf(draft.step(step.id)), iteration: 1 }));
  },

  ownsUnit: (state, address) => (address.iteration ?? 1) === (state.iteration ?? 1) && isLive(state),

  unitEnded(draft, ref, outcome) {
    if (outcome.error) return failOwnUnit(draft, ref, { ...outcome, error: outcome.error });
    const { step } = ref;
    const output = outcome.output ?? null;
    const state = draft.stepState(step.id);
    const iteration = state.iteration ?? 1;
    const again = stepCondition(draft, step, 'repeat.while', step.repeat?.while ?? 'false', { output, iteration });
    if ('error' in again) return failStep(draft, step.id, again.error, outcome.at);
    if (again.holds && iteration < (step.repeat?.maxIterations ?? 1)) {
      const next = iteration + 1;
      draft.setStep(step.id, { ...without(state, 'error', 'startedAt', 'finishedAt'), status: 'scheduled', iteration: next, output });
      scheduleUnit(draft, unitRef(step, { run: runOf(state), iteration: next }));
      return;
    }
    completeStep(draft, step.id, output, outcome.at, { iterations: iteration, ...(again.holds ? { stoppedAt: 'maxIterations' } : {}) });
  },

  stop: taskStep.stop,
  outstanding: taskStep.outstanding,
};
