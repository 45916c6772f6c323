import type { Draft } from '../machine/draft.js';
import { timerCommand } from '../machine/jobs.js';
import { completeStep } from '../machine/step-ends.js';
import type { StepRules } from './kind.js';

/**
 * A waitFor step: waits for one of its signals, up to an optional timeout. A signal that arrived
 * before the step waited is kept by the case and taken at activation.
 */
export const waitForStep: StepRules = {
  activate(draft, step) {
    const signals = step.waitFor?.signals ?? [];
    const until = step.waitFor?.timeoutMs === undefined ? undefined : draft.now + step.waitFor.timeoutMs;
    draft.setStep(step.id, { ...draft.freshStep(step.id), status: 'waiting', waitingFor: { signals, ...(until === undefined ? {} : { until }) } });
    draft.emit('step.waiting', draft.now, { signals, ...(until === undefined ? {} : { until }) }, step.id);
    const buffered = (draft.state.signals ?? []).findIndex((signal) => signals.includes(signal.name));
    const signal = draft.state.signals?.[buffered];
    if (signal) {
      draft.patchCase({ signals: (draft.state.signals ?? []).filter((_, index) => index !== buffered) });
      completeStep(draft, step.id, { signal: signal.name, payload: signal.payload }, draft.now, { signal: signal.name, buffered: true });
    } else if (until !== undefined) draft.commands.push(timerCommand(draft.state, step.id, 'signalTimeout', until));
  },

  event(draft, step, event) {
    if (event.type !== 'timerFired' || event.kind !== 'signalTimeout' || !draft.stepState(step.id).waitingFor?.signals) return;
    completeStep(draft, step.id, { signal: null, timedOut: true }, event.at, { timedOut: true });
  },

  stop() {
    // Nothing to stop: a timeout that fires for a step no longer waiting changes nothing.
  },

  outstanding(state, step, stepState) {
    const until = stepState.waitingFor?.until;
    return stepState.status === 'waiting' && until !== undefined ? [timerCommand(state, step.id, 'signalTimeout', until)] : [];
  },
};

/** Whether a step waits for signal `name` now. */
export const waitsFor = (draft: Draft, stepId: string, name: string): boolean => {
  const state = draft.step(stepId);
  return state?.status === 'waiting' && state.waitingFor?.signals?.includes(name) === true;
};

/** Hands a signal to the first step waiting for it; true when one took it. */
export function deliverSignal(draft: Draft, name: string, payload: unknown, at: number): boolean {
  const taker = draft.workflow.order.find((id) => waitsFor(draft, id, name));
  if (taker === undefined) return false;
  completeStep(draft, taker, { signal: name, payload }, at, { signal: name });
  return true;
}
