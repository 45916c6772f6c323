import { StepErrorCode, WorkfleetError } from '../lib/core/errors.js';
import type { StepJob } from '../lib/core/state.js';
import { isStepPayload, isWholeStepJob, stepJobFromPayload } from '../lib/core/step-payload.js';
import type { WorkflowRegistry } from '../lib/engine/workflows.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Clock } from '../lib/ports/clock.js';
import type { Processor } from '../lib/ports/queues.js';

/** How long a job waits when the workflow it names cannot be read now (the store is away). */
const RETRY_LOOKUP_MS = 1_000;

/**
 * Turns what a step queue holds (ids in the job id, a payload of workflow, version and input:
 * lib/core/step-payload.ts) back into the StepJob a task processor runs, with the task, retry
 * policy, timeout and breaker read from the workflow version, compiled once per process. A job
 * enqueued whole (by a version before payloads were cut down) runs as it is. A job whose
 * workflow cannot be read now is deferred without spending an attempt; one that fits no
 * workflow fails at once with STEP_JOB_INVALID rather than running something else.
 */
export function expandingStepJobs(
  deps: { workflows: Pick<WorkflowRegistry, 'compiled'>; clock: Clock; logger: Logger },
  processor: Processor<StepJob>,
): Processor<unknown> {
  return async (delivery) => {
    const { data } = delivery;
    if (isWholeStepJob(data)) return processor({ ...delivery, data });
    if (!isStepPayload(data)) return { kind: 'fail', reason: `${StepErrorCode.jobInvalid}: job ${delivery.id} carries no step payload` };
    let job: StepJob | string;
    try {
      job = stepJobFromPayload(delivery.id, data, await deps.workflows.compiled(data.w, data.v));
    } catch (error) {
      if (error instanceof WorkfleetError && !error.retryable) return { kind: 'fail', reason: `${StepErrorCode.jobInvalid}: ${error.message}` };
      deps.logger.warn({ err: error, jobId: delivery.id, workflow: data.w, version: data.v }, 'workflow of a step job not readable now; job deferred');
      return { kind: 'defer', until: deps.clock.now() + RETRY_LOOKUP_MS, reason: `workflow ${data.w} v${data.v} could not be read` };
    }
    if (typeof job === 'string') return { kind: 'fail', reason: `${StepErrorCode.jobInvalid}: ${job}` };
    return processor({ ...delivery, data: job });
  };
}
