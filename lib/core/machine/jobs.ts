import type { CompiledStep, TaskSettings } from '../definition.js';
import type { CaseState, CaseEvent, Command, JobRef, StepJob, UnitAddress } from '../state.js';
import { canonicalJson } from '../canonical-json.js';
import { renderTemplate, type TemplateScope } from '../template.js';
import { scope } from './data.js';
import { runOf } from './draft.js';

/**
 * The names and payloads of the work a case hands to the shell: job ids, idempotency keys, the
 * job that runs a unit, timers, the start of a child case and the notice of its end. Each is the
 * same every time it is built from the same state, so re-issuing one is harmless.
 */

/** The job id of a unit: the same for every attempt and every duplicate enqueue of it. */
export function unitJobId(caseId: string, stepId: string, address: UnitAddress = {}): string {
  let id = `${caseId}.${stepId}`;
  if (address.run) id += `.r${address.run}`;
  if (address.iteration !== undefined && address.iteration > 1) id += `.n${address.iteration}`;
  if (address.instance !== undefined) id += `.i${address.instance}`;
  if (address.compensation) id += '.undo';
  return id;
}

/** The idempotency key handlers see: stable across attempts and across retries of the case. */
export function unitIdempotencyKey(caseId: string, stepId: string, address: UnitAddress = {}): string {
  let key = `${caseId}:${stepId}`;
  if (address.instance !== undefined) key += `:${address.instance}`;
  if (address.iteration !== undefined && address.iteration > 1) key += `:${address.iteration}`;
  if (address.compensation) key += ':undo';
  return key;
}

/** Which unit a job (or anything carrying an address) is about, without its other fields: what a report about it names. */
export function unitAddressOf(address: UnitAddress): UnitAddress {
  return {
    ...(address.run ? { run: address.run } : {}),
    ...(address.instance === undefined ? {} : { instance: address.instance }),
    ...(address.iteration === undefined ? {} : { iteration: address.iteration }),
    ...(address.compensation ? { compensation: true } : {}),
  };
}

/** The job that runs one unit of `step` for the case in `state`, its input rendered from the state's data. */
export function buildUnitJob(state: CaseState, step: CompiledStep, address: UnitAddress): Command & { type: 'enqueueStep' } {
  const settings: TaskSettings & { input: unknown } = address.compensation && step.compensate ? step.compensate : step;
  // One scope for the unit's input and its limit keys: a forEach item's is read from the items once.
  const unitScope = scope(state, address.instance === undefined || address.compensation ? {} : forEachItemScope(state, step, address.instance));
  const input = address.compensation ? renderTemplate(step.compensate?.input ?? null, unitScope) : renderTemplate(step.input, unitScope);
  const job: StepJob = {
    caseId: state.id,
    workflow: state.workflow,
    version: state.version,
    stepId: step.id,
    task: settings.task,
    input,
    idempotencyKey: unitIdempotencyKey(state.id, step.id, address),
    maxAttempts: settings.maxAttempts,
    backoff: settings.backoff,
    timeoutMs: settings.timeoutMs,
    breaker: settings.breaker,
    ...address,
    ...(state.requestId === undefined ? {} : { requestId: state.requestId }),
    ...(address.compensation ? {} : unitLimits(state, step, unitScope)),
  };
  return { type: 'enqueueStep', queue: settings.queue, jobId: unitJobId(state.id, step.id, address), job };
}

/** A rendered key (of a limit, of a debounce) as text: a string as it is, anything else as canonical JSON (a missing value is "null"). */
export function limitKeyText(value: unknown): string {
  return typeof value === 'string' ? value : canonicalJson(value ?? null);
}

/** The concurrency slot, rate limit and priority of a unit (not of a compensation: undoing must not queue behind new work). */
function unitLimits(state: CaseState, step: CompiledStep, unitScope: TemplateScope): Pick<StepJob, 'concurrency' | 'rateLimit' | 'priority'> {
  if (!step.concurrency && !step.rateLimit) return {};
  const render = (key: string) => limitKeyText(renderTemplate(key, unitScope));
  const priority = (state.priority ?? 0) + step.priority;
  return {
    ...(step.concurrency ? { concurrency: { ...step.concurrency, key: render(step.concurrency.key) } } : {}),
    ...(step.rateLimit ? { rateLimit: { ...step.rateLimit, key: render(step.rateLimit.key) } } : {}),
    ...(priority === 0 ? {} : { priority }),
  };
}

/** What `${item}` and `${index}` read for item `index` of a forEach step. */
function forEachItemScope(state: CaseState, step: CompiledStep, index: number): { item: unknown; index: number } {
  const items = renderTemplate(step.forEach?.items ?? null, scope(state));
  return { item: Array.isArray(items) ? items[index] : null, index };
}

/** How a cancellation names the job of one of `step`'s units. */
export function jobRef(step: CompiledStep, jobId: string): JobRef {
  return { queue: step.queue, jobId, ...(step.concurrency ? { group: step.concurrency.group } : {}) };
}

/** The timer that wakes a sleeping step, or ends a wait for signals. */
export function timerCommand(state: CaseState, stepId: string, kind: 'sleep' | 'signalTimeout', at: number): Command & { type: 'scheduleTimer' } {
  const run = runOf(state.steps[stepId]);
  return {
    type: 'scheduleTimer',
    jobId: `${state.id}.${stepId}${run ? `.r${run}` : ''}.${kind}`,
    at,
    caseId: state.id,
    event: { type: 'timerFired', stepId, run, kind, at },
  };
}

/** The command that starts (or, idempotently, finds) the child case of a sub-workflow step. */
export function childCommand(state: CaseState, step: CompiledStep): Command & { type: 'startChild' } {
  const run = runOf(state.steps[step.id]);
  return {
    type: 'startChild',
    parent: { caseId: state.id, stepId: step.id, run },
    depth: (state.depth ?? 0) + 1,
    idempotencyKey: `child:${state.id}:${step.id}:${run}`,
    request: {
      workflow: step.workflow?.name ?? '',
      ...(step.workflow?.version === undefined ? {} : { version: step.workflow.version }),
      input: renderTemplate(step.input, scope(state)) ?? {},
    },
  };
}

/** A finished case, as its parent's sub-workflow step learns of it. */
type FinishedChild = Pick<CaseState, 'id' | 'status' | 'output' | 'error'>;

/**
 * The event that tells a parent's sub-workflow step how its child ended. Built wherever the end
 * is learnt (the child's own last transition, a start that found the child already done, the
 * reconciler finding a notice lost); the parent applies it once.
 */
export function childFinishedEvent(child: FinishedChild, parent: { stepId: string; run: number }, at: number): CaseEvent & { type: 'childFinished' } {
  return {
    type: 'childFinished',
    stepId: parent.stepId,
    run: parent.run,
    childId: child.id,
    status: child.status as 'completed' | 'failed' | 'cancelled',
    at,
    ...(child.output === undefined ? {} : { output: child.output }),
    ...(child.error ? { error: child.error } : {}),
  };
}

/** The report that tells a finished child's parent how it ended; the same every time it is built. */
export function parentNotice(state: CaseState, parent: NonNullable<CaseState['parent']>): Command & { type: 'notifyParent' } {
  return { type: 'notifyParent', caseId: parent.caseId, event: childFinishedEvent(state, parent, state.finishedAt ?? state.updatedAt) };
}
