import type { CompiledStep } from '../definition.js';
import type { StepState, UnitAddress, UnitState, UnitStatus } from '../state.js';
import { without, type Draft } from './draft.js';
import { buildUnitJob } from './jobs.js';

/**
 * Units: the attempt bookkeeping shared by task steps, repeat iterations, forEach items and
 * compensations. A unit lives where its kind keeps it: a task or repeat step is its own unit (its
 * state carries the unit's fields), a forEach item in the step's `instances`, a compensation in
 * the step's `compensation`.
 */
export type UnitRef = { step: CompiledStep; address: UnitAddress; label: Record<string, unknown> };

/** What a unit ended with, for good: an output, or the error of its last attempt. */
export interface UnitOutcome {
  output?: unknown;
  error?: StepState['error'];
  at: number;
}

export function unitRef(step: CompiledStep, address: UnitAddress): UnitRef {
  const label: Record<string, unknown> = {};
  if (address.instance !== undefined) label.instance = address.instance;
  if (address.iteration !== undefined) label.iteration = address.iteration;
  if (address.compensation) label.compensation = true;
  return { step, address, label };
}

/** A step's status as its own unit's: the step's later fates (skipped, compensated) read as cancelled. */
function ownUnitStatus(status: StepState['status']): UnitStatus {
  return status === 'scheduled' || status === 'running' || status === 'completed' || status === 'failed' ? status : 'cancelled';
}

export function readUnit(draft: Draft, ref: UnitRef): UnitState | undefined {
  const step = draft.step(ref.step.id);
  if (!step) return undefined;
  if (ref.address.compensation) return step.compensation;
  if (ref.address.instance !== undefined) return step.instances?.[String(ref.address.instance)];
  const { attempts, attemptsDone, startedAt, finishedAt, output, error, nextAttemptAt, deferredBy, deferredFor } = step;
  return dropUndefined({ status: ownUnitStatus(step.status), attempts, attemptsDone, startedAt, finishedAt, output, error, nextAttemptAt, deferredBy, deferredFor });
}

export function writeUnit(draft: Draft, ref: UnitRef, unit: UnitState): void {
  const step = draft.stepState(ref.step.id);
  if (ref.address.compensation) return draft.setStep(ref.step.id, { ...step, compensation: unit });
  if (ref.address.instance !== undefined) {
    return draft.setStep(ref.step.id, { ...step, instances: { ...step.instances, [String(ref.address.instance)]: unit } });
  }
  // The step is its own unit: the unit's fields replace the step's (its status only while it runs).
  const { status, ...fields } = unit;
  const base = without(step, 'error', 'output', 'nextAttemptAt', 'deferredBy', 'deferredFor', 'startedAt', 'finishedAt');
  draft.setStep(ref.step.id, { ...base, ...(status === 'scheduled' || status === 'running' ? { status } : {}), ...dropUndefined(fields) });
}

function dropUndefined<T extends object>(value: T): T {
  const copy = { ...value };
  for (const key of Object.keys(copy) as Array<keyof T>) if (copy[key] === undefined) delete copy[key];
  return copy;
}

export const isLive = (unit: { status: string } | undefined): boolean => unit?.status === 'scheduled' || unit?.status === 'running';

export function scheduleUnit(draft: Draft, ref: UnitRef, data: Record<string, unknown> = {}): void {
  writeUnit(draft, ref, { status: 'scheduled', attempts: 0, attemptsDone: 0 });
  const task = ref.address.compensation && ref.step.compensate ? ref.step.compensate : ref.step;
  draft.emit('step.scheduled', draft.now, { task: task.task, queue: task.queue, ...ref.label, ...data }, ref.step.id);
  draft.commands.push(buildUnitJob(draft.state, ref.step, ref.address));
}

/** Records that attempt `attempt` of a unit began, unless a later report already covered it. */
export function markStarted(draft: Draft, ref: UnitRef, attempt: number, at: number, worker?: string): void {
  const unit = readUnit(draft, ref);
  if (!unit || (unit.status !== 'scheduled' && unit.status !== 'running') || attempt <= unit.attemptsDone) return;
  if (attempt < unit.attempts || (attempt === unit.attempts && unit.status === 'running')) return;
  writeUnit(draft, ref, { ...without(unit, 'deferredBy', 'deferredFor', 'nextAttemptAt'), status: 'running', attempts: attempt, startedAt: unit.startedAt ?? at });
  draft.emit('step.started', at, { attempt, ...ref.label, ...(worker === undefined ? {} : { worker }) }, ref.step.id);
}

/** Whether a report that attempt `attempt` ended still counts: the unit runs and has not heard of it. */
export function acceptsEnd(unit: UnitState | undefined, attempt: number): unit is UnitState {
  return unit !== undefined && (unit.status === 'scheduled' || unit.status === 'running') && attempt > unit.attemptsDone;
}
