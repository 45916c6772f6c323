import { LIMITS, type CompiledStep, type CompiledWorkflow, type TaskSettings } from './definition.js';
import { caseBytes, DEFAULT_CASE_BUDGET, mayExceedBudget, tooLargeError, tooLargeSubstitute, type CaseBudget } from './case-size.js';
import { CaseErrorCode, StepErrorCode } from './errors.js';
import { plural } from './format.js';
import { ConditionSession } from './condition-budget.js';
import { ConditionBudgetError, ConditionError, evaluateCondition, stepsNeededBy } from './expressions.js';
import {
  isTerminalCase,
  isTerminalStep,
  type CaseEvent,
  type CaseState,
  type Command,
  type ErrorInfo,
  type StepJob,
  type StepState,
  type TraceEvent,
  type TraceType,
  type Transition,
  type UnitAddress,
  type UnitState,
} from './state.js';
import { signalBufferRefusal } from './signals.js';
import { renderTemplate, type TemplateScope } from './template.js';

/**
 * The engine's rules as pure functions: a state and events go in, the next state, the trace
 * events it adds and the commands to carry out come out. No clock, no ids, no I/O: `now` and
 * ids are arguments, so every rule is tested with plain data.
 *
 * Events may arrive twice or out of order (queues deliver at least once, several processes
 * report about one step). Each rule therefore checks that the event still fits the state and
 * otherwise changes nothing: applying a duplicate is a no-op.
 *
 * After every event the case "settles": steps whose dependencies are done start or are skipped
 * (a `when` that is false, or nothing but skipped steps before them: dead-path elimination, so
 * a join waits only for branches that were taken), compensations run one by one in reverse,
 * and the case ends when every step has.
 */

/** Builds transitions change by change; each trace event bumps the state's seq. */
class Draft {
  state: CaseState;
  readonly events: TraceEvent[] = [];
  readonly commands: Command[] = [];
  /** The conditions this transition evaluates share a budget (and the case data converted for them). */
  readonly conditions = new ConditionSession();
  readonly conditionViews = new WeakMap<StepState, { output: unknown; status: string }>();
  /** Events refused (a signal that does not fit), each with why: the door that sent one answers with it. */
  readonly refused: Array<{ event: CaseEvent; error: ErrorInfo }> = [];

  constructor(
    readonly workflow: CompiledWorkflow,
    state: CaseState,
    readonly now: number,
  ) {
    this.state = state;
  }

  emit(type: TraceType, at: number, data: Record<string, unknown> = {}, stepId?: string): void {
    const seq = this.state.seq + 1;
    this.state = { ...this.state, seq };
    this.events.push(stepId === undefined ? { seq, type, at, data } : { seq, type, stepId, at, data });
  }

  step(stepId: string): StepState | undefined {
    return this.state.steps[stepId];
  }

  setStep(stepId: string, next: StepState): void {
    this.state = { ...this.state, steps: { ...this.state.steps, [stepId]: next } };
  }

  patchCase(patch: Partial<CaseState>): void {
    this.state = { ...this.state, ...patch };
  }

  /** Where to come back to when what follows must be undone (it would take the case past its budget). */
  checkpoint(): { state: CaseState; events: number; commands: number; refused: number } {
    return { state: this.state, events: this.events.length, commands: this.commands.length, refused: this.refused.length };
  }

  restore(point: ReturnType<Draft['checkpoint']>): void {
    this.state = point.state;
    this.events.length = point.events;
    this.commands.length = point.commands;
    this.refused.length = point.refused;
  }

  /** `progressed` false: only a remark about the case (stuck), so its last progress time stands. */
  finish(progressed = true): Transition {
    if (this.events.length === 0) return { state: this.state, events: [], commands: [] };
    const updatedAt = progressed ? this.now : this.state.updatedAt;
    const refused = this.refused.length > 0 ? { refused: this.refused } : {};
    return { state: { ...this.state, revision: this.state.revision + 1, updatedAt }, events: this.events, commands: this.commands, ...refused };
  }
}

const isOpen = (draft: Draft) => !isTerminalCase(draft.state.status);

function without<T extends object, K extends keyof T>(value: T, ...keys: K[]): Omit<T, K> {
  const copy = { ...value };
  for (const key of keys) delete copy[key];
  return copy;
}

// ---------------------------------------------------------------------------------------------
// Jobs: ids, idempotency keys, inputs

const runOf = (step: StepState | undefined) => step?.run ?? 0;

/** The job id of a unit: the same for every attempt and every duplicate enqueue of it. */
export function unitJobId(caseId: string, stepId: string, address: UnitAddress = {}): string {
  let id = `${caseId}.${stepId}`;
  if (address.run) id += `.r${address.run}`;
  if (address.iteration !== undefined && address.iteration > 1) id += `.n${address.iteration}`;
  if (address.instance !== undefined) id += `.i${address.instance}`;
  if (address.compensation) id += '.undo';
  return id;
}

/** The job id of a step's first unit (kept for callers that address whole steps). */
export function stepJobId(caseId: string, stepId: string): string {
  return unitJobId(caseId, stepId);
}

/** The idempotency key handlers see: stable across attempts and across retries of the case. */
export function unitIdempotencyKey(caseId: string, stepId: string, address: UnitAddress = {}): string {
  let key = `${caseId}:${stepId}`;
  if (address.instance !== undefined) key += `:${address.instance}`;
  if (address.iteration !== undefined && address.iteration > 1) key += `:${address.iteration}`;
  if (address.compensation) key += ':undo';
  return key;
}

export function stepIdempotencyKey(caseId: string, stepId: string): string {
  return unitIdempotencyKey(caseId, stepId);
}

function scope(state: CaseState, extra: Partial<TemplateScope> = {}): TemplateScope {
  const stepOutputs: Record<string, unknown> = {};
  for (const [id, step] of Object.entries(state.steps)) {
    if (step.status === 'completed' || step.status === 'compensated' || step.status === 'failed') stepOutputs[id] = step.output ?? null;
  }
  return { input: state.input, stepOutputs, case: { id: state.id, workflow: state.workflow, version: state.version }, ...extra };
}

