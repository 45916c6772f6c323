import type { CompiledStep } from '../definition.js';
import { runOf, type Draft } from '../machine/draft.js';
import { buildUnitJob, jobRef, unitJobId } from '../machine/jobs.js';
import { failStep } from '../machine/step-ends.js';
import { isLive, scheduleUnit, unitRef, type UnitOutcome, type UnitRef } from '../machine/units.js';
import type { StepState } from '../state.js';
import type { StepRules } from './kind.js';

/** A task step: one job, run with retries by a worker; the step is its own unit. */
export const taskStep: StepRules = {
  activate(draft, step) {
    draft.setStep(step.id, draft.freshStep(step.id));
    scheduleUnit(draft, unitRef(step, { run: runOf(draft.step(step.id)) }));
  },

  ownsUnit: (state) => isLive(state),

  unitEnded(draft, ref, outcome) {
    if (outcome.error) return failOwnUnit(draft, ref, { ...outcome, error: outcome.error });
    const state = draft.stepState(ref.step.id);
    draft.setStep(ref.step.id, { ...state, status: 'completed', finishedAt: outcome.at, output: outcome.output ?? null });
  },

  stop(draft, step) {
    const state = draft.stepState(step.id);
    if (isLive(state)) draft.commands.push({ type: 'cancelJobs', jobs: [jobRef(step, unitJobId(draft.state.id, step.id, ownUnitAddress(step, state)))] });
  },

  outstanding(state, step, stepState) {
    return isLive(stepState) ? [buildUnitJob(state, step, ownUnitAddress(step, stepState))] : [];
  },
};

/** The address of the unit a task or repeat step is running now. */
function ownUnitAddress(step: CompiledStep, state: StepState): { run: number; iteration?: number } {
  return { run: runOf(state), ...(step.repeat ? { iteration: state.iteration ?? 1 } : {}) };
}

/** The step's own unit failed for good: the step fails, and its failure policy applies. */
export function failOwnUnit(draft: Draft, ref: UnitRef, outcome: UnitOutcome & { error: NonNullable<UnitOutcome['error']> }): void {
  const { error } = outcome;
  failStep(draft, ref.step.id, error, outcome.at, typeof error.attempt === 'number' ? { attempt: error.attempt } : {});
}
