import type { CompiledStep, CompiledWorkflow } from './definition.js';
import { runOf } from './machine/draft.js';
import { unitJobId } from './machine/jobs.js';
import type { CaseState, StepState, UnitState } from './state.js';

/**
 * Where the queued units of a case's keyed steps stand (GET /v1/cases/:id, the explorer, the
 * CLI): waiting for a slot of their concurrency key with so many ahead in the key's line, or
 * deferred by a rate limit until a time. A rate deferral is written on the case; a place in
 * line is known only to the gate, one Redis call per unit, so one read of a case looks up at
 * most MAX_PLACE_LOOKUPS units and counts the rest: a forEach of 10,000 keyed items costs no
 * more to read than one of 10.
 */

/** Places in line looked up for one read of a case, over all its steps. */
export const MAX_PLACE_LOOKUPS = 10;
/** Waits listed per step; the counts cover the others. */
export const MAX_LISTED_WAITS = 10;

/** A unit whose place in its key's line is to be asked of the gate. */
export interface PlaceLookup {
  stepId: string;
  group: string;
  jobId: string;
}

/** A unit's place as the gate answers it (ConcurrencyGate.position). */
export type SlotPlace = { state: 'holding'; key: string; inUse: number; limit: number } | { state: 'waiting'; key: string; ahead: number; inUse: number; limit: number } | { state: 'none' };

/** One unit that waits: for a slot (with the line ahead of it), or for its rate limit (until a time). Times in ms. */
export type LimitWaitInfo =
  { instance?: number; kind: 'concurrency'; group: string; key: string; ahead: number; inUse: number; limit: number } | { instance?: number; kind: 'rate'; group: string; key: string; until?: number };

/** How a keyed step's queued units stand. */
export interface StepLimits {
  /** Units queued and not running (a task step has one; a forEach one per item dispatched). */
  queued: number;
  /** Of them, deferred by the rate limit: read from the case, so every one is counted. */
  rateLimited: number;
  /** Of the others, those whose place in line was looked up. */
  checked: number;
  /** Of those looked up, waiting for a slot of their key. */
  waitingForSlot: number;
  /** Of those looked up, holding a slot: their job is in its queue for a worker. */
  holdingSlot: number;
  /** The first MAX_LISTED_WAITS waiting units in item order. */
  waits: LimitWaitInfo[];
  /** The gate did not answer: places in line are unknown. */
  unavailable?: true;
}

interface QueuedUnit {
  instance?: number;
  jobId: string;
  unit: Pick<UnitState, 'deferredFor' | 'deferredBy' | 'nextAttemptAt'>;
}

/** The units of a keyed step that are queued and not running, in item order. */
function queuedUnits(caseId: string, step: CompiledStep, state: StepState): QueuedUnit[] {
  const run = runOf(state);
  if (step.forEach) {
    return Object.entries(state.instances ?? {})
      .filter(([, unit]) => unit.status === 'scheduled')
      .map(([index, unit]) => ({ instance: Number(index), jobId: unitJobId(caseId, step.id, { run, instance: Number(index) }), unit }))
      .sort((a, b) => a.instance - b.instance);
  }
  if (state.status !== 'scheduled') return [];
  const address = step.repeat ? { run, iteration: state.iteration ?? 1 } : { run };
  return [{ jobId: unitJobId(caseId, step.id, address), unit: state }];
}

/** The keyed steps of the case with queued units, in the workflow's order. */
function keyedSteps(state: CaseState, workflow: CompiledWorkflow): Array<{ step: CompiledStep; units: QueuedUnit[] }> {
  const found: Array<{ step: CompiledStep; units: QueuedUnit[] }> = [];
  for (const step of workflow.steps.values()) {
    const stepState = state.steps[step.id];
    if ((!step.concurrency && !step.rateLimit) || !stepState) continue;
    const units = queuedUnits(state.id, step, stepState);
    if (units.length > 0) found.push({ step, units });
  }
  return found;
}

/** A unit the gate may hold in a line: keyed, and not deferred by its rate limit or a breaker (those wait on a timer). */
const mayBeInLine = (step: CompiledStep, unit: QueuedUnit['unit']): boolean => step.concurrency !== undefined && unit.deferredFor?.kind !== 'rate' && unit.deferredBy === undefined;

/** The units whose place in line one read of the case looks up: the first `max` that may be in a line. */
export function placeLookups(state: CaseState, workflow: CompiledWorkflow, max = MAX_PLACE_LOOKUPS): PlaceLookup[] {
  const lookups: PlaceLookup[] = [];
  for (const { step, units } of keyedSteps(state, workflow)) {
    for (const { jobId, unit } of units) {
      if (lookups.length >= max) return lookups;
      if (mayBeInLine(step, unit) && step.concurrency) lookups.push({ stepId: step.id, group: step.concurrency.group, jobId });
    }
  }
  return lookups;
}

/**
 * How each keyed step's queued units stand, by step id, from the case and the places looked up
 * (`unavailable` when the gate did not answer). Steps without queued units are left out.
 */
export function describeLimits(state: CaseState, workflow: CompiledWorkflow, places: ReadonlyMap<string, SlotPlace> | 'unavailable'): Record<string, StepLimits> {
  const result: Record<string, StepLimits> = {};
  for (const { step, units } of keyedSteps(state, workflow)) {
    const view: StepLimits = { queued: units.length, rateLimited: 0, checked: 0, waitingForSlot: 0, holdingSlot: 0, waits: [] };
    const list = (wait: LimitWaitInfo) => {
      if (view.waits.length < MAX_LISTED_WAITS) view.waits.push(wait);
    };
    for (const { instance, jobId, unit } of units) {
      const item = instance === undefined ? {} : { instance };
      const wait = unit.deferredFor;
      if (wait?.kind === 'rate') {
        view.rateLimited += 1;
        list({ ...item, kind: 'rate', group: wait.group, key: wait.key, ...(unit.nextAttemptAt === undefined ? {} : { until: unit.nextAttemptAt }) });
        continue;
      }
      const place = places === 'unavailable' ? undefined : places.get(jobId);
      if (!place || !step.concurrency) continue;
      view.checked += 1;
      if (place.state === 'holding') view.holdingSlot += 1;
      if (place.state !== 'waiting') continue;
      view.waitingForSlot += 1;
      list({ ...item, kind: 'concurrency', group: step.concurrency.group, key: place.key, ahead: place.ahead, inUse: place.inUse, limit: place.limit });
    }
    if (places === 'unavailable' && units.some(({ unit }) => mayBeInLine(step, unit))) view.unavailable = true;
    result[step.id] = view;
  }
  return result;
}