/**
 * The variables of `expression`: its `steps` holds only the steps it reads (all when it reads them
 * by computed keys). What it sees of a step is kept per step state for the transition, so that the
 * CEL values made of it are made once (`ConditionSession.memo`).
 */
function conditionVariables(draft: Draft, expression: string, extra: Record<string, unknown> = {}) {
  const state = draft.state;
  const steps: Record<string, { output: unknown; status: string }> = {};
  const names = stepsNeededBy(expression);
  const read = names === undefined ? Object.entries(state.steps) : names.flatMap((name) => (Object.hasOwn(state.steps, name) ? [[name, state.steps[name]] as const] : []));
  for (const [id, step] of read) {
    if (!step) continue;
    let view = draft.conditionViews.get(step);
    if (!view) draft.conditionViews.set(step, (view = { output: step.output ?? null, status: step.status }));
    steps[id] = view;
  }
  return { input: state.input, steps, case: { id: state.id, workflow: state.workflow, version: state.version }, ...extra };
}

/** The step error of a condition that failed or ran out of budget: neither is retried (the same data gives the same answer). */
function conditionErrorInfo(error: unknown): ErrorInfo {
  const known = error instanceof ConditionError || error instanceof ConditionBudgetError;
  return {
    code: known ? error.code : StepErrorCode.conditionFailed,
    message: (error as Error).message,
    retryable: false,
    ...(known && error.details !== undefined ? { details: error.details } : {}),
  };
}

/** The job that runs one unit of `step` for the case in `state`, its input rendered from the state's data. */
export function buildUnitJob(state: CaseState, step: CompiledStep, address: UnitAddress): Command & { type: 'enqueueStep' } {
  const settings: TaskSettings & { input: unknown } = address.compensation && step.compensate ? step.compensate : step;
  let input: unknown;
  if (address.compensation) input = renderTemplate(step.compensate?.input ?? null, scope(state));
  else if (address.instance !== undefined) {
    const items = renderTemplate(step.forEach?.items ?? null, scope(state));
    input = renderTemplate(step.input, scope(state, { item: Array.isArray(items) ? items[address.instance] : null, index: address.instance }));
  } else input = renderTemplate(step.input, scope(state));
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
  };
  return { type: 'enqueueStep', queue: settings.queue, jobId: unitJobId(state.id, step.id, address), job };
}

/** Kept for callers that build the job of a plain task step. */
export function buildStepJob(state: CaseState, step: CompiledStep): Command & { type: 'enqueueStep' } {
  return buildUnitJob(state, step, { run: runOf(state.steps[step.id]) });
}

// ---------------------------------------------------------------------------------------------
// Units: the attempt bookkeeping shared by task steps, forEach items and compensations

type UnitRef = { step: CompiledStep; address: UnitAddress; label: Record<string, unknown> };

function unitLabel(address: UnitAddress): Record<string, unknown> {
  const label: Record<string, unknown> = {};
  if (address.instance !== undefined) label.instance = address.instance;
  if (address.iteration !== undefined) label.iteration = address.iteration;
  if (address.compensation) label.compensation = true;
  return label;
}

function readUnit(draft: Draft, ref: UnitRef): UnitState | undefined {
  const step = draft.step(ref.step.id);
  if (!step) return undefined;
  if (ref.address.compensation) return step.compensation;
  if (ref.address.instance !== undefined) return step.instances?.[String(ref.address.instance)];
  return {
    status: step.status === 'scheduled' || step.status === 'running' ? step.status : step.status === 'completed' ? 'completed' : step.status === 'failed' ? 'failed' : 'cancelled',
    attempts: step.attempts,
    attemptsDone: step.attemptsDone,
    ...(step.startedAt === undefined ? {} : { startedAt: step.startedAt }),
    ...(step.finishedAt === undefined ? {} : { finishedAt: step.finishedAt }),
    ...(step.output === undefined ? {} : { output: step.output }),
    ...(step.error === undefined ? {} : { error: step.error }),
    ...(step.nextAttemptAt === undefined ? {} : { nextAttemptAt: step.nextAttemptAt }),
    ...(step.deferredBy === undefined ? {} : { deferredBy: step.deferredBy }),
  };
}

function writeUnit(draft: Draft, ref: UnitRef, unit: UnitState): void {
  const step = draft.step(ref.step.id) as StepState;
  if (ref.address.compensation) return draft.setStep(ref.step.id, { ...step, compensation: unit });
  if (ref.address.instance !== undefined) {
    return draft.setStep(ref.step.id, { ...step, instances: { ...step.instances, [String(ref.address.instance)]: unit } });
  }
  // The step is its own unit: copy the unit's fields onto it (status only while it runs).
  const base = without(step, 'error', 'output', 'nextAttemptAt', 'deferredBy', 'startedAt', 'finishedAt');
  draft.setStep(ref.step.id, {
    ...base,
    ...(unit.status === 'scheduled' || unit.status === 'running' ? { status: unit.status } : {}),
    attempts: unit.attempts,
    attemptsDone: unit.attemptsDone,
    ...(unit.startedAt === undefined ? {} : { startedAt: unit.startedAt }),
    ...(unit.finishedAt === undefined ? {} : { finishedAt: unit.finishedAt }),
    ...(unit.output === undefined ? {} : { output: unit.output }),
    ...(unit.error === undefined ? {} : { error: unit.error }),
    ...(unit.nextAttemptAt === undefined ? {} : { nextAttemptAt: unit.nextAttemptAt }),
    ...(unit.deferredBy === undefined ? {} : { deferredBy: unit.deferredBy }),
  });
}

