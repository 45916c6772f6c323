import type { CompiledStep } from '../definition.js';
import { isTerminalStep } from '../state.js';
import { renderTemplate } from '../template.js';
import { settleCompensation } from './compensation.js';
import { scope, stepCondition } from './data.js';
import type { Draft } from './draft.js';
import { endCase, failStep } from './step-ends.js';

/**
 * After every event the case settles: steps whose dependencies are done start or are skipped
 * (a `when` that is false, or nothing but skipped steps before them: dead-path elimination, so
 * a join waits only for branches that were taken), compensations run one by one in reverse,
 * and the case ends when every step has.
 */
export function settle(draft: Draft): void {
  if (!draft.isOpen) return;
  // Waiting for its slot of the workflow's concurrency key: nothing starts yet.
  if (draft.state.concurrency?.waiting) return;
  if (draft.state.compensating) return settleCompensation(draft);
  for (let changed = true; changed && draft.isOpen && !draft.state.compensating;) {
    changed = false;
    for (const id of draft.workflow.order) {
      const step = draft.workflow.steps.get(id) as CompiledStep;
      if (draft.step(id)?.status !== 'pending' || !step.after.every((dependency) => resolved(draft, dependency))) continue;
      changed = true;
      startOrSkip(draft, step);
    }
  }
  if (!draft.isOpen) return;
  if (draft.state.compensating) return settleCompensation(draft);
  const states = draft.workflow.order.map((id) => draft.step(id));
  if (states.every((state) => state && isTerminalStep(state.status))) return endCase(draft, 'completed', { output: caseOutput(draft) });
  const busy = states.some((state) => state?.status === 'scheduled' || state?.status === 'running');
  const status = busy || !states.some((state) => state?.status === 'waiting') ? 'running' : 'waiting';
  if (draft.state.status !== status) draft.patchCase({ status });
}

/** A dependency is resolved when it completed, was skipped, or failed with `onFailure: continue`. */
function resolved(draft: Draft, id: string): boolean {
  const state = draft.step(id);
  const step = draft.workflow.steps.get(id);
  return state?.status === 'completed' || state?.status === 'skipped' || (state?.status === 'failed' && step?.onFailure === 'continue');
}

function startOrSkip(draft: Draft, step: CompiledStep): void {
  if (step.after.length > 0 && step.after.every((dependency) => draft.step(dependency)?.status === 'skipped')) {
    return skip(draft, step.id, 'every step it waits for was skipped');
  }
  if (step.when !== undefined) {
    const when = stepCondition(draft, step, 'when', step.when);
    if ('error' in when) {
      draft.setStep(step.id, { ...draft.stepState(step.id), status: 'running' });
      return failStep(draft, step.id, when.error, draft.now);
    }
    if (!when.holds) return skip(draft, step.id, `condition is false: ${step.when}`);
  }
  draft.kindOf(step).activate(draft, step);
}

function skip(draft: Draft, stepId: string, reason: string): void {
  draft.setStep(stepId, { ...draft.stepState(stepId), status: 'skipped', skipReason: reason, finishedAt: draft.now });
  draft.emit('step.skipped', draft.now, { reason }, stepId);
}

/** The case's output: the workflow's `output` template, or every sink step's output by its id. */
function caseOutput(draft: Draft): unknown {
  const { workflow } = draft;
  if (workflow.output !== undefined) return renderTemplate(workflow.output, scope(draft.state));
  const output: Record<string, unknown> = {};
  for (const sink of workflow.sinks) output[sink] = draft.state.steps[sink]?.output ?? null;
  return output;
}
