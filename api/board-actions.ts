import { INTAKE_QUEUE, RESULTS_QUEUE } from '../lib/ports/queues.js';
import { parseUnitJobId } from '../lib/core/step-payload.js';

/**
 * Which Bull Board actions would split a case from its jobs, and what to use instead.
 *
 * A step job or a timer belongs to a case: the case's state says which of them are outstanding,
 * and only the engine changes both together. Retrying a failed step job in the board would run
 * the handler again while the case stays `failed`; removing a waiting one would leave its case
 * waiting for a job that no longer exists. Those actions are refused with the workfleet command
 * that does the same through the engine. Jobs of the intake and results queues go through the
 * engine when they run, so every action on them is allowed, as are finished jobs' removal and
 * pausing a queue (its jobs only wait).
 */

/** Queues whose jobs belong to the engine when processed; every other queue holds cases' jobs. */
const ENGINE_DOORS: ReadonlySet<string> = new Set([INTAKE_QUEUE, RESULTS_QUEUE]);

/** Job states whose jobs are done with: removing them changes nothing a case waits for. */
const FINISHED_STATES: ReadonlySet<string> = new Set(['completed', 'failed']);

export type BoardAction =
  | { scope: 'job'; action: 'retry' | 'clean' | 'promote' | 'update-data' | 'delay' | 'priority' | 'remove-unprocessed-children'; queue: string; jobId: string }
  | { scope: 'queue'; action: 'retry' | 'clean' | 'promote' | 'empty' | 'obliterate' | 'add'; queue: string; status?: string };

const JOB_ACTIONS = new Set(['retry', 'clean', 'promote', 'update-data', 'delay', 'priority', 'remove-unprocessed-children']);
const QUEUE_ACTIONS_WITH_STATUS = new Set(['retry', 'clean']);
const QUEUE_ACTIONS = new Set(['promote', 'empty', 'obliterate', 'add']);

/** The action a board API request asks for (`path` below the board's base path), if it changes jobs. */
export function boardAction(method: string, path: string): BoardAction | undefined {
  if (method === 'GET' || method === 'HEAD') return undefined;
  const match = /^\/api\/queues\/([^/]+)\/(.+)$/.exec(path);
  if (!match) return undefined;
  const queue = decodeURIComponent(match[1] ?? '');
  const rest = (match[2] ?? '').split('/').map(decodeURIComponent);
  const [first, second] = rest;
  if (first === undefined) return undefined;
  if (rest.length === 2 && QUEUE_ACTIONS_WITH_STATUS.has(first)) return { scope: 'queue', action: first as 'retry' | 'clean', queue, ...(second ? { status: second } : {}) };
  if (rest.length === 1 && QUEUE_ACTIONS.has(first)) return { scope: 'queue', action: first as 'promote' | 'empty' | 'obliterate' | 'add', queue };
  if (rest.length === 2 && second !== undefined && JOB_ACTIONS.has(second)) return { scope: 'job', action: second as BoardAction['action'] & 'retry', queue, jobId: first };
  return undefined;
}

/** The case a job of a case queue belongs to, from its id (step jobs) or its data (timers). */
export function caseOfJob(jobId: string, data: unknown): string | undefined {
  const unit = parseUnitJobId(jobId);
  if (unit) return unit.caseId;
  const caseId = (data as { caseId?: unknown } | undefined)?.caseId;
  return typeof caseId === 'string' ? caseId : undefined;
}

/**
 * Why the board must not do `action`, naming the workfleet command to use instead; undefined
 * when it may. `jobState` and `caseId` describe the job of a job action (when it exists).
 */
export function refusal(action: BoardAction, job: { state?: string; caseId?: string } = {}): string | undefined {
  if (ENGINE_DOORS.has(action.queue)) return undefined;
  const ofCase = job.caseId ? `job ${action.scope === 'job' ? action.jobId : ''} belongs to case ${job.caseId}` : `the jobs of queue "${action.queue}" belong to cases`;
  const id = job.caseId ?? '<case id>';
  if (action.scope === 'job') {
    switch (action.action) {
      case 'retry':
        return `${ofCase}: retry the case, so that it and its trace follow: workfleet case retry ${id} (POST /v1/cases/${id}/retry)`;
      case 'clean':
        if (job.state !== undefined && FINISHED_STATES.has(job.state)) return undefined;
        return `${ofCase} and is still outstanding: cancel the case instead: workfleet case cancel ${id} (POST /v1/cases/${id}/cancel)`;
      default:
        return `${ofCase}: the engine decides when and with what it runs; act on the case instead: workfleet case signal|cancel|retry ${id}`;
    }
  }
  switch (action.action) {
    case 'retry':
      return `${ofCase}: retry the failed cases, so that they and their traces follow: workfleet case retry <id>, or every matching case at once: workfleet bulk retry --status failed (see docs/OPERATIONS.md)`;
    case 'clean':
      if (action.status !== undefined && FINISHED_STATES.has(action.status)) return undefined;
      return `${ofCase} and are still outstanding: cancel the cases instead: workfleet case cancel <id>, or every matching case at once: workfleet bulk cancel with a filter`;
    case 'add':
      return `a job of queue "${action.queue}" comes from a case: start one instead: workfleet case start <workflow> (or add a "start" job to the "${INTAKE_QUEUE}" queue)`;
    default:
      return `${ofCase}: removing or promoting them would leave their cases waiting or run them early; act on the cases instead: workfleet case cancel|retry|signal`;
  }
}