/** The unit a worker report is about, if it is still the current one. */
function unitFor(draft: Draft, event: UnitAddress & { stepId: string }): UnitRef | undefined {
  const step = draft.workflow.steps.get(event.stepId);
  const state = draft.step(event.stepId);
  if (!step || !state || (event.run ?? 0) !== runOf(state)) return undefined;
  if (event.compensation) return state.compensation ? { step, address: event, label: unitLabel(event) } : undefined;
  if (event.instance !== undefined) return state.instances?.[String(event.instance)] ? { step, address: event, label: unitLabel(event) } : undefined;
  if (step.kind !== 'task' || step.forEach) return undefined;
  if (step.repeat && (event.iteration ?? 1) !== (state.iteration ?? 1)) return undefined;
  if (!(state.status === 'scheduled' || state.status === 'running')) return undefined;
  return { step, address: event, label: unitLabel(event) };
}

function scheduleUnit(draft: Draft, ref: UnitRef, data: Record<string, unknown> = {}): void {
  writeUnit(draft, ref, { status: 'scheduled', attempts: 0, attemptsDone: 0 });
  const task = ref.address.compensation && ref.step.compensate ? ref.step.compensate : ref.step;
  draft.emit('step.scheduled', draft.now, { task: task.task, queue: task.queue, ...ref.label, ...data }, ref.step.id);
  draft.commands.push(buildUnitJob(draft.state, ref.step, ref.address));
}

/** Records that attempt `attempt` of a unit began, unless a later report already covered it. */
function markStarted(draft: Draft, ref: UnitRef, attempt: number, at: number, worker?: string): void {
  const unit = readUnit(draft, ref);
  if (!unit || (unit.status !== 'scheduled' && unit.status !== 'running') || attempt <= unit.attemptsDone) return;
  if (attempt < unit.attempts || (attempt === unit.attempts && unit.status === 'running')) return;
  writeUnit(draft, ref, { ...without(unit, 'deferredBy', 'nextAttemptAt'), status: 'running', attempts: attempt, startedAt: unit.startedAt ?? at });
  draft.emit('step.started', at, { attempt, ...ref.label, ...(worker === undefined ? {} : { worker }) }, ref.step.id);
}

function acceptsEnd(unit: UnitState | undefined, attempt: number): unit is UnitState {
  return unit !== undefined && (unit.status === 'scheduled' || unit.status === 'running') && attempt > unit.attemptsDone;
}

// ---------------------------------------------------------------------------------------------
// Steps: starting, finishing, failing

function completeStep(draft: Draft, stepId: string, output: unknown, at: number, data: Record<string, unknown> = {}): void {
  const step = draft.step(stepId) as StepState;
  draft.setStep(stepId, {
    ...without(step, 'error', 'nextAttemptAt', 'deferredBy', 'waitingFor'),
    status: 'completed',
    output,
    finishedAt: at,
  });
  draft.emit('step.completed', at, data, stepId);
}

/** Stops the work of a step: removes or aborts its jobs, cancels its items and its child case. */
function stopWorkOf(draft: Draft, stepId: string, reason: string): void {
  const step = draft.workflow.steps.get(stepId);
  const state = draft.step(stepId);
  if (!step || !state) return;
  const jobs: Array<{ queue: string; jobId: string }> = [];
  const run = runOf(state);
  if (step.kind === 'task' && !step.forEach && (state.status === 'scheduled' || state.status === 'running')) {
    jobs.push({ queue: step.queue, jobId: unitJobId(draft.state.id, stepId, { run, ...(step.repeat ? { iteration: state.iteration ?? 1 } : {}) }) });
  }
  const instances = { ...state.instances };
  for (const [index, unit] of Object.entries(instances)) {
    if (unit.status === 'scheduled' || unit.status === 'running') {
      jobs.push({ queue: step.queue, jobId: unitJobId(draft.state.id, stepId, { run, instance: Number(index) }) });
      instances[index] = { ...unit, status: 'cancelled' };
    } else if (unit.status === 'pending') instances[index] = { ...unit, status: 'cancelled' };
  }
  if (jobs.length > 0) draft.commands.push({ type: 'cancelJobs', jobs });
  if (step.kind === 'workflow' && state.status === 'running') draft.commands.push({ type: 'cancelChildren', caseId: draft.state.id, reason });
  if (state.instances) draft.setStep(stepId, { ...state, instances });
}

function cancelUnitsOf(draft: Draft, stepId: string, reason: string): void {
  stopWorkOf(draft, stepId, reason);
  const state = draft.step(stepId) as StepState;
  draft.setStep(stepId, { ...without(state, 'nextAttemptAt', 'deferredBy', 'waitingFor'), status: 'cancelled', finishedAt: draft.now });
  draft.emit('step.cancelled', draft.now, { reason }, stepId);
}

/** Cancels every step that is under way (their jobs, timers and children); pending steps stay pending. */
function cancelActiveSteps(draft: Draft, reason: string): void {
  for (const id of draft.workflow.order) {
    const status = draft.step(id)?.status;
    if (status === 'scheduled' || status === 'running' || status === 'waiting') cancelUnitsOf(draft, id, reason);
  }
}

function endCase(draft: Draft, status: 'completed' | 'failed' | 'cancelled', detail: { output?: unknown; error?: ErrorInfo }): void {
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
}

/** The report that tells a finished child's parent how it ended; the same every time it is built. */
function parentNotice(state: CaseState, parent: NonNullable<CaseState['parent']>): Command & { type: 'notifyParent' } {
  return {
    type: 'notifyParent',
    caseId: parent.caseId,
    event: {
      type: 'childFinished',
      stepId: parent.stepId,
      run: parent.run,
      childId: state.id,
      status: state.status as 'completed' | 'failed' | 'cancelled',
      at: state.finishedAt ?? state.updatedAt,
      ...(state.output === undefined ? {} : { output: state.output }),
      ...(state.error ? { error: state.error } : {}),
    },
  };
}

/** Ends the case as failed or cancelled, after compensations if `compensate` and there are any. */
function stopCase(draft: Draft, status: 'failed' | 'cancelled', error: ErrorInfo, compensate: boolean): void {
  cancelActiveSteps(draft, error.message);
  const compensable = draft.workflow.order.some((id) => draft.workflow.steps.get(id)?.compensate && draft.step(id)?.status === 'completed');
  if (compensate && compensable) {
    draft.patchCase({ compensating: { status, error } });
    draft.emit('case.compensating', draft.now, { reason: error.message });
    return;
  }
  endCase(draft, status, { error });
}

