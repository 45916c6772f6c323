import type { CompiledStep, CompiledWorkflow } from './definition.js';
import { CaseErrorCode } from './errors.js';
import {
  isTerminalCase,
  isTerminalStep,
  type CaseEvent,
  type CaseState,
  type Command,
  type ErrorInfo,
  type StepState,
  type TraceEvent,
  type TraceType,
  type Transition,
} from './state.js';
import { renderTemplate, type TemplateScope } from './template.js';

/**
 * The engine's rules as pure functions: a state and an event go in, the next state, the trace
 * events it adds and the commands to carry out come out. No clock, no ids, no I/O: `now` and
 * ids are arguments, so every rule is tested with plain data.
 *
 * Events may arrive twice or out of order (queues deliver at least once, several processes
 * report about one step). Each rule therefore checks that the event still fits the state and
 * otherwise returns the state unchanged with no events: applying a duplicate is a no-op.
 */

/** Builds transitions step by step; each change bumps the state's seq through `emit`. */
class Draft {
  state: CaseState;
  readonly events: TraceEvent[] = [];
  readonly commands: Command[] = [];

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

  finish(): Transition {
    if (this.events.length === 0) return { state: this.state, events: [], commands: [] };
    return { state: { ...this.state, revision: this.state.revision + 1, updatedAt: this.now }, events: this.events, commands: this.commands };
  }
}

/** The job id of a step: the same for every retry and every duplicate enqueue of that step. */
export function stepJobId(caseId: string, stepId: string): string {
  return `${caseId}.${stepId}`;
}

/** The idempotency key handlers see: stable across the retries of one step of one case. */
export function stepIdempotencyKey(caseId: string, stepId: string): string {
  return `${caseId}:${stepId}`;
}

function buildScope(state: CaseState): TemplateScope {
  const stepOutputs: Record<string, unknown> = {};
  for (const [id, step] of Object.entries(state.steps)) if (step.status === 'completed') stepOutputs[id] = step.output;
  return { input: state.input, stepOutputs, case: { id: state.id, workflow: state.workflow, version: state.version } };
}

/** The job that runs `step` for the case in `state`, its input rendered from the state's data. */
export function buildStepJob(state: CaseState, step: CompiledStep): Command & { type: 'enqueueStep' } {
  const scope = buildScope(state);
  return {
    type: 'enqueueStep',
    queue: step.queue,
    jobId: stepJobId(state.id, step.id),
    job: {
      caseId: state.id,
      workflow: state.workflow,
      version: state.version,
      stepId: step.id,
      task: step.task,
      input: renderTemplate(step.input, scope),
      idempotencyKey: stepIdempotencyKey(state.id, step.id),
      maxAttempts: step.maxAttempts,
      backoff: step.backoff,
      timeoutMs: step.timeoutMs,
      breaker: step.breaker,
      ...(state.requestId === undefined ? {} : { requestId: state.requestId }),
    },
  };
}

/**
 * The jobs a case should have in its queues right now: one per scheduled or running step.
 * Re-adding them is harmless (job ids are deterministic), so the shell re-issues them when a
 * report turns out to be a duplicate or a case looks stuck: a lost enqueue is made good.
 */
export function outstandingJobs(workflow: CompiledWorkflow, state: CaseState): Array<Command & { type: 'enqueueStep' }> {
  if (isTerminalCase(state.status)) return [];
  const jobs: Array<Command & { type: 'enqueueStep' }> = [];
  for (const id of workflow.order) {
    const stepState = state.steps[id];
    const step = workflow.steps.get(id);
    if (step && (stepState?.status === 'scheduled' || stepState?.status === 'running')) jobs.push(buildStepJob(state, step));
  }
  return jobs;
}

function schedule(draft: Draft, step: CompiledStep): void {
  draft.setStep(step.id, { status: 'scheduled', attempts: 0, attemptsDone: 0, scheduledAt: draft.now });
  draft.emit('step.scheduled', draft.now, { task: step.task, queue: step.queue }, step.id);
  draft.commands.push(buildStepJob(draft.state, step));
}

