import { ErrorCode } from '../lib/core/error-codes.js';
import { WorkfleetError } from '../lib/core/errors.js';
import type { CaseEvent, StepJob } from '../lib/core/state.js';
import { isStepPayload, isWholeStepJob, parseUnitJobId, stepJobFromPayload } from '../lib/core/step-payload.js';
import type { WorkflowRegistry } from '../lib/engine/workflows.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Clock } from '../lib/ports/clock.js';
import type { Delivery, Outcome, Processor, TaskQueues } from '../lib/ports/queues.js';

/** How long a job waits when the workflow it names cannot be read now (the store is away). */
const RETRY_LOOKUP_MS = 1_000;

/**
 * Turns what a step queue holds (ids in the job id, a payload of workflow, version and input:
 * lib/core/step-payload.ts) back into the StepJob a task processor runs, with the task, retry
 * policy, timeout and breaker read from the workflow version, compiled once per process. A job
 * enqueued whole (by a version before payloads were cut down) runs as it is. A job whose
 * workflow cannot be read now is deferred without spending an attempt; one that fits no
 * workflow fails at once with STEP_JOB_INVALID rather than running something else, and so does
 * its step. Rolling upgrades: workers first (a worker of an earlier version reads a payload as a
 * whole job without a task).
 */
export function expandingStepJobs(deps: { workflows: Pick<WorkflowRegistry, 'compiled'>; reports: Pick<TaskQueues, 'report'>; clock: Clock; logger: Logger }, processor: Processor<StepJob>): Processor<unknown> {
  /**
   * Fails a job that fits no workflow, and its step when the job id names one: otherwise the
   * reconciler would find the case's unit still outstanding and its job ended without a
   * report, and put the job back again and again.
   */
  const invalid = async (delivery: Delivery<unknown>, why: string): Promise<Outcome> => {
    const unit = parseUnitJobId(delivery.id);
    if (unit) {
      const error = { code: ErrorCode.stepJobInvalid, message: why, retryable: false };
      const event: CaseEvent = { type: 'stepFailed', stepId: unit.stepId, attempt: delivery.attempt, at: deps.clock.now(), error, ...unit.address };
      await deps.reports.report([{ caseId: unit.caseId, event }]);
    }
    deps.logger.warn({ jobId: delivery.id, why }, 'step job fits no workflow; failed');
    return { kind: 'fail', reason: `${ErrorCode.stepJobInvalid}: ${why}` };
  };
  return async (delivery) => {
    const { data } = delivery;
    if (isWholeStepJob(data)) return processor({ ...delivery, data });
    if (!isStepPayload(data)) return invalid(delivery, `job ${delivery.id} carries no step payload`);
    let job: StepJob | string;
    try {
      job = stepJobFromPayload(delivery.id, data, await deps.workflows.compiled(data.w, data.v));
    } catch (error) {
      if (error instanceof WorkfleetError && !error.retryable) return invalid(delivery, error.message);
      deps.logger.warn({ err: error, jobId: delivery.id, workflow: data.w, version: data.v }, 'workflow of a step job not readable now; job deferred');
      return { kind: 'defer', until: deps.clock.now() + RETRY_LOOKUP_MS, reason: `workflow ${data.w} v${data.v} could not be read` };
    }
    if (typeof job === 'string') return invalid(delivery, job);
    return processor({ ...delivery, data: job });
  };
}
