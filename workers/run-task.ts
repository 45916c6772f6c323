import { ErrorCode } from '../lib/core/error-codes.js';
import { formatDuration, plural } from '../lib/core/format.js';
import { PAYLOAD_LIMITS, payloadIssues } from '../lib/core/requests.js';
import { hasAttemptsLeft, retryDelayMs } from '../lib/core/retry.js';
import { unitAddressOf } from '../lib/core/machine/jobs.js';
import type { CaseEvent, ErrorInfo, StepJob, StepReport } from '../lib/core/state.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Metrics } from '../lib/obs/metrics.js';
import type { Clock } from '../lib/ports/clock.js';
import { CANCEL_REASON, SHUTDOWN_REASON, type Outcome, type Processor, type TaskQueues } from '../lib/ports/queues.js';
import type { Handler, TaskContext } from '../lib/sdk/index.js';
import { isNonRetryable, type Breakers } from './breakers.js';
import type { UnitLimits } from './unit-limits.js';

export interface TaskRunnerDeps {
  handlers: ReadonlyMap<string, Handler>;
  breakers: Breakers;
  queues: Pick<TaskQueues, 'report'>;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  /** Names this process in step.started events. */
  workerId: string;
  /** Handlers still running after this long are reported as started. */
  startReportDelayMs: number;
  /** Source of jitter for retry delays. Default Math.random. */
  random?: () => number;
  /** Rate limits and concurrency slots of keyed units (workers/unit-limits.ts); without it, keys limit nothing. */
  limits?: Pick<UnitLimits, 'admit' | 'release'>;
}

class StepTimeoutError extends Error {
  readonly code = ErrorCode.stepTimeout;
  constructor(timeoutMs: number) {
    super(`attempt took longer than its timeout of ${formatDuration(timeoutMs)} and was aborted`);
    this.name = 'StepTimeoutError';
  }
}

const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const MAX_MESSAGE = 2_000;
const MAX_DETAILS = 16 * 1024;

/** What the case and the trace will say about an error a handler threw. */
export function describeError(error: unknown): ErrorInfo {
  const raw = (error && typeof error === 'object' ? error : {}) as { code?: unknown; message?: unknown; details?: unknown };
  const retryable = !isNonRetryable(error);
  const code = typeof raw.code === 'string' && ERROR_CODE.test(raw.code) ? raw.code : retryable ? ErrorCode.handlerFailed : ErrorCode.nonRetryable;
  const message = (typeof raw.message === 'string' && raw.message ? raw.message : String(error)).slice(0, MAX_MESSAGE);
  const info: ErrorInfo = { code, message, retryable };
  if (raw.details !== undefined && payloadIssues(raw.details, 'details', MAX_DETAILS).length === 0) {
    info.details = JSON.parse(JSON.stringify(raw.details)) as unknown;
  }
  return info;
}

/** Resolves or rejects with `work`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * Runs one step job: breaker admission, the handler with its timeout and AbortSignal, then a
 * report to the scheduler and an Outcome for the queue. Reports go out before the job is
 * acknowledged, so a crash in between re-runs the task (at least once) instead of losing it.
 */
export function taskProcessor(deps: TaskRunnerDeps): Processor<StepJob> {
  const run = runAttempt(deps);
  const { limits } = deps;
  if (!limits) return run;
  return async (delivery) => {
    const job = delivery.data;
    if (!job.rateLimit && !job.concurrency) return run(delivery);
    const admission = await limits.admit(job, delivery);
    if (!admission.go) {
      const { attempt } = delivery;
      const event: CaseEvent = { type: 'stepDeferred', stepId: job.stepId, attempt, at: deps.clock.now(), breaker: job.breaker, until: admission.until, limit: admission.wait, ...unitAddressOf(job) };
      await deps.queues.report([{ caseId: job.caseId, event }]);
      deps.metrics.limitDeferrals.inc({ kind: admission.wait.kind, key_group: admission.wait.group });
      const why = admission.wait.kind === 'rate' ? 'over its rate limit' : `waiting for a slot (${admission.wait.ahead ?? 0} ahead)`;
      return { kind: 'defer', until: admission.until, reason: `${admission.wait.group} key "${admission.wait.key}": ${why}` };
    }
    try {
      return await run(delivery);
    } finally {
      // Whatever the outcome (a retry waits for its backoff without holding the slot), the next unit of the key may go.
      await limits.release(delivery.id).catch((error: unknown) => deps.logger.warn({ err: error, jobId: delivery.id }, 'concurrency slot not released; its lease will lapse'));
    }
  };
}

