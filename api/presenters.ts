import type { StepState, TraceEvent } from '../lib/core/state.js';
import type { CaseRecord, CaseSummary } from '../lib/ports/store.js';

/** How cases look on the wire (SPEC "Reading cases"): times as ISO 8601, absent values as null. */

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

function presentStep(step: StepState) {
  return {
    status: step.status,
    attempts: step.attempts,
    startedAt: iso(step.startedAt),
    finishedAt: iso(step.finishedAt),
    output: step.output ?? null,
    error: step.error ?? null,
    scheduledAt: iso(step.scheduledAt),
    ...(step.nextAttemptAt === undefined ? {} : { nextAttemptAt: iso(step.nextAttemptAt) }),
    ...(step.deferredBy === undefined ? {} : { deferredBy: step.deferredBy }),
  };
}

export function presentCase(record: CaseRecord) {
  const steps: Record<string, ReturnType<typeof presentStep>> = {};
  for (const [id, step] of Object.entries(record.steps)) steps[id] = presentStep(step);
  return {
    id: record.id,
    workflow: record.workflow,
    version: record.version,
    status: record.status,
    input: record.input,
    output: record.output ?? null,
    error: record.error ?? null,
    steps,
    createdAt: iso(record.createdAt),
    updatedAt: iso(record.updatedAt),
    deadlineAt: iso(record.deadlineAt),
    finishedAt: iso(record.finishedAt),
    startedBy: record.startedBy ?? null,
    businessKeys: record.businessKeys ?? {},
    ...(record.idempotencyKey === undefined || record.idempotencyKey.startsWith('intake:') ? {} : { idempotencyKey: record.idempotencyKey }),
  };
}

export function presentSummary(summary: CaseSummary) {
  return {
    id: summary.id,
    workflow: summary.workflow,
    version: summary.version,
    status: summary.status,
    createdAt: iso(summary.createdAt),
    updatedAt: iso(summary.updatedAt),
    error: summary.error ?? null,
  };
}

export function presentTrace(events: readonly TraceEvent[]) {
  return {
    events: events.map((event) => ({
      seq: event.seq,
      type: event.type,
      ...(event.stepId === undefined ? {} : { stepId: event.stepId }),
      at: iso(event.at),
      data: event.data,
    })),
  };
}
