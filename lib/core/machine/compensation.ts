import type { CompiledStep } from '../definition.js';
import { runOf, type Draft } from './draft.js';
import { endCase } from './step-ends.js';
import { scheduleUnit, unitRef, type UnitOutcome, type UnitRef } from './units.js';

/**
 * Compensations: when a case stops with `compensate`, the completed steps that declare one are
 * undone one at a time, the latest completed first; then the case ends as it was going to,
 * naming what was compensated and what failed to be.
 */
export function settleCompensation(draft: Draft): void {
  const ending = draft.state.compensating;
  if (!ending) return;
  const candidates = draft.workflow.order
    .filter((id) => draft.workflow.steps.get(id)?.compensate && (draft.step(id)?.status === 'completed' || draft.step(id)?.compensation))
    .sort((a, b) => (draft.step(b)?.finishedAt ?? 0) - (draft.step(a)?.finishedAt ?? 0));
  for (const id of candidates) {
    const unit = draft.step(id)?.compensation;
    if (unit && (unit.status === 'scheduled' || unit.status === 'running')) return;
    if (!unit) {
      const step = draft.workflow.steps.get(id) as CompiledStep;
      scheduleUnit(draft, unitRef(step, { run: runOf(draft.step(id)), compensation: true }));
      return;
    }
  }
  const compensated = candidates.filter((id) => draft.step(id)?.status === 'compensated');
  const failed = candidates.filter((id) => draft.step(id)?.compensation?.status === 'failed');
  draft.patchCase({ compensating: undefined });
  endCase(draft, ending.status, { error: { ...ending.error, details: { ...(ending.error.details as object | undefined), compensated, compensationFailed: failed } } });
}

/** A compensation ended: the step is compensated, or the failure is recorded (the next compensation runs either way). */
export function compensationEnded(draft: Draft, ref: UnitRef, outcome: UnitOutcome): void {
  if (outcome.error) return draft.emit('compensation.failed', outcome.at, { error: outcome.error }, ref.step.id);
  draft.setStep(ref.step.id, { ...draft.stepState(ref.step.id), status: 'compensated' });
  draft.emit('step.compensated', outcome.at, {}, ref.step.id);
}
