import { WorkfleetError } from '../lib/core/errors.js';
import type { Outcome } from '../lib/ports/queues.js';

/** How long a job waits before another try when the database or Redis did not answer. */
const INFRA_RETRY_MS = 2_000;

/**
 * The outcome for a job whose processing threw. Errors workfleet raised on purpose and marked
 * not retryable (bad input, unknown workflow) fail the job once, with the reason in Bull Board;
 * anything else is taken as infrastructure trouble and the job is deferred without spending an
 * attempt, so an outage of MongoDB loses no intake or report.
 */
export function outcomeOfError(error: unknown, now: number): Outcome {
  if (error instanceof WorkfleetError && !error.retryable) return { kind: 'fail', reason: `${error.code}: ${error.message}` };
  const reason = error instanceof Error ? error.message : String(error);
  return { kind: 'defer', until: now + INFRA_RETRY_MS + Math.floor(Math.random() * INFRA_RETRY_MS), reason };
}