function failStep(draft: Draft, stepId: string, error: ErrorInfo, at: number, data: Record<string, unknown> = {}): void {
  const step = draft.workflow.steps.get(stepId);
  const state = draft.step(stepId);
  if (!step || !state) return;
  const stepError: ErrorInfo = { ...error, stepId };
  draft.setStep(stepId, { ...without(state, 'nextAttemptAt', 'deferredBy', 'waitingFor'), status: 'failed', finishedAt: at, error: stepError });
  draft.emit('step.failed', at, { ...data, error: stepError }, stepId);
  if (!isOpen(draft) || draft.state.compensating || step.onFailure === 'continue') return;
  const attempts = typeof error.attempt === 'number' ? ` after ${plural(error.attempt, 'attempt')}` : '';
  const caseError: ErrorInfo = {
    code: CaseErrorCode.stepFailed,
    message: `step "${stepId}" failed${attempts}: ${error.message}`,
    stepId,
    ...(typeof error.attempt === 'number' ? { attempt: error.attempt } : {}),
    details: { cause: { code: error.code, message: error.message } },
  };
  stopCase(draft, 'failed', caseError, step.onFailure === 'compensate');
}

function waitForTimer(draft: Draft, stepId: string, kind: 'sleep' | 'signalTimeout', at: number): void {
  const run = runOf(draft.step(stepId));
  draft.commands.push({
    type: 'scheduleTimer',
    jobId: `${draft.state.id}.${stepId}${run ? `.r${run}` : ''}.${kind}`,
    at,
    caseId: draft.state.id,
    event: { type: 'timerFired', stepId, run, kind, at },
  });
}

/** Hands a buffered or fresh signal to a step waiting for it; true when one took it. */
function deliverSignal(draft: Draft, name: string, payload: unknown, at: number): boolean {
  for (const id of draft.workflow.order) {
    const state = draft.step(id);
    if (state?.status === 'waiting' && state.waitingFor?.signals?.includes(name)) {
      completeStep(draft, id, { signal: name, payload }, at, { signal: name });
      return true;
    }
  }
  return false;
}

function activate(draft: Draft, step: CompiledStep): void {
  const state = draft.step(step.id) as StepState;
  const run = runOf(state);
  const fresh: StepState = { status: 'scheduled', attempts: 0, attemptsDone: 0, scheduledAt: draft.now, ...(run ? { run } : {}) };
  switch (step.kind) {
    case 'task': {
      if (step.forEach) {
        const items = renderTemplate(step.forEach.items, scope(draft.state));
        draft.setStep(step.id, { ...fresh, status: 'running' });
        if (!Array.isArray(items)) {
          failStep(draft, step.id, { code: 'ITEMS_INVALID', message: `forEach items ${step.forEach.items} is not an array` }, draft.now);
          return;
        }
        if (items.length > LIMITS.maxForEachItems) {
          failStep(draft, step.id, { code: 'ITEMS_INVALID', message: `forEach has ${items.length} items; at most ${LIMITS.maxForEachItems}` }, draft.now);
          return;
        }
        const instances: Record<string, UnitState> = {};
        items.forEach((_item, index) => (instances[String(index)] = { status: 'pending', attempts: 0, attemptsDone: 0 }));
        draft.setStep(step.id, { ...fresh, status: 'running', instances, itemCount: items.length });
        draft.emit('step.started', draft.now, { items: items.length, concurrency: step.forEach.concurrency }, step.id);
        if (items.length === 0) completeStep(draft, step.id, { items: [], failed: [] }, draft.now, { items: 0 });
        else fillInstances(draft, step);
        return;
      }
      draft.setStep(step.id, { ...fresh, ...(step.repeat ? { iteration: 1 } : {}) });
      scheduleUnit(draft, { step, address: { run, ...(step.repeat ? { iteration: 1 } : {}) }, label: step.repeat ? { iteration: 1 } : {} });
      return;
    }
    case 'sleep': {
      const until = step.sleep?.forMs !== undefined ? draft.now + step.sleep.forMs : Date.parse(String(renderTemplate(step.sleep?.until ?? '', scope(draft.state))));
      draft.setStep(step.id, fresh);
      if (Number.isNaN(until)) {
        failStep(draft, step.id, { code: 'SLEEP_UNTIL_INVALID', message: `sleep until ${step.sleep?.until ?? ''} is not a time` }, draft.now);
        return;
      }
      if (until <= draft.now) {
        completeStep(draft, step.id, { sleptUntil: new Date(until).toISOString() }, draft.now);
        return;
      }
      draft.setStep(step.id, { ...fresh, status: 'waiting', waitingFor: { until } });
      draft.emit('step.waiting', draft.now, { until }, step.id);
      waitForTimer(draft, step.id, 'sleep', until);
      return;
    }
    case 'waitFor': {
      const signals = step.waitFor?.signals ?? [];
      const until = step.waitFor?.timeoutMs === undefined ? undefined : draft.now + step.waitFor.timeoutMs;
      draft.setStep(step.id, { ...fresh, status: 'waiting', waitingFor: { signals, ...(until === undefined ? {} : { until }) } });
      draft.emit('step.waiting', draft.now, { signals, ...(until === undefined ? {} : { until }) }, step.id);
      const buffered = (draft.state.signals ?? []).findIndex((signal) => signals.includes(signal.name));
      const signal = draft.state.signals?.[buffered];
      if (signal) {
        draft.patchCase({ signals: (draft.state.signals ?? []).filter((_, index) => index !== buffered) });
        completeStep(draft, step.id, { signal: signal.name, payload: signal.payload }, draft.now, { signal: signal.name, buffered: true });
      } else if (until !== undefined) waitForTimer(draft, step.id, 'signalTimeout', until);
      return;
    }
    case 'workflow': {
      const depth = (draft.state.depth ?? 0) + 1;
      draft.setStep(step.id, { ...fresh, status: 'running', startedAt: draft.now });
      draft.emit('step.started', draft.now, { workflow: step.workflow?.name }, step.id);
      if (depth > LIMITS.maxNesting) {
        failStep(draft, step.id, { code: 'NESTING_TOO_DEEP', message: `sub-workflows nest at most ${LIMITS.maxNesting} deep` }, draft.now);
        return;
      }
      draft.commands.push(childCommand(draft.state, step));
      return;
    }
  }
}