function caseOutput(draft: Draft): unknown {
  const { workflow } = draft;
  if (workflow.output !== undefined) {
    return renderTemplate(workflow.output, buildScope(draft.state));
  }
  const output: Record<string, unknown> = {};
  for (const sink of workflow.sinks) output[sink] = draft.state.steps[sink]?.output ?? null;
  return output;
}

function endCase(draft: Draft, status: 'completed' | 'failed', at: number, detail: { output?: unknown; error?: ErrorInfo }): void {
  const { output, error } = detail;
  draft.state = { ...draft.state, status, finishedAt: at, ...(output === undefined ? {} : { output }), ...(error ? { error } : {}) };
  const start = draft.state.createdAt;
  if (status === 'completed') draft.emit('case.completed', at, { durationMs: at - start });
  else draft.emit('case.failed', at, { durationMs: at - start, error });
}

/** Schedules every dependent whose dependencies have all completed; completes the case when all steps have. */
function advance(draft: Draft, completedStepId: string): void {
  const completed = draft.workflow.steps.get(completedStepId);
  for (const dependentId of completed?.dependents ?? []) {
    const dependent = draft.workflow.steps.get(dependentId);
    if (!dependent || draft.step(dependentId)?.status !== 'pending') continue;
    if (dependent.after.every((id) => draft.step(id)?.status === 'completed')) schedule(draft, dependent);
  }
  const allDone = draft.workflow.order.every((id) => draft.step(id)?.status === 'completed');
  if (allDone) endCase(draft, 'completed', draft.now, { output: caseOutput(draft) });
}

/** Starts a case: all steps pending, the roots scheduled, the deadline set. */
export function createCase(
  workflow: CompiledWorkflow,
  init: { id: string; input: unknown; now: number; requestId?: string },
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
  };
  const draft = new Draft(workflow, state, init.now);
  draft.emit('case.created', init.now, {
    workflow: workflow.name,
    version: workflow.version,
    deadlineAt,
    ...(init.requestId === undefined ? {} : { requestId: init.requestId }),
  });
  for (const root of workflow.roots) {
    const step = workflow.steps.get(root);
    if (step) schedule(draft, step);
  }
  const result = draft.finish();
  // A new case starts at revision 0: the first stored document is the one just built.
  return { ...result, state: { ...result.state, revision: 0 } };
}

/** Records that attempt `attempt` began, unless a later report already covered it. */
function markStarted(draft: Draft, stepId: string, attempt: number, at: number, worker?: string): boolean {
  const step = draft.step(stepId);
  if (!step || isTerminalStep(step.status) || attempt <= step.attemptsDone) return false;
  if (attempt < step.attempts || (attempt === step.attempts && step.status === 'running')) return false;
  const { deferredBy: _deferred, nextAttemptAt: _next, ...rest } = step;
  draft.setStep(stepId, { ...rest, status: 'running', attempts: attempt, startedAt: step.startedAt ?? at });
  draft.emit('step.started', at, worker === undefined ? { attempt } : { attempt, worker }, stepId);
  return true;
}

/** Whether a report about the end of `attempt` still fits the step. */
function acceptsEnd(step: StepState | undefined, attempt: number): step is StepState {
  return step !== undefined && !isTerminalStep(step.status) && attempt > step.attemptsDone;
}

