import { bufferedSignalBytes, CASE_BUDGET_LIMITS, jsonBytes } from './case-size.js';
import { LIMITS, type CompiledWorkflow } from './definition.js';
import { ErrorCode } from './error-codes.js';
import { isTerminalStep, type CaseState, type ErrorInfo, type StepState } from './state.js';

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

/**
 * Why a signal no step takes now may not be kept for a later one, or undefined when it may: the
 * buffer holds at most LIMITS.maxBufferedSignals signals and maxBufferedSignalBytes of payloads.
 * A full buffer refuses the newcomer rather than dropping the oldest: the sender was told "kept".
 */
export function signalBufferRefusal(state: Pick<CaseState, 'signals'>, payload: unknown): ErrorInfo | undefined {
  const count = state.signals?.length ?? 0;
  if (count >= LIMITS.maxBufferedSignals) {
    return { code: ErrorCode.signalBufferFull, message: `the case already keeps ${count} signals for steps not yet waiting (at most ${LIMITS.maxBufferedSignals})`, retryable: false };
  }
  const bytes = bufferedSignalBytes(state) + jsonBytes(payload);
  if (bytes > CASE_BUDGET_LIMITS.maxBufferedSignalBytes) {
    return {
      code: ErrorCode.signalBufferFull,
      message: `keeping this signal would take the signals kept for steps not yet waiting to ${bytes} bytes (at most ${CASE_BUDGET_LIMITS.maxBufferedSignalBytes})`,
      retryable: false,
      details: { bytes, maxBufferedSignalBytes: CASE_BUDGET_LIMITS.maxBufferedSignalBytes },
    };
  }
  return undefined;
}
