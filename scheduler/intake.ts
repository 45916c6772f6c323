import { createHash } from 'node:crypto';
import { ErrorCode } from '../lib/core/error-codes.js';
import { WorkfleetError } from '../lib/core/errors.js';
import { INTAKE_STARTER } from '../lib/core/idempotency.js';
import { acceptedRequestId } from '../lib/core/text.js';
import type { CaseService } from '../lib/engine/cases.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Metrics } from '../lib/obs/metrics.js';
import type { Clock } from '../lib/ports/clock.js';
import type { Delivery, Outcome, Processor } from '../lib/ports/queues.js';
import { DEBOUNCE_JOB } from '../lib/ports/debounce.js';
import { outcomeOfError } from './outcomes.js';

/** The job name producers use on the intake queue (docs/PRODUCERS.md). */
const START_JOB = 'start';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Job ids longer than this are hashed into the derived key, which stays short for the unique index. */
const MAX_JOB_ID_IN_KEY = 200;

/**
 * The idempotency key of a key-less job: its job id and the time it was added. BullMQ numbers
 * jobs from 1 in each Redis, so after a wipe, a restore or an AOF rollback a job id comes again;
 * the time it was added does not (the later job was added after the Redis that forgot the earlier
 * one), so the pair names one job for ever, and it is the same on every redelivery, retry or
 * deferral of that job (BullMQ never changes a job's timestamp). It costs nothing: no Redis round
 * trip per job, unlike a random id written into the job on first processing, which an AOF rollback
 * could also lose after the case was made (a second case on the next run). Two jobs collide only
 * with the same id added in the same millisecond, which one clock cannot produce; producers whose
 * clocks disagree would need an exact millisecond match. The key is in the derived scope, which
 * no producer can send to.
 */
function intakeJobKey(jobId: string, enqueuedAt: number): string {
  const id = jobId.length <= MAX_JOB_ID_IN_KEY ? jobId : `sha256:${sha256(jobId)}`;
  return `intake-job:${enqueuedAt}:${id}`;
}

/** The request id of an intake job's case: `intake:<job id>`, or a digest of a job id too long or odd for a request id. */
export function intakeRequestId(jobId: string): string {
  return acceptedRequestId(`intake:${jobId}`) ?? `intake:sha256:${sha256(jobId).slice(0, 32)}`;
}

/**
 * Turns `start` jobs from the intake queue into cases (or, for a workflow with `debounce:`, into
 * starts of a burst), and runs the `debounce` jobs that close bursts. A malformed job fails once, unrecoverably,
 * with the validation message as its failed reason; a job without an idempotency key is keyed by
 * its job id and the time it was added, so a redelivery after a crash finds the case it already
 * made, and a job with a recycled id (a wiped Redis) makes its own.
 */
export function intakeProcessor(deps: { cases: CaseService; clock: Clock; logger: Logger; metrics: Metrics }): Processor<unknown> {
  const reject = (delivery: Delivery<unknown>, error: unknown): Outcome => {
    const outcome = outcomeOfError(error, deps.clock.now());
    if (outcome.kind === 'fail') {
      deps.metrics.intakeRejected.inc({ code: error instanceof WorkfleetError ? error.code : ErrorCode.internal });
      deps.logger.warn({ jobId: delivery.id, reason: outcome.reason }, 'intake job rejected');
    } else {
      deps.logger.warn({ jobId: delivery.id, err: error }, 'intake job deferred');
    }
    return outcome;
  };
  return async (delivery) => {
    if (delivery.name === DEBOUNCE_JOB) {
      try {
        return await closeBurst(deps, delivery);
      } catch (error) {
        return reject(delivery, error);
      }
    }
    if (delivery.name !== START_JOB) {
      deps.metrics.intakeRejected.inc({ code: ErrorCode.unknownJobName });
      return { kind: 'fail', reason: `${ErrorCode.unknownJobName}: the cases queue takes "${START_JOB}" jobs, not "${delivery.name}"` };
    }
    try {
      const started = await deps.cases.submit(delivery.data, {
        fallbackIdempotencyKey: intakeJobKey(delivery.id, delivery.enqueuedAt),
        startedBy: INTAKE_STARTER,
        requestId: intakeRequestId(delivery.id),
        // A redelivered job joins its burst as of when it was added: it does not replace a newer start.
        at: delivery.enqueuedAt,
      });
      if (started.kind === 'case') deps.logger.debug({ caseId: started.record.id, jobId: delivery.id, created: started.created }, 'case started from intake');
      else deps.logger.debug({ burstId: started.debounced.id, jobId: delivery.id, outcome: started.debounced.outcome }, 'intake start debounced');
      return { kind: 'complete' };
    } catch (error) {
      return reject(delivery, error);
    }
  };
}

/** A burst's close job (lib/adapters/bullmq/debounce.ts): its case now, or another look when it is due. */
async function closeBurst(deps: { cases: CaseService; logger: Logger }, delivery: Delivery<unknown>): Promise<Outcome> {
  const closed = await deps.cases.closeBurst(delivery.data);
  switch (closed.kind) {
    case 'wait':
      // Put off by later starts: no attempt spent, the same job looks again then.
      return { kind: 'defer', until: closed.dueAt, reason: `the burst was put off until ${new Date(closed.dueAt).toISOString()}` };
    case 'gone':
      return { kind: 'complete' };
    case 'started':
      deps.logger.debug({ caseId: closed.record.id, jobId: delivery.id, created: closed.created }, 'debounced case started');
      return { kind: 'complete', result: { caseId: closed.record.id } };
  }
}