function apply(draft: Draft, event: CaseEvent): void {
  const caseOpen = !isTerminalCase(draft.state.status);
  switch (event.type) {
    case 'stepStarted':
      markStarted(draft, event.stepId, event.attempt, event.at, event.worker);
      return;

    case 'stepRetrying': {
      if (!acceptsEnd(draft.step(event.stepId), event.attempt)) return;
      markStarted(draft, event.stepId, event.attempt, event.startedAt);
      const step = draft.step(event.stepId) as StepState;
      draft.setStep(event.stepId, {
        ...step,
        status: 'scheduled',
        attempts: event.attempt,
        attemptsDone: event.attempt,
        error: event.error,
        nextAttemptAt: event.retryAt,
      });
      draft.emit(
        'step.retried',
        event.at,
        { attempt: event.attempt, error: event.error, retryAt: event.retryAt, durationMs: event.at - event.startedAt },
        event.stepId,
      );
      return;
    }

    case 'stepCompleted': {
      if (!acceptsEnd(draft.step(event.stepId), event.attempt)) return;
      markStarted(draft, event.stepId, event.attempt, event.startedAt);
      const { error: _error, nextAttemptAt: _next, deferredBy: _deferred, ...step } = draft.step(event.stepId) as StepState;
      draft.setStep(event.stepId, {
        ...step,
        status: 'completed',
        attempts: event.attempt,
        attemptsDone: event.attempt,
        finishedAt: event.at,
        output: event.output,
      });
      draft.emit('step.completed', event.at, { attempt: event.attempt, durationMs: event.at - event.startedAt }, event.stepId);
      if (caseOpen) advance(draft, event.stepId);
      return;
    }

    case 'stepFailed': {
      if (!acceptsEnd(draft.step(event.stepId), event.attempt)) return;
      if (event.startedAt !== undefined) markStarted(draft, event.stepId, event.attempt, event.startedAt);
      const { nextAttemptAt: _next, deferredBy: _deferred, ...step } = draft.step(event.stepId) as StepState;
      const error: ErrorInfo = { ...event.error, stepId: event.stepId, attempt: event.attempt };
      draft.setStep(event.stepId, {
        ...step,
        status: 'failed',
        attempts: Math.max(step.attempts, event.attempt),
        attemptsDone: event.attempt,
        finishedAt: event.at,
        error,
      });
      draft.emit('step.failed', event.at, { attempt: event.attempt, error }, event.stepId);
      if (caseOpen) {
        const attempts = event.attempt === 1 ? '1 attempt' : `${event.attempt} attempts`;
        endCase(draft, 'failed', event.at, {
          error: {
            code: CaseErrorCode.stepFailed,
            message: `step "${event.stepId}" failed after ${attempts}: ${event.error.message}`,
            stepId: event.stepId,
            attempt: event.attempt,
            details: { cause: { code: event.error.code, message: event.error.message } },
          },
        });
      }
      return;
    }

    case 'stepDeferred': {
      const step = draft.step(event.stepId);
      if (!acceptsEnd(step, event.attempt)) return;
      if (step.deferredBy === event.breaker && step.nextAttemptAt === event.until) return;
      draft.setStep(event.stepId, { ...step, status: 'scheduled', nextAttemptAt: event.until, deferredBy: event.breaker });
      draft.emit('step.deferred', event.at, { attempt: event.attempt, breaker: event.breaker, until: event.until }, event.stepId);
      return;
    }

    case 'breakerOpened':
      draft.emit('breaker.opened', event.at, { breaker: event.breaker, until: event.until }, event.stepId);
      return;

    case 'breakerClosed':
      draft.emit('breaker.closed', event.at, { breaker: event.breaker }, event.stepId);
      return;

    case 'deadlineExceeded':
      if (!caseOpen) return;
      endCase(draft, 'failed', event.at, {
        error: {
          code: CaseErrorCode.deadlineExceeded,
          message: `case did not finish by its deadline ${new Date(draft.state.deadlineAt).toISOString()}`,
        },
      });
      return;
  }
}

/**
 * Applies events in order to a case. Returns the state unchanged, with no events, when none of
 * them changes anything (duplicates, reports about attempts already accounted for).
 */
export function transition(workflow: CompiledWorkflow, state: CaseState, events: readonly CaseEvent[], now: number): Transition {
  const draft = new Draft(workflow, state, now);
  for (const event of events) apply(draft, event);
  return draft.finish();
}
