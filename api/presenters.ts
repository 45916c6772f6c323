import type { CaseView, StepView } from '../lib/core/case-view.js';
import { DERIVED_SCOPE } from '../lib/core/idempotency.js';
import type { StepLimits } from '../lib/core/limit-waits.js';
import type { StepState, TraceEvent, UnitFields, UnitState } from '../lib/core/state.js';
import type { CaseRecord, CaseSummary } from '../lib/ports/store.js';

/** How cases look on the wire (README, "HTTP API"): times as ISO 8601, absent values as null. */

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** A unit's fields as presented; a step that is its own unit presents them with its own status. */
function presentUnit<S extends string>(unit: UnitFields & { status: S }) {
  return {
    status: unit.status,
    attempts: unit.attempts,
    startedAt: iso(unit.startedAt),
    finishedAt: iso(unit.finishedAt),
    output: unit.output ?? null,
    error: unit.error ?? null,
  };
}

/** A keyed step's waits as presented: times as ISO 8601. */
function presentLimits(limits: StepLimits): NonNullable<StepView['limits']> {
  return {
    ...limits,
    waits: limits.waits.map((wait) => {
      if (wait.kind !== 'rate') return wait;
      const { until, ...rest } = wait;
      return until === undefined ? rest : { ...rest, until: iso(until) };
    }),
  };
}

function presentStep(step: StepState, limits?: StepLimits): StepView {
  const instances = Object.values(step.instances ?? {});
  const count = (status: UnitState['status']) => instances.filter((unit) => unit.status === status).length;
  return {
    ...presentUnit(step),
    status: step.status,
    scheduledAt: iso(step.scheduledAt),
    ...(step.nextAttemptAt === undefined ? {} : { nextAttemptAt: iso(step.nextAttemptAt) }),
    ...(step.deferredBy === undefined ? {} : { deferredBy: step.deferredBy }),
    ...(limits === undefined ? {} : { limits: presentLimits(limits) }),
    ...(step.waitingFor === undefined ? {} : { waitingFor: { signals: [...(step.waitingFor.signals ?? [])], until: iso(step.waitingFor.until) } }),
    ...(step.iteration === undefined ? {} : { iteration: step.iteration }),
    ...(step.itemCount === undefined
      ? {}
      : { items: { total: step.itemCount, completed: count('completed'), failed: count('failed'), running: count('running') + count('scheduled'), pending: count('pending') } }),
    ...(step.childCaseId === undefined ? {} : { childCaseId: step.childCaseId }),
    ...(step.skipReason === undefined ? {} : { skipReason: step.skipReason }),
    ...(step.compensation === undefined ? {} : { compensation: presentUnit(step.compensation) }),
    ...(step.run ? { run: step.run } : {}),
  };
}

/**
 * A page of a forEach step's items, each a unit of its own (the case view only counts them: a
 * step of 10,000 items would make every read of the case heavy). `status` keeps only items in
 * that state, so the failed few of a large fan-out are one page away.
 */
export function presentItems(step: StepState, page: { offset: number; limit: number; status?: UnitState['status'] }) {
  const all = Object.entries(step.instances ?? {})
    .map(([index, unit]) => ({ index: Number(index), unit }))
    .filter((entry) => page.status === undefined || entry.unit.status === page.status)
    .sort((a, b) => a.index - b.index);
  return {
    total: step.itemCount ?? 0,
    matching: all.length,
    offset: page.offset,
    // Outputs stay out: an item's output is in the step's output once the step is done.
    items: all.slice(page.offset, page.offset + page.limit).map(({ index, unit }) => ({
      index,
      status: unit.status,
      attempts: unit.attempts,
      startedAt: iso(unit.startedAt),
      finishedAt: iso(unit.finishedAt),
      nextAttemptAt: iso(unit.nextAttemptAt),
      error: unit.error ?? null,
    })),
  };
}

/** `limits`: where the queued units of keyed steps stand, by step (lib/core/limit-waits.ts); only a read of one case asks. */
export function presentCase(record: CaseRecord, limits: Readonly<Record<string, StepLimits>> = {}): CaseView {
  const steps: Record<string, StepView> = {};
  for (const [id, step] of Object.entries(record.steps)) steps[id] = presentStep(step, limits[id]);
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
    // What a waiting case waits for: the steps and the signals that would move them.
    waitingFor: Object.entries(record.steps)
      .filter(([, step]) => step.status === 'waiting')
      .map(([stepId, step]) => ({ stepId, signals: [...(step.waitingFor?.signals ?? [])], until: iso(step.waitingFor?.until) })),
    ...(record.parent ? { parent: { caseId: record.parent.caseId, stepId: record.parent.stepId } } : {}),
    ...(record.stuck ? { stuck: { reason: record.stuck.reason, since: iso(record.stuck.since) } } : {}),
    // Only a key a producer sent: a derived one (a key-less intake job's, a sub-workflow's) is the engine's.
    ...(record.idempotencyKey === undefined || record.idempotencyScope === DERIVED_SCOPE || (record.idempotencyScope === undefined && record.idempotencyKey.startsWith('intake:'))
      ? {}
      : { idempotencyKey: record.idempotencyKey }),
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
    finishedAt: iso(summary.finishedAt),
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
