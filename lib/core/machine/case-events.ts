import { ErrorCode } from '../error-codes.js';
import { signalBufferRefusal } from '../signals.js';
import type { CaseEvent, ErrorInfo, StepState } from '../state.js';
import { deliverSignal, waitsFor } from '../steps/wait-for.js';
import { runOf, type Draft } from './draft.js';
import { queueForSlot } from './slots.js';
import { stopCase } from './step-ends.js';

/** Events about the whole case rather than one unit or step: requests, the deadline, the reconciler's remarks, breakers. */
export type CaseLevelEvent = CaseEvent & { type: 'deadlineExceeded' | 'signal' | 'cancel' | 'stuck' | 'retry' | 'breakerOpened' | 'breakerClosed' | 'caseAdmitted' };

export function applyCaseEvent(draft: Draft, event: CaseLevelEvent): void {
  switch (event.type) {
    case 'breakerOpened':
      return draft.emit('breaker.opened', event.at, { breaker: event.breaker, until: event.until }, event.stepId);
    case 'breakerClosed':
      return draft.emit('breaker.closed', event.at, { breaker: event.breaker }, event.stepId);
    case 'deadlineExceeded': {
      if (!draft.isOpen || draft.state.compensating) return;
      const message = `case did not finish by its deadline ${new Date(draft.state.deadlineAt).toISOString()}`;
      return stopCase(draft, 'failed', { code: ErrorCode.deadlineExceeded, message }, false);
    }
    case 'signal': {
      if (!draft.isOpen) return;
      const taken = draft.workflow.order.some((id) => waitsFor(draft, id, event.name));
      const refusal = taken ? undefined : signalBufferRefusal(draft.state, event.payload);
      if (refusal) return refuseSignal(draft, event, refusal);
      draft.emit('signal.received', event.at, { name: event.name });
      // Kept for a step that has not started waiting yet (appended: the store writes only the newcomer).
      if (!deliverSignal(draft, event.name, event.payload, event.at)) draft.patchCase({ signals: [...(draft.state.signals ?? []), { name: event.name, payload: event.payload, at: event.at }] });
      return;
    }
    case 'cancel':
      if (!draft.isOpen || draft.state.compensating) return;
      return stopCase(draft, 'cancelled', { code: ErrorCode.cancelled, message: event.reason }, event.compensate ?? draft.workflow.compensateOnCancel);
    case 'caseAdmitted': {
      const slot = draft.state.concurrency;
      if (!draft.isOpen || !slot?.waiting) return;
      draft.patchCase({ concurrency: { ...slot, waiting: false } });
      // The steps start as the case settles after this event.
      return draft.emit('case.admitted', event.at, { group: slot.group, key: slot.key, waitedMs: Math.max(0, event.at - draft.state.createdAt) });
    }
    case 'stuck':
      if (!draft.isOpen || draft.state.stuck?.reason === event.reason) return;
      draft.patchCase({ stuck: { reason: event.reason, since: draft.state.stuck?.since ?? event.at } });
      return draft.emit('case.stuck', event.at, { reason: event.reason });
    case 'retry': {
      if (retryRefusal(draft.state) !== undefined) return;
      for (const id of draft.workflow.order) {
        const state = draft.stepState(id);
        if (state.status !== 'failed' && state.status !== 'cancelled') continue;
        draft.setStep(id, { status: 'pending', attempts: 0, attemptsDone: 0, run: runOf(state) + 1 });
      }
      draft.patchCase({ status: 'running', error: undefined, finishedAt: undefined, deadlineAt: draft.now + draft.workflow.deadlineMs });
      draft.emit('case.retried', event.at, { deadlineAt: draft.state.deadlineAt });
      // A case of a keyed workflow gave its slot up when it failed: it waits for one again before its steps resume.
      if (draft.state.concurrency) queueForSlot(draft, { ...draft.state.concurrency, waiting: true });
      return;
    }
  }
}

/**
 * Why a case cannot be retried, or undefined when it can: only a failed case resumes, and not
 * one that was compensated (it has undone its work: retrying would redo only part of it).
 */
export function retryRefusal(state: { status: string; steps: Readonly<Record<string, StepState>> }): string | undefined {
  if (state.status !== 'failed') return 'only a failed case can be retried';
  if (Object.values(state.steps).some((step) => step.compensation)) return 'its completed steps were compensated; start a new case instead';
  return undefined;
}

/** A signal the case cannot keep: recorded in the trace, and answered to its sender as refused. */
export function refuseSignal(draft: Draft, event: CaseEvent & { type: 'signal' }, error: ErrorInfo): void {
  draft.emit('signal.received', event.at, { name: event.name, refused: { code: error.code, message: error.message } });
  draft.refused.push({ event, error });
}
