import type { CaseEvent, ErrorInfo, UnitAddress, UnitState } from '../state.js';
import { compensationEnded } from './compensation.js';
import { runOf, without, type Draft } from './draft.js';
import { acceptsEnd, markStarted, readUnit, unitRef, writeUnit, type UnitOutcome, type UnitRef } from './units.js';

/** Reports workers send about one unit of a step. */
export type UnitEvent = CaseEvent & { type: 'stepStarted' | 'stepRetrying' | 'stepCompleted' | 'stepFailed' | 'stepDeferred' };

export const isUnitEvent = (event: CaseEvent): event is UnitEvent =>
  event.type === 'stepStarted' || event.type === 'stepRetrying' || event.type === 'stepCompleted' || event.type === 'stepFailed' || event.type === 'stepDeferred';

/**
 * Applies a worker's report about a unit, if it is about the current unit and not yet
 * accounted for: reports come at least once and in any order, so a late or repeated one
 * changes nothing.
 */
export function applyUnitEvent(draft: Draft, event: UnitEvent): void {
  const ref = unitFor(draft, event);
  if (!ref) return;
  const unit = readUnit(draft, ref);
  if (event.type === 'stepStarted') return markStarted(draft, ref, event.attempt, event.at, event.worker);
  if (!acceptsEnd(unit, event.attempt)) return;
  switch (event.type) {
    case 'stepRetrying': {
      markStarted(draft, ref, event.attempt, event.startedAt);
      writeUnit(draft, ref, { ...current(draft, ref), status: 'scheduled', attempts: event.attempt, attemptsDone: event.attempt, error: event.error, nextAttemptAt: event.retryAt });
      const data = { attempt: event.attempt, ...ref.label, error: event.error, retryAt: event.retryAt, durationMs: event.at - event.startedAt };
      return draft.emit('step.retried', event.at, data, event.stepId);
    }
    case 'stepCompleted': {
      markStarted(draft, ref, event.attempt, event.startedAt);
      const ended = without(current(draft, ref), 'error', 'nextAttemptAt', 'deferredBy', 'deferredFor');
      writeUnit(draft, ref, { ...ended, status: 'completed', attempts: event.attempt, attemptsDone: event.attempt, finishedAt: event.at, output: event.output });
      draft.emit('step.completed', event.at, { attempt: event.attempt, ...ref.label, durationMs: event.at - event.startedAt }, event.stepId);
      return unitEnded(draft, ref, { output: event.output, at: event.at });
    }
    case 'stepFailed': {
      if (event.startedAt !== undefined) markStarted(draft, ref, event.attempt, event.startedAt);
      const started = current(draft, ref);
      const error: ErrorInfo = { ...event.error, stepId: event.stepId, attempt: event.attempt };
      const attempts = Math.max(started.attempts, event.attempt);
      writeUnit(draft, ref, { ...without(started, 'nextAttemptAt', 'deferredBy', 'deferredFor'), status: 'failed', attempts, attemptsDone: event.attempt, finishedAt: event.at, error });
      if (ref.address.instance !== undefined) draft.emit('step.failed', event.at, { attempt: event.attempt, ...ref.label, error }, event.stepId);
      // The step's own unit: the step runs until its kind fails it (failStep records it and applies its failure policy).
      if (ref.address.instance === undefined && !ref.address.compensation) draft.setStep(event.stepId, { ...draft.stepState(event.stepId), status: 'running' });
      return unitEnded(draft, ref, { error, at: event.at });
    }
    case 'stepDeferred': {
      // A breaker's deferral names the breaker; a limit's names the limit and key it waits for.
      if (event.limit) {
        if (unit.nextAttemptAt === event.until && unit.deferredFor?.kind === event.limit.kind && unit.deferredFor.key === event.limit.key) return;
        writeUnit(draft, ref, { ...without(unit, 'deferredBy'), status: 'scheduled', nextAttemptAt: event.until, deferredFor: event.limit });
        return draft.emit('step.deferred', event.at, { attempt: event.attempt, ...ref.label, until: event.until, limit: event.limit }, event.stepId);
      }
      if (unit.deferredBy === event.breaker && unit.nextAttemptAt === event.until) return;
      writeUnit(draft, ref, { ...without(unit, 'deferredFor'), status: 'scheduled', nextAttemptAt: event.until, deferredBy: event.breaker });
      return draft.emit('step.deferred', event.at, { attempt: event.attempt, ...ref.label, breaker: event.breaker, until: event.until }, event.stepId);
    }
  }
}

/** The unit a worker report is about, if it is still the current one. */
function unitFor(draft: Draft, event: UnitAddress & { stepId: string }): UnitRef | undefined {
  const step = draft.workflow.steps.get(event.stepId);
  const state = draft.step(event.stepId);
  if (!step || !state || (event.run ?? 0) !== runOf(state)) return undefined;
  const ref = unitRef(step, event);
  if (event.compensation) return state.compensation ? ref : undefined;
  if (event.instance !== undefined) return state.instances?.[String(event.instance)] ? ref : undefined;
  return draft.kindOf(step).ownsUnit?.(state, event) ? ref : undefined;
}

/** The unit as it is now (after markStarted may have changed it); it exists, or unitFor would not have found it. */
function current(draft: Draft, ref: UnitRef): UnitState {
  return readUnit(draft, ref) as UnitState;
}

function unitEnded(draft: Draft, ref: UnitRef, outcome: UnitOutcome): void {
  if (ref.address.compensation) return compensationEnded(draft, ref, outcome);
  draft.kindOf(ref.step).unitEnded?.(draft, ref, outcome);
}
