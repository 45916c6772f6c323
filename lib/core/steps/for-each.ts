import { LIMITS, type CompiledStep } from '../definition.js';
import { ErrorCode } from '../error-codes.js';
import { scope } from '../machine/data.js';
import { runOf, type Draft } from '../machine/draft.js';
import { buildUnitJob, jobRef, unitJobId } from '../machine/jobs.js';
import { completeStep, failStep, stopWorkOf } from '../machine/step-ends.js';
import { isLive, scheduleUnit, unitRef } from '../machine/units.js';
import type { Command, ErrorInfo, JobRef, UnitState } from '../state.js';
import { renderTemplate } from '../template.js';
import type { StepRules } from './kind.js';

/**
 * A task step with `forEach`: one unit per item of a list rendered at activation, at most
 * `concurrency` of them running at once. The step ends when every item has (`failure: collect`,
 * its output lists each item's output and the failures) or at the first item that fails for good
 * (`failFast`).
 */
export const forEachStep: StepRules = {
  activate(draft, step) {
    const fresh = draft.freshStep(step.id);
    const items = renderTemplate(step.forEach?.items ?? null, scope(draft.state));
    draft.setStep(step.id, { ...fresh, status: 'running' });
    if (!Array.isArray(items)) {
      return failStep(draft, step.id, { code: ErrorCode.itemsInvalid, message: `forEach items ${step.forEach?.items} is not an array` }, draft.now);
    }
    if (items.length > LIMITS.maxForEachItems) {
      return failStep(draft, step.id, { code: ErrorCode.itemsInvalid, message: `forEach has ${items.length} items; at most ${LIMITS.maxForEachItems}` }, draft.now);
    }
    const instances: Record<string, UnitState> = {};
    items.forEach((_item, index) => (instances[String(index)] = { status: 'pending', attempts: 0, attemptsDone: 0 }));
    draft.setStep(step.id, { ...fresh, status: 'running', instances, itemCount: items.length });
    draft.emit('step.started', draft.now, { items: items.length, concurrency: step.forEach?.concurrency }, step.id);
    if (items.length === 0) completeStep(draft, step.id, { items: [], failed: [] }, draft.now, { items: 0 });
    else fillInstances(draft, step);
  },

  unitEnded(draft, ref) {
    if (ref.address.instance !== undefined && draft.isOpen && !draft.state.compensating) settleInstances(draft, ref.step);
  },

  stop(draft, step) {
    const state = draft.stepState(step.id);
    if (!state.instances) return;
    const jobs: JobRef[] = [];
    const instances = { ...state.instances };
    for (const [index, unit] of Object.entries(instances)) {
      if (isLive(unit)) jobs.push(jobRef(step, unitJobId(draft.state.id, step.id, { run: runOf(state), instance: Number(index) })));
      if (isLive(unit) || unit.status === 'pending') instances[index] = { ...unit, status: 'cancelled' };
    }
    if (jobs.length > 0) draft.commands.push({ type: 'cancelJobs', jobs });
    draft.setStep(step.id, { ...state, instances });
  },

  outstanding(state, step, stepState) {
    if (stepState.status !== 'running') return [];
    const commands: Command[] = [];
    for (const [index, unit] of Object.entries(stepState.instances ?? {})) {
      if (isLive(unit)) commands.push(buildUnitJob(state, step, { run: runOf(stepState), instance: Number(index) }));
    }
    return commands;
  },
};

/** Schedules pending items up to the step's concurrency. */
function fillInstances(draft: Draft, step: CompiledStep): void {
  const state = draft.stepState(step.id);
  const units = Object.entries(state.instances ?? {});
  let active = units.filter(([, unit]) => isLive(unit)).length;
  for (const [index, unit] of units) {
    if (active >= (step.forEach?.concurrency ?? 1)) break;
    if (unit.status !== 'pending') continue;
    scheduleUnit(draft, unitRef(step, { run: runOf(state), instance: Number(index) }));
    active += 1;
  }
}

/** After an item ended: the step ends when every item has, or at the first failure with failFast; else more items start. */
function settleInstances(draft: Draft, step: CompiledStep): void {
  const state = draft.stepState(step.id);
  if (state.status !== 'running') return;
  const units = Object.entries(state.instances ?? {});
  const failedUnits = units.filter(([, unit]) => unit.status === 'failed');
  const firstFailed = failedUnits[0];
  if (step.forEach?.failure === 'failFast' && firstFailed) {
    const [index, unit] = firstFailed;
    const error: ErrorInfo = {
      code: ErrorCode.itemFailed,
      message: `item ${index} failed: ${unit.error?.message ?? 'unknown error'}`,
      details: { index: Number(index), cause: unit.error ?? null },
    };
    stopWorkOf(draft, step.id, 'another item failed');
    failStep(draft, step.id, error, draft.now);
    return;
  }
  if (units.every(([, unit]) => unit.status === 'completed' || unit.status === 'failed')) {
    const items = units.map(([, unit]) => (unit.status === 'completed' ? (unit.output ?? null) : null));
    const failed = failedUnits.map(([index, unit]) => ({ index: Number(index), error: unit.error ?? null }));
    completeStep(draft, step.id, { items, failed }, draft.now, { items: units.length, failed: failed.length });
    return;
  }
  fillInstances(draft, step);
}
