import { ErrorCode } from '../error-codes.js';
import { scope } from '../machine/data.js';
import { timerCommand } from '../machine/jobs.js';
import { completeStep, failStep } from '../machine/step-ends.js';
import { renderTemplate } from '../template.js';
import type { StepRules } from './kind.js';

/** A sleep step: waits `for` a duration or `until` a time rendered at activation, on a timer. */
export const sleepStep: StepRules = {
  activate(draft, step) {
    const fresh = draft.freshStep(step.id);
    const until = step.sleep?.forMs !== undefined ? draft.now + step.sleep.forMs : Date.parse(String(renderTemplate(step.sleep?.until ?? '', scope(draft.state))));
    draft.setStep(step.id, fresh);
    if (Number.isNaN(until)) {
      return failStep(draft, step.id, { code: ErrorCode.sleepUntilInvalid, message: `sleep until ${step.sleep?.until ?? ''} is not a time` }, draft.now);
    }
    if (until <= draft.now) return completeStep(draft, step.id, { sleptUntil: new Date(until).toISOString() }, draft.now);
    draft.setStep(step.id, { ...fresh, status: 'waiting', waitingFor: { until } });
    draft.emit('step.waiting', draft.now, { until }, step.id);
    draft.commands.push(timerCommand(draft.state, step.id, 'sleep', until));
  },

  event(draft, step, event) {
    const state = draft.stepState(step.id);
    if (event.type !== 'timerFired' || event.kind !== 'sleep' || state.waitingFor?.until === undefined || state.waitingFor.signals !== undefined) return;
    completeStep(draft, step.id, { sleptUntil: new Date(state.waitingFor.until).toISOString() }, event.at);
  },

  stop() {
    // Nothing to stop: a timer that fires for a step no longer waiting changes nothing.
  },

  outstanding(state, step, stepState) {
    const until = stepState.waitingFor?.until;
    return stepState.status === 'waiting' && until !== undefined ? [timerCommand(state, step.id, 'sleep', until)] : [];
  },
};
