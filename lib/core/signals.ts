import type { CompiledWorkflow } from './definition.js';
import { isTerminalStep, type StepState } from './state.js';

/**
 * The signals a case can still use: those of its `waitFor` steps that have not finished (a step
 * not reached yet may wait later, a repeating one may wait again). Any other signal would only be
 * buffered for ever, so the engine refuses it and names these instead.
 */
export function acceptedSignals(workflow: CompiledWorkflow, steps: Readonly<Record<string, StepState>>): string[] {
  const accepted = new Set<string>();
  for (const [id, step] of workflow.steps) {
    const state = steps[id];
    if (state && isTerminalStep(state.status)) continue;
    for (const name of step.waitFor?.signals ?? []) accepted.add(name);
  }
  return [...accepted].sort();
}
