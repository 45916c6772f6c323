import type { CompiledStep } from '../definition.js';
import type { Draft } from '../machine/draft.js';
import type { UnitOutcome, UnitRef } from '../machine/units.js';
import type { CaseEvent, CaseState, Command, StepState, UnitAddress } from '../state.js';

/** Events addressed to one step of a kind that waits for something other than a worker: a timer, a child case. */
export type StepEvent = CaseEvent & { type: 'timerFired' | 'childStarted' | 'childFinished' };

/**
 * What a kind of step does, rule by rule. The dispatcher (transition.ts) knows no kind; each
 * kind knows nothing of the others. Units (attempts of a job) are kept by units.ts for every
 * kind alike; compensations by compensation.ts.
 */
export interface StepRules {
  /** Starts the step: every step it waits for is done and its `when` holds. */
  activate: (draft: Draft, step: CompiledStep) => void;
  /** Whether a worker report about the step's own unit (not an item, not a compensation) is about the current one. */
  ownsUnit?: (state: StepState, address: UnitAddress) => boolean;
  /** A unit of the step ended for good: completed, or failed after its last attempt. */
  unitEnded?: (draft: Draft, ref: UnitRef, outcome: UnitOutcome) => void;
  /** A timer fired for the step, or its child case started or finished. */
  event?: (draft: Draft, step: CompiledStep, event: StepEvent) => void;
  /** Stops the step's work (jobs, items, child case) before the step is cancelled or failed. */
  stop: (draft: Draft, step: CompiledStep, reason: string) => void;
  /** The work the step should have under way now; re-issuing it is harmless (ids are deterministic). */
  outstanding: (state: CaseState, step: CompiledStep, stepState: StepState) => Command[];
}