/** The command that starts (or, idempotently, finds) the child case of a sub-workflow step. */
function childCommand(state: CaseState, step: CompiledStep): Command & { type: 'startChild' } {
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

/** Schedules pending items of a forEach step up to its concurrency. */
function fillInstances(draft: Draft, step: CompiledStep): void {
  const state = draft.step(step.id) as StepState;
  const units = Object.entries(state.instances ?? {});
  let active = units.filter(([, unit]) => unit.status === 'scheduled' || unit.status === 'running').length;
  for (const [index, unit] of units) {
    if (active >= (step.forEach?.concurrency ?? 1)) break;
    if (unit.status !== 'pending') continue;
    scheduleUnit(draft, { step, address: { run: runOf(state), instance: Number(index) }, label: { instance: Number(index) } });
    active += 1;
  }
}

/** A forEach step ends when every item has; failFast ends it at the first item that fails for good. */
function settleInstances(draft: Draft, step: CompiledStep): void {
  const state = draft.step(step.id) as StepState;
  if (state.status !== 'running') return;
  const units = Object.entries(state.instances ?? {});
  const failedUnits = units.filter(([, unit]) => unit.status === 'failed');
  if (step.forEach?.failure === 'failFast' && failedUnits.length > 0) {
    const [index, unit] = failedUnits[0] as [string, UnitState];
    const error: ErrorInfo = { code: 'ITEM_FAILED', message: `item ${index} failed: ${unit.error?.message ?? 'unknown error'}`, details: { index: Number(index), cause: unit.error ?? null } };
    stopWorkOf(draft, step.id, 'another item failed');
    failStep(draft, step.id, error, draft.now);
    return;
  }
  if (units.every(([, unit]) => unit.status === 'completed' || unit.status === 'failed')) {
    const items = units.map(([, unit]) => (unit.status === 'completed' ? (unit.output ?? null) : null));
    const failed = failedUnits.map(([index, unit]) => ({ index: Number(index), error: unit.error ?? null }));
    completeStep(draft, step.id, { items, failed }, draft.now, { items: units.length, failed: failed.length });
    return;
  }
  fillInstances(draft, step);
}

/** What a repeat step does after an iteration completed: another, or done. */
function afterIteration(draft: Draft, step: CompiledStep, output: unknown, at: number): void {
  const state = draft.step(step.id) as StepState;
  const iteration = state.iteration ?? 1;
  const condition = step.repeat?.while ?? 'false';
  let again = false;
  try {
    again = evaluateCondition(condition, conditionVariables(draft, condition, { output, iteration }), { stepId: step.id, field: 'repeat.while' }, draft.conditions);
  } catch (error) {
    failStep(draft, step.id, conditionErrorInfo(error), at);
    return;
  }
  if (again && iteration < (step.repeat?.maxIterations ?? 1)) {
    const next = iteration + 1;
    draft.setStep(step.id, { ...without(state, 'error', 'startedAt', 'finishedAt'), status: 'scheduled', iteration: next, output });
    scheduleUnit(draft, { step, address: { run: runOf(state), iteration: next }, label: { iteration: next } });
    return;
  }
  completeStep(draft, step.id, output, at, { iterations: iteration, ...(again ? { stoppedAt: 'maxIterations' } : {}) });
}

// ---------------------------------------------------------------------------------------------
// Settling: starting what is ready, compensating, ending the case

const resolved = (draft: Draft, id: string) => {
  const state = draft.step(id);
  const step = draft.workflow.steps.get(id);
  return state?.status === 'completed' || state?.status === 'skipped' || (state?.status === 'failed' && step?.onFailure === 'continue');
};

function skip(draft: Draft, stepId: string, reason: string): void {
  draft.setStep(stepId, { ...(draft.step(stepId) as StepState), status: 'skipped', skipReason: reason, finishedAt: draft.now });
  draft.emit('step.skipped', draft.now, { reason }, stepId);
}

function settleCompensation(draft: Draft): void {
  const ending = draft.state.compensating;
  if (!ending) return;
  // Reverse order of completion: undo the latest effect first, one at a time.
  const candidates = draft.workflow.order
    .filter((id) => draft.workflow.steps.get(id)?.compensate && (draft.step(id)?.status === 'completed' || draft.step(id)?.compensation))
    .sort((a, b) => (draft.step(b)?.finishedAt ?? 0) - (draft.step(a)?.finishedAt ?? 0));
  for (const id of candidates) {
    const unit = draft.step(id)?.compensation;
    if (unit && (unit.status === 'scheduled' || unit.status === 'running')) return;
    if (!unit) {
      const step = draft.workflow.steps.get(id) as CompiledStep;
      scheduleUnit(draft, { step, address: { run: runOf(draft.step(id)), compensation: true }, label: { compensation: true } });
      return;
    }
  }
  const compensated = candidates.filter((id) => draft.step(id)?.status === 'compensated');
  const failed = candidates.filter((id) => draft.step(id)?.compensation?.status === 'failed');
  draft.patchCase({ compensating: undefined });
  endCase(draft, ending.status, { error: { ...ending.error, details: { ...(ending.error.details as object | undefined), compensated, compensationFailed: failed } } });
}

function settle(draft: Draft): void {
  if (!isOpen(draft)) return;
  if (draft.state.compensating) return settleCompensation(draft);
  for (let changed = true; changed && isOpen(draft) && !draft.state.compensating; ) {
    changed = false;
    for (const id of draft.workflow.order) {
      const step = draft.workflow.steps.get(id) as CompiledStep;
      if (draft.step(id)?.status !== 'pending' || !step.after.every((dependency) => resolved(draft, dependency))) continue;
      changed = true;
      if (step.after.length > 0 && step.after.every((dependency) => draft.step(dependency)?.status === 'skipped')) {
        skip(draft, id, 'every step it waits for was skipped');
        continue;
      }
      if (step.when !== undefined) {
        let holds: boolean;
        try {
          holds = evaluateCondition(step.when, conditionVariables(draft, step.when), { stepId: id, field: 'when' }, draft.conditions);
        } catch (error) {
          draft.setStep(id, { ...(draft.step(id) as StepState), status: 'running' });
          failStep(draft, id, conditionErrorInfo(error), draft.now);
          continue;
        }
        if (!holds) {
          skip(draft, id, `condition is false: ${step.when}`);
          continue;
        }
      }
      activate(draft, step);
    }
  }
  if (!isOpen(draft)) return;
  if (draft.state.compensating) return settleCompensation(draft);
  const states = draft.workflow.order.map((id) => draft.step(id));
  if (states.every((state) => state && isTerminalStep(state.status))) {
    endCase(draft, 'completed', { output: caseOutput(draft) });
    return;
  }
  const busy = states.some((state) => state?.status === 'scheduled' || state?.status === 'running');
  const status = busy || !states.some((state) => state?.status === 'waiting') ? 'running' : 'waiting';
  if (draft.state.status !== status) draft.patchCase({ status });
}

function caseOutput(draft: Draft): unknown {
  const { workflow } = draft;
  if (workflow.output !== undefined) return renderTemplate(workflow.output, scope(draft.state));
  const output: Record<string, unknown> = {};
  for (const sink of workflow.sinks) output[sink] = draft.state.steps[sink]?.output ?? null;
  return output;
}

// ---------------------------------------------------------------------------------------------
// Events

function onUnitEnd(draft: Draft, ref: UnitRef, outcome: { output?: unknown; error?: ErrorInfo; at: number }): void {
  const { step, address } = ref;
  if (address.compensation) {
    const state = draft.step(step.id) as StepState;
    if (outcome.error) draft.emit('compensation.failed', outcome.at, { error: outcome.error }, step.id);
    else {
      draft.setStep(step.id, { ...state, status: 'compensated' });
      draft.emit('step.compensated', outcome.at, {}, step.id);
    }
    return;
  }
  if (address.instance !== undefined) {
    if (isOpen(draft) && !draft.state.compensating) settleInstances(draft, step);
    return;
  }
  if (outcome.error) {
    failStep(draft, step.id, outcome.error, outcome.at, typeof outcome.error.attempt === 'number' ? { attempt: outcome.error.attempt } : {});
    return;
  }
  if (step.repeat) afterIteration(draft, step, outcome.output ?? null, outcome.at);
  else {
    const state = draft.step(step.id) as StepState;
    draft.setStep(step.id, { ...state, status: 'completed', finishedAt: outcome.at, output: outcome.output ?? null });
  }
}

function apply(draft: Draft, event: CaseEvent): void {
  switch (event.type) {
    case 'stepStarted': {
      const ref = unitFor(draft, event);
      if (ref) markStarted(draft, ref, event.attempt, event.at, event.worker);
      return;
    }

    case 'stepRetrying': {
      const ref = unitFor(draft, event);
      if (!ref || !acceptsEnd(readUnit(draft, ref), event.attempt)) return;
      markStarted(draft, ref, event.attempt, event.startedAt);
      const unit = readUnit(draft, ref) as UnitState;
      writeUnit(draft, ref, { ...unit, status: 'scheduled', attempts: event.attempt, attemptsDone: event.attempt, error: event.error, nextAttemptAt: event.retryAt });
      draft.emit(
        'step.retried',
        event.at,
        { attempt: event.attempt, ...ref.label, error: event.error, retryAt: event.retryAt, durationMs: event.at - event.startedAt },
        event.stepId,
      );
      return;
    }

    case 'stepCompleted': {
      const ref = unitFor(draft, event);
      if (!ref || !acceptsEnd(readUnit(draft, ref), event.attempt)) return;
      markStarted(draft, ref, event.attempt, event.startedAt);
      const unit = readUnit(draft, ref) as UnitState;
      writeUnit(draft, ref, {
        ...without(unit, 'error', 'nextAttemptAt', 'deferredBy'),
        status: 'completed',
        attempts: event.attempt,
        attemptsDone: event.attempt,
        finishedAt: event.at,
        output: event.output,
      });
      draft.emit('step.completed', event.at, { attempt: event.attempt, ...ref.label, durationMs: event.at - event.startedAt }, event.stepId);
      onUnitEnd(draft, ref, { output: event.output, at: event.at });
      return;
    }

    case 'stepFailed': {
      const ref = unitFor(draft, event);
      if (!ref || !acceptsEnd(readUnit(draft, ref), event.attempt)) return;
      if (event.startedAt !== undefined) markStarted(draft, ref, event.attempt, event.startedAt);
      const unit = readUnit(draft, ref) as UnitState;
      const error: ErrorInfo = { ...event.error, stepId: event.stepId, attempt: event.attempt };
      writeUnit(draft, ref, { ...without(unit, 'nextAttemptAt', 'deferredBy'), status: 'failed', attempts: Math.max(unit.attempts, event.attempt), attemptsDone: event.attempt, finishedAt: event.at, error });
      if (ref.address.instance !== undefined) draft.emit('step.failed', event.at, { attempt: event.attempt, ...ref.label, error }, event.stepId);
      if (ref.address.instance === undefined && !ref.address.compensation) {
        // The step's own unit: failStep records the step and applies its failure policy.
        const state = draft.step(event.stepId) as StepState;
        draft.setStep(event.stepId, { ...state, status: 'running' });
      }
      onUnitEnd(draft, ref, { error, at: event.at });
      return;
    }

    case 'stepDeferred': {
      const ref = unitFor(draft, event);
      const unit = ref ? readUnit(draft, ref) : undefined;
      if (!ref || !acceptsEnd(unit, event.attempt)) return;
      if (unit.deferredBy === event.breaker && unit.nextAttemptAt === event.until) return;
      writeUnit(draft, ref, { ...unit, status: 'scheduled', nextAttemptAt: event.until, deferredBy: event.breaker });
      draft.emit('step.deferred', event.at, { attempt: event.attempt, ...ref.label, breaker: event.breaker, until: event.until }, event.stepId);
      return;
    }

    case 'breakerOpened':
      draft.emit('breaker.opened', event.at, { breaker: event.breaker, until: event.until }, event.stepId);
      return;

    case 'breakerClosed':
      draft.emit('breaker.closed', event.at, { breaker: event.breaker }, event.stepId);
      return;

    case 'deadlineExceeded':
      if (!isOpen(draft) || draft.state.compensating) return;
      stopCase(
        draft,
        'failed',
        { code: CaseErrorCode.deadlineExceeded, message: `case did not finish by its deadline ${new Date(draft.state.deadlineAt).toISOString()}` },
        false,
      );
      return;

    case 'signal': {
      if (!isOpen(draft)) return;
      const taken = draft.workflow.order.some((id) => draft.step(id)?.status === 'waiting' && draft.step(id)?.waitingFor?.signals?.includes(event.name));
      const refusal = taken ? undefined : signalBufferRefusal(draft.state, event.payload);
      if (refusal) return refuseSignal(draft, event, refusal);
      draft.emit('signal.received', event.at, { name: event.name });
      // Kept for a step that has not started waiting yet (appended: the store writes only the newcomer).
      if (!deliverSignal(draft, event.name, event.payload, event.at)) draft.patchCase({ signals: [...(draft.state.signals ?? []), { name: event.name, payload: event.payload, at: event.at }] });
      return;
    }

    case 'timerFired': {
      const state = draft.step(event.stepId);
      if (!isOpen(draft) || state?.status !== 'waiting' || runOf(state) !== event.run) return;
      if (event.kind === 'sleep' && state.waitingFor?.until !== undefined && state.waitingFor.signals === undefined) {
        completeStep(draft, event.stepId, { sleptUntil: new Date(state.waitingFor.until).toISOString() }, event.at);
      } else if (event.kind === 'signalTimeout' && state.waitingFor?.signals) {
        completeStep(draft, event.stepId, { signal: null, timedOut: true }, event.at, { timedOut: true });
      }
      return;
    }

    case 'childStarted': {
      const state = draft.step(event.stepId);
      if (state?.status !== 'running' || runOf(state) !== event.run || state.childCaseId === event.childId) return;
      draft.setStep(event.stepId, { ...state, childCaseId: event.childId });
      draft.emit('child.started', event.at, { childId: event.childId }, event.stepId);
      return;
    }

    case 'childFinished': {
      const state = draft.step(event.stepId);
      if (state?.status !== 'running' || runOf(state) !== event.run) return;
      draft.setStep(event.stepId, { ...state, childCaseId: event.childId });
      if (event.status === 'completed') completeStep(draft, event.stepId, event.output ?? null, event.at, { childId: event.childId });
      else {
        failStep(
          draft,
          event.stepId,
          {
            code: event.status === 'cancelled' ? 'CHILD_CANCELLED' : 'CHILD_FAILED',
            message: `sub-workflow case ${event.childId} ${event.status}${event.error ? `: ${event.error.message}` : ''}`,
            details: { childId: event.childId, cause: event.error ?? null },
          },
          event.at,
          { childId: event.childId },
        );
      }
      return;
    }

    case 'cancel':
      if (!isOpen(draft) || draft.state.compensating) return;
      stopCase(draft, 'cancelled', { code: 'CANCELLED', message: event.reason }, event.compensate ?? draft.workflow.compensateOnCancel);
      return;

    case 'stuck':
      if (!isOpen(draft) || draft.state.stuck?.reason === event.reason) return;
      draft.patchCase({ stuck: { reason: event.reason, since: draft.state.stuck?.since ?? event.at } });
      draft.emit('case.stuck', event.at, { reason: event.reason });
      return;

    case 'retry': {
      // A compensated case has undone its work: retrying it would redo only part of it.
      if (draft.state.status !== 'failed' || Object.values(draft.state.steps).some((step) => step.compensation)) return;
      for (const id of draft.workflow.order) {
        const state = draft.step(id) as StepState;
        if (state.status !== 'failed' && state.status !== 'cancelled') continue;
        draft.setStep(id, { status: 'pending', attempts: 0, attemptsDone: 0, run: runOf(state) + 1 });
      }
      draft.patchCase({ status: 'running', error: undefined, finishedAt: undefined, deadlineAt: draft.now + draft.workflow.deadlineMs });
      draft.emit('case.retried', event.at, { deadlineAt: draft.state.deadlineAt });
      return;
    }
  }
}

/** A signal the case cannot keep: recorded in the trace, and answered to its sender as refused. */
function refuseSignal(draft: Draft, event: CaseEvent & { type: 'signal' }, error: ErrorInfo): void {
  draft.emit('signal.received', event.at, { name: event.name, refused: { code: error.code, message: error.message } });
  draft.refused.push({ event, error });
}

function growthOf(event: CaseEvent): string {
  const unit = (stepId: string, address: UnitAddress) => `step "${stepId}"${address.instance === undefined ? '' : ` item ${address.instance}`}`;
  if (event.type === 'stepCompleted') return `the output of ${unit(event.stepId, event)}`;
  if (event.type === 'signal') return `signal "${event.name}"`;
  if (event.type === 'childFinished') return `the output of sub-workflow case ${event.childId}`;
  return `what follows ${event.type}${'stepId' in event ? ` of step "${event.stepId}"` : ''}`;
}

/**
 * Applies one event unless that takes the case past its budget. Then the event is undone and,
 * in its place, a step's result fails the step with CASE_TOO_LARGE (its failure policy applies),
 * a signal is refused, and anything else (or a failure whose aftermath still does not fit)
 * fails the case. Events that only stop or remark (mayExceedBudget) always apply, so a case over
 * its budget can still be cancelled, fail or be marked stuck.
 */
function applyWithinBudget(draft: Draft, event: CaseEvent, budget: CaseBudget): void {
  const start = draft.checkpoint();
  apply(draft, event);
  settle(draft);
  if (mayExceedBudget(event) || draft.events.length === start.events) return;
  const bytes = caseBytes(draft.state, start.state);
  if (bytes <= budget.maxCaseBytes) return;
  draft.restore(start);
  const error = tooLargeError(bytes, budget, growthOf(event));
  if (event.type === 'signal') return refuseSignal(draft, event, error);
  const substitute = tooLargeSubstitute(event, error);
  if (substitute) {
    apply(draft, substitute);
    settle(draft);
    // While compensations run, the case cannot be failed over again: the failure stands as it is.
    if (caseBytes(draft.state, start.state) <= budget.maxCaseBytes || draft.state.compensating) return;
    draft.restore(start);
  }
  if (isOpen(draft) && !draft.state.compensating) stopCase(draft, 'failed', error, false);
  else {
    apply(draft, event);
    settle(draft);
  }
}

// ---------------------------------------------------------------------------------------------
// Entry points

/** Starts a case: all steps pending, then whatever is ready started (or skipped). */
export function createCase(
  workflow: CompiledWorkflow,
  init: { id: string; input: unknown; now: number; requestId?: string; parent?: CaseState['parent']; depth?: number },
): Transition {
  const steps: Record<string, StepState> = {};
  for (const id of workflow.order) steps[id] = { status: 'pending', attempts: 0, attemptsDone: 0 };
  const deadlineAt = init.now + workflow.deadlineMs;
  const state: CaseState = {
    id: init.id,
    workflow: workflow.name,
    version: workflow.version,
    status: 'running',
    input: init.input,
    steps,
    createdAt: init.now,
    updatedAt: init.now,
    deadlineAt,
    revision: 0,
    seq: 0,
    ...(init.requestId === undefined ? {} : { requestId: init.requestId }),
    ...(init.parent === undefined ? {} : { parent: init.parent }),
    ...(init.depth ? { depth: init.depth } : {}),
  };
  const draft = new Draft(workflow, state, init.now);
  draft.emit('case.created', init.now, {
    workflow: workflow.name,
    version: workflow.version,
    deadlineAt,
    ...(init.requestId === undefined ? {} : { requestId: init.requestId }),
    ...(init.parent === undefined ? {} : { parent: init.parent.caseId, parentStep: init.parent.stepId }),
  });
  settle(draft);
  const result = draft.finish();
  // A new case starts at revision 0: the first stored document is the one just built.
  return { ...result, state: { ...result.state, revision: 0 } };
}

/**
 * Applies events in order to a case. Returns the state unchanged, with no events, when none of
 * them changes anything (duplicates, reports about attempts already accounted for).
 */
export function transition(workflow: CompiledWorkflow, state: CaseState, events: readonly CaseEvent[], now: number, budget: CaseBudget = DEFAULT_CASE_BUDGET): Transition {
  const draft = new Draft(workflow, state, now);
  let progressed = false;
  for (const event of events) {
    const before = draft.events.length;
    const refusals = draft.refused.length;
    applyWithinBudget(draft, event, budget);
    if (event.type === 'stuck' || draft.events.length === before || draft.refused.length > refusals) continue;
    progressed = true;
    // Any progress clears the stuck mark: the case moved after all.
    if (draft.state.stuck) draft.patchCase({ stuck: undefined });
  }
  return draft.finish(progressed);
}

/**
 * The work a case should have under way right now: a job per scheduled or running unit, a
 * timer per waiting step. Re-adding them is harmless (ids are deterministic), so the shell
 * re-issues them when a report turns out to be a duplicate or a case looks stuck: a lost
 * enqueue or a lost timer is made good.
 */
export function outstandingWork(workflow: CompiledWorkflow, state: CaseState): Command[] {
  // A finished child's notice to its parent: if the process that finished it died (or failed)
  // before sending it, a later duplicate report is the moment to send it again; the parent
  // applies it once.
  if (isTerminalCase(state.status)) return state.parent ? [parentNotice(state, state.parent)] : [];
  const commands: Command[] = [];
  for (const id of workflow.order) {
    const step = workflow.steps.get(id);
    const stepState = state.steps[id];
    if (!step || !stepState) continue;
    const run = runOf(stepState);
    const live = (unit: UnitState | undefined) => unit?.status === 'scheduled' || unit?.status === 'running';
    if (live(stepState.compensation)) commands.push(buildUnitJob(state, step, { run, compensation: true }));
    if (step.kind === 'task' && !step.forEach && (stepState.status === 'scheduled' || stepState.status === 'running')) {
      commands.push(buildUnitJob(state, step, { run, ...(step.repeat ? { iteration: stepState.iteration ?? 1 } : {}) }));
    }
    for (const [index, unit] of Object.entries(stepState.instances ?? {})) {
      if (live(unit) && stepState.status === 'running') commands.push(buildUnitJob(state, step, { run, instance: Number(index) }));
    }
    if (step.kind === 'workflow' && stepState.status === 'running' && stepState.childCaseId === undefined) commands.push(childCommand(state, step));
    if (stepState.status === 'waiting' && stepState.waitingFor?.until !== undefined) {
      const kind = stepState.waitingFor.signals ? 'signalTimeout' : 'sleep';
      commands.push({
        type: 'scheduleTimer',
        jobId: `${state.id}.${id}${run ? `.r${run}` : ''}.${kind}`,
        at: stepState.waitingFor.until,
        caseId: state.id,
        event: { type: 'timerFired', stepId: id, run, kind, at: stepState.waitingFor.until },
      });
    }
  }
  return commands;
}

/** The step jobs among the outstanding work (what the reconciler checks in the queues). */
export function outstandingJobs(workflow: CompiledWorkflow, state: CaseState): Array<Command & { type: 'enqueueStep' }> {
  return outstandingWork(workflow, state).filter((command): command is Command & { type: 'enqueueStep' } => command.type === 'enqueueStep');
}
