import { ErrorCode } from './error-codes.js';
import { unitAddressOf } from './machine/jobs.js';
import type { CaseEvent, StepJob, StepReport } from './state.js';
import type { ObservedJob } from './stuck.js';

/**
 * What the reconciler does about one outstanding step job of a case that stopped moving, from
 * what the queue says of it. Pure policy: the reconciler observes and carries out.
 */
export type JobRepair =
  /** The job is not in its queue (lost between two writes, or with Redis data): enqueue it again. */
  | { kind: 'restore' }
  /** The job failed because its workers kept dying under it: running it again would only kill more. */
  | { kind: 'failLost'; attempt: number; stalls: number }
  /** The job finished and kept its reports, which the case never got: send them again. */
  | { kind: 'resend'; reports: StepReport[] }
  /** The job finished without a report the case got, and kept none: run it again under the same id. */
  | { kind: 'replace' }
  /** Live, or finished so recently that its report is most likely still queued: nothing to do. */
  | { kind: 'none' };

/** What the queue says of a step job. */
export interface JobObservation {
  state: ObservedJob['state'];
  /** Times the job's worker vanished while running it (its lock lapsed). */
  stalls: number;
  attemptsMade: number;
  finishedAt?: number;
  /** For a completed job: what its processor kept with it. */
  result?: unknown;
}

export function repairOf(observed: JobObservation, now: number, staleAfterMs: number): JobRepair {
  if (observed.state === 'missing') return { kind: 'restore' };
  if (observed.state === 'failed' && observed.stalls > 0) return { kind: 'failLost', attempt: observed.attemptsMade + 1, stalls: observed.stalls };
  if (observed.state !== 'completed' && observed.state !== 'failed') return { kind: 'none' };
  if (observed.finishedAt !== undefined && observed.finishedAt > now - staleAfterMs) return { kind: 'none' };
  const reports = keptReports(observed.result);
  return reports ? { kind: 'resend', reports } : { kind: 'replace' };
}

/** The reports a completed step job kept (see the worker's task processor), if it kept any well-formed ones. */
function keptReports(result: unknown): StepReport[] | undefined {
  const reports = (result as { reports?: unknown } | undefined)?.reports;
  if (!Array.isArray(reports) || reports.length === 0) return undefined;
  return reports.filter((report): report is StepReport => typeof (report as StepReport | undefined)?.caseId === 'string' && typeof (report as StepReport).event?.type === 'string');
}

/** The failure that ends a unit whose workers were lost too often (`failLost`): final, not retried. */
export function workerLostEvent(job: StepJob, attempt: number, stalls: number, at: number): CaseEvent & { type: 'stepFailed' } {
  return {
    type: 'stepFailed',
    stepId: job.stepId,
    attempt,
    at,
    ...unitAddressOf(job),
    error: {
      code: ErrorCode.workerLost,
      message: `the worker running this step was lost ${stalls} time(s) (killed, crashed or its event loop blocked past the job lock); not run again`,
      retryable: false,
    },
  };
}