/** One attempt of a unit that may run now: breaker, handler, reports, outcome. */
function runAttempt(deps: TaskRunnerDeps): Processor<StepJob> {
  const random = deps.random ?? Math.random;
  return async (delivery) => {
    const job = delivery.data;
    const { attempt } = delivery;
    const { stepId } = job;
    // Which unit of the step this job is (an item, an iteration, a compensation); reports say so too.
    const address = unitAddressOf(job);
    const log = deps.logger.child({ caseId: job.caseId, stepId, task: job.task, attempt, ...address, ...(job.requestId ? { requestId: job.requestId } : {}) });
    const reports: CaseEvent[] = [];
    const send = async (): Promise<StepReport[]> => {
      const batch = reports.splice(0).map((event) => ({ caseId: job.caseId, event: 'stepId' in event && event.type.startsWith('step') ? { ...event, ...address } : event }));
      await deps.queues.report(batch);
      return batch;
    };

    const admission = deps.breakers.admit(job.breaker, deps.clock.now());
    if (!admission.admitted) {
      reports.push({ type: 'stepDeferred', stepId, attempt, at: deps.clock.now(), breaker: job.breaker, until: admission.until });
      await send();
      deps.metrics.stepDeferrals.inc({ breaker: job.breaker });
      return { kind: 'defer', until: admission.until, reason: `breaker "${job.breaker}" is open` };
    }

    const startedAt = deps.clock.now();
    const controller = new AbortController();
    const timeout = setTimeout(() => controller.abort(new StepTimeoutError(job.timeoutMs)), job.timeoutMs);
    const forward = () => controller.abort(delivery.signal.reason);
    delivery.signal.addEventListener('abort', forward, { once: true });
    const startReport = setTimeout(() => {
      deps.queues
        .report([{ caseId: job.caseId, event: { type: 'stepStarted', stepId, attempt, at: startedAt, worker: deps.workerId, ...address } }])
        .catch((error: unknown) => log.warn({ err: error }, 'start report not sent'));
    }, deps.startReportDelayMs);
    const ctx: TaskContext = {
      caseId: job.caseId,
      stepId,
      workflow: job.workflow,
      version: job.version,
      attempt,
      maxAttempts: job.maxAttempts,
      ...(job.instance === undefined ? {} : { index: job.instance }),
      ...(job.iteration === undefined ? {} : { iteration: job.iteration }),
      compensation: job.compensation === true,
      idempotencyKey: job.idempotencyKey,
      logger: log,
      signal: controller.signal,
      progress: (value) => delivery.reportProgress(value),
    };
    const breakerBefore = deps.breakers.state(job.breaker);

    let outcome: Outcome;
    try {
      const handler = deps.handlers.get(job.task);
      if (!handler) {
        throw Object.assign(new Error(`no handler for task "${job.task}" in this worker's handlers module`), {
          code: ErrorCode.handlerNotFound,
        });
      }
      const work = deps.breakers.fire(job.breaker, () =>
        untilAborted(
          Promise.resolve().then(() => handler(job.input, ctx)),
          controller.signal,
        ),
      );
      const output = (await work) ?? null;
      const problems = payloadIssues(output, 'output', PAYLOAD_LIMITS.maxOutputBytes);
      if (problems.length > 0) {
        throw Object.assign(new Error(`handler returned an unusable output: ${problems.map((p) => p.message).join('; ')}`), {
          code: ErrorCode.outputInvalid,
          nonRetryable: true,
        });
      }
      const at = deps.clock.now();
      reports.push({ type: 'stepCompleted', stepId, attempt, at, startedAt, output: JSON.parse(JSON.stringify(output)) as unknown });
      deps.metrics.stepDuration.observe({ task: job.task, outcome: 'completed' }, (at - startedAt) / 1000);
      outcome = { kind: 'complete' };
    } catch (error) {
      outcome = failure(error);
    } finally {
      clearTimeout(timeout);
      clearTimeout(startReport);
      delivery.signal.removeEventListener('abort', forward);
    }

    const breakerAfter = deps.breakers.state(job.breaker);
    const at = deps.clock.now();
    if (breakerAfter === 'open' && breakerBefore !== 'open') {
      reports.unshift({ type: 'breakerOpened', stepId, at, breaker: job.breaker, until: at + deps.breakers.resetTimeoutMs });
    } else if (breakerAfter === 'closed' && breakerBefore !== 'closed') {
      reports.unshift({ type: 'breakerClosed', stepId, at, breaker: job.breaker });
    }
    const sent = await send();
    // The job keeps the reports it sent: if they are lost (Redis data loss), the reconciler sends
    // them again instead of running the task again.
    return outcome.kind === 'complete' ? { kind: 'complete', result: { reports: sent } } : outcome;

    function failure(error: unknown): Outcome {
      if (delivery.signal.aborted && delivery.signal.reason === SHUTDOWN_REASON) {
        log.warn('shutdown grace period over; job handed back to the queue');
        return { kind: 'handBack' };
      }
      if (delivery.signal.aborted && delivery.signal.reason === CANCEL_REASON) {
        // The case already knows: it was cancelled, which is why this attempt stopped.
        log.info('case cancelled; attempt aborted');
        return { kind: 'fail', reason: `${ErrorCode.stepCancelled}: the case was cancelled` };
      }
      if ((error as { code?: unknown }).code === 'EOPENBREAKER') {
        // Another task is probing the half-open breaker; come back once it has answered.
        const until = deps.clock.now() + 1_000;
        reports.push({ type: 'stepDeferred', stepId, attempt, at: deps.clock.now(), breaker: job.breaker, until });
        return { kind: 'defer', until, reason: `breaker "${job.breaker}" is probing` };
      }
      const info = describeError(error);
      const at = deps.clock.now();
      const durationSeconds = (at - startedAt) / 1000;
      if (info.retryable && hasAttemptsLeft(job.maxAttempts, attempt)) {
        const delayMs = retryDelayMs(job.backoff, attempt, random());
        reports.push({ type: 'stepRetrying', stepId, attempt, at, startedAt, error: info, retryAt: at + delayMs });
        deps.metrics.stepRetries.inc({ task: job.task });
        deps.metrics.stepDuration.observe({ task: job.task, outcome: 'retried' }, durationSeconds);
        // An expected retry: one line, its stack only at debug (the trace has code and message).
        log.warn(
          { code: info.code, maxAttempts: job.maxAttempts, retryInMs: delayMs, ...(log.isLevelEnabled('debug') ? { err: error } : {}) },
          `attempt ${attempt} of ${job.maxAttempts} failed (${info.code}: ${info.message}); retrying in ${formatDuration(delayMs)}`,
        );
        return { kind: 'retry', delayMs, reason: `${info.code}: ${info.message}` };
      }
      reports.push({ type: 'stepFailed', stepId, attempt, at, startedAt, error: info });
      deps.metrics.stepDuration.observe({ task: job.task, outcome: 'failed' }, durationSeconds);
      // The step's end: worth its stack, whatever the cause.
      log.warn(
        { err: error, code: info.code, maxAttempts: job.maxAttempts },
        info.retryable ? `step failed after ${plural(attempt, 'attempt')} (${info.code}: ${info.message}); no attempts left` : `attempt ${attempt} failed and is not retryable (${info.code}: ${info.message})`,
      );
      return { kind: 'fail', reason: `${info.code}: ${info.message}` };
    }
  };
}
