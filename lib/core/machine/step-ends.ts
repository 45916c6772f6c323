import { ErrorCode } from '../error-codes.js';
import { plural } from '../format.js';
import type { ErrorInfo } from '../state.js';
import { without, type Draft } from './draft.js';
import { parentNotice } from './jobs.js';
import { releaseSlot } from './slots.js';

/**
 * How steps and cases end: a step completes, fails (and its failure policy decides the case's
 * fate) or is cancelled; a case completes, or stops as failed or cancelled, after compensations
 * when it has any to run.
 */

export function completeStep(draft: Draft, stepId: string, output: unknown, at: number, data: Record<string, unknown> = {}): void {
  const step = draft.stepState(stepId);
  draft.setStep(stepId, { ...without(step, 'error', 'nextAttemptAt', 'deferredBy', 'deferredFor', 'waitingFor'), status: 'completed', output, finishedAt: at });
  draft.emit('step.completed', at, data, stepId);
}

export function failStep(draft: Draft, stepId: string, error: ErrorInfo, at: number, data: Record<string, unknown> = {}): void {
  const step = draft.workflow.steps.get(stepId);
  const state = draft.step(stepId);
  if (!step || !state) return;
  const stepError: ErrorInfo = { ...error, stepId };
  draft.setStep(stepId, { ...without(state, 'nextAttemptAt', 'deferredBy', 'deferredFor', 'waitingFor'), status: 'failed', finishedAt: at, error: stepError });
  draft.emit('step.failed', at, { ...data, error: stepError }, stepId);
  if (!draft.isOpen || draft.state.compensating || step.onFailure === 'continue') return;
  const attempts = typeof error.attempt === 'number' ? ` after ${plural(error.attempt, 'attempt')}` : '';
  const caseError: ErrorInfo = {
    code: ErrorCode.stepFailed,
    message: `step "${stepId}" failed${attempts}: ${error.message}`,
    stepId,
    ...(typeof error.attempt === 'number' ? { attempt: error.attempt } : {}),
    details: { cause: { code: error.code, message: error.message } },
  };
  stopCase(draft, 'failed', caseError, step.onFailure === 'compensate');
}

/** Stops the work of a step as its kind has it under way: jobs, items, the child case. */
export function stopWorkOf(draft: Draft, stepId: string, reason: string): void {
  const step = draft.workflow.steps.get(stepId);
  if (step && draft.step(stepId)) draft.kindOf(step).stop(draft, step, reason);
}

function cancelStep(draft: Draft, stepId: string, reason: string): void {
  stopWorkOf(draft, stepId, reason);
  const state = draft.stepState(stepId);
  draft.setStep(stepId, { ...without(state, 'nextAttemptAt', 'deferredBy', 'deferredFor', 'waitingFor'), status: 'cancelled', finishedAt: draft.now });
  draft.emit('step.cancelled', draft.now, { reason }, stepId);
}

/** Cancels every step that is under way (their jobs, timers and children); pending steps stay pending. */
function cancelActiveSteps(draft: Draft, reason: string): void {
  for (const id of draft.workflow.order) {
    const status = draft.step(id)?.status;
    if (status === 'scheduled' || status === 'running' || status === 'waiting') cancelStep(draft, id, reason);
  }
}

export function endCase(draft: Draft, status: 'completed' | 'failed' | 'cancelled', detail: { output?: unknown; error?: ErrorInfo }): void {
  const at = draft.now;
  draft.patchCase({
    status,
    finishedAt: at,
    ...(detail.output === undefined ? {} : { output: detail.output }),
    ...(detail.error ? { error: detail.error } : {}),
  });
  const durationMs = at - draft.state.createdAt;
  const type = status === 'completed' ? 'case.completed' : status === 'failed' ? 'case.failed' : 'case.cancelled';
  draft.emit(type, at, detail.error ? { durationMs, error: detail.error } : { durationMs });
  const { parent } = draft.state;
  if (parent) draft.commands.push(parentNotice(draft.state, parent));
  draft.commands.push(...releaseSlot(draft.state));
}

/** Ends the case as failed or cancelled, after compensations if `compensate` and there are any. */
export function stopCase(draft: Draft, status: 'failed' | 'cancelled', error: ErrorInfo, compensate: boolean): void {
  cancelActiveSteps(draft, error.message);
  const compensable = draft.workflow.order.some((id) => draft.workflow.steps.get(id)?.compensate && draft.step(id)?.status === 'completed');
  if (compensate && compensable) {
    draft.patchCase({ compensating: { status, error } });
    draft.emit('case.compensating', draft.now, { reason: error.message });
    return;
  }
  endCase(draft, status, { error });
}
