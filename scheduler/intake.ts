import { WorkfleetError } from '../lib/core/errors.js';
import type { CaseService } from '../lib/engine/cases.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Metrics } from '../lib/obs/metrics.js';
import type { Clock } from '../lib/ports/clock.js';
import type { Processor } from '../lib/ports/queues.js';
import { outcomeOfError } from './outcomes.js';

/** The job name producers use on the intake queue (docs/PRODUCERS.md). */
export const START_JOB = 'start';

/**
 * Turns `start` jobs from the intake queue into cases. A malformed job fails once, unrecoverably,
 * with the validation message as its failed reason; a job without an idempotency key is keyed by
 * its job id, so a redelivery after a crash finds the case it already made.
 */
export function intakeProcessor(deps: { cases: CaseService; clock: Clock; logger: Logger; metrics: Metrics }): Processor<unknown> {
  return async (delivery) => {
    if (delivery.name !== START_JOB) {
      deps.metrics.intakeRejected.inc({ code: 'UNKNOWN_JOB_NAME' });
      return { kind: 'fail', reason: `UNKNOWN_JOB_NAME: the cases queue takes "${START_JOB}" jobs, not "${delivery.name}"` };
    }
    try {
      const { record, created } = await deps.cases.start(delivery.data, { fallbackIdempotencyKey: `intake:${delivery.id}`, startedBy: 'intake', requestId: `intake:${delivery.id}` });
      deps.logger.debug({ caseId: record.id, jobId: delivery.id, created }, 'case started from intake');
      return { kind: 'complete' };
    } catch (error) {
      const outcome = outcomeOfError(error, deps.clock.now());
      if (outcome.kind === 'fail') {
        deps.metrics.intakeRejected.inc({ code: error instanceof WorkfleetError ? error.code : 'UNKNOWN' });
        deps.logger.warn({ jobId: delivery.id, reason: outcome.reason }, 'intake job rejected');
      } else {
        deps.logger.warn({ jobId: delivery.id, err: error }, 'intake job deferred');
      }
      return outcome;
    }
  };
}
