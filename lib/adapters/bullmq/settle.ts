import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Outcome } from '../../ports/queues.js';

/** Thrown to BullMQ for a retry; BullMQ's backoff strategy reads the delay from it. */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly delayMs: number,
  ) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/**
 * Turns a processor's Outcome into what BullMQ expects of a processor: a result, or the error
 * that makes it retry, fail, or leave a job it was given back as moved.
 *
 * A deferral or a hand-back moves the job itself first. If Redis cannot take that move (a
 * failover, a connection closing under it), the job must not fail for it: an intake job has one
 * attempt, and failing it would lose a start its producer was told was taken. So the move's
 * error is swallowed and the job is left active: its lock is no longer renewed, and the stalled
 * check gives it back to its queue once the lock lapses, to be handled again.
 */
export async function settleOutcome(job: Pick<Job, 'moveToDelayed' | 'moveToWait'>, token: string | undefined, outcome: Outcome, onMoveFailed: (error: unknown) => void): Promise<unknown> {
  switch (outcome.kind) {
    case 'complete':
      return outcome.result ?? null;
    case 'retry':
      throw new RetryLaterError(outcome.reason, outcome.delayMs);
    case 'fail':
      throw new UnrecoverableError(outcome.reason);
    case 'defer':
      await job.moveToDelayed(outcome.until, token).catch(onMoveFailed);
      throw new DelayedError(outcome.reason);
    case 'handBack':
      await job.moveToWait(token).catch(onMoveFailed);
      throw new WaitingError();
  }
}
