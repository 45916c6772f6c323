import { isTerminalCase, type CaseState, type StepJob } from './state.js';

/** What the queues say about one job a case should have under way. */
export interface ObservedJob {
  queue: string;
  job: StepJob;
  state: 'waiting' | 'active' | 'delayed' | 'completed' | 'failed' | 'prioritized' | 'waiting-children' | 'missing';
  /** When the job entered the queue / last became active / falls due (ms). */
  enqueuedAt?: number;
  processedAt?: number;
  dueAt?: number;
  attemptsMade: number;
}

export interface StuckInputs {
  state: CaseState;
  /** Every step job the case should have under way, as found in the queues. */
  jobs: readonly ObservedJob[];
  /** Queues at least one live worker takes jobs from. */
  servedQueues: ReadonlySet<string>;
  now: number;
  stuckAfterMs: number;
}

const iso = (ms: number | undefined) => (ms === undefined ? 'an unknown time' : new Date(ms).toISOString());

function unitName(job: StepJob): string {
  const parts = [job.stepId];
  if (job.instance !== undefined) parts.push(`[${job.instance}]`);
  if (job.iteration !== undefined) parts.push(` iteration ${job.iteration}`);
  if (job.compensation) parts.push(' (compensation)');
  return parts.join('');
}

/**
 * Why an open case has made no progress for `stuckAfterMs`, as far as its jobs tell, or
 * undefined when it is not stuck: it moved recently, a repair is under way, or it waits for
 * something that legitimately takes time (a signal, a timer not yet due, a child case).
 * Reasons quote times rather than durations, so the same situation gives the same words and is
 * recorded once.
 */
export function stuckReason(inputs: StuckInputs): string | undefined {
  const { state, jobs, servedQueues, now, stuckAfterMs } = inputs;
  if (isTerminalCase(state.status) || now - state.updatedAt < stuckAfterMs) return undefined;
  // A job just restored or replaced gets its chance before the case is called stuck.
  if (jobs.some((job) => job.state === 'missing' || job.state === 'completed' || job.state === 'failed')) return undefined;

  for (const observed of jobs) {
    const name = `step "${unitName(observed.job)}"`;
    const { queue } = observed;
    // A job a worker took (or that was queued) only lately is on its way: the case may not have
    // moved for a while (a step that waited out an outage), but this job has not had its time.
    const since = observed.state === 'active' ? observed.processedAt : observed.enqueuedAt;
    if ((observed.state === 'active' || observed.state === 'waiting' || observed.state === 'prioritized') && since !== undefined && now - since < stuckAfterMs) continue;
    switch (observed.state) {
      case 'waiting':
      case 'prioritized':
      case 'waiting-children':
        return servedQueues.has(queue)
          ? `${name} has waited on queue "${queue}" since ${iso(observed.enqueuedAt)}; its workers are busy with other jobs`
          : `${name} has waited on queue "${queue}" since ${iso(observed.enqueuedAt)}, and no live worker takes that queue`;
      case 'active':
        return `${name} has been running since ${iso(observed.processedAt)} (attempt ${observed.attemptsMade + 1}) without an answer`;
      case 'delayed':
        if (observed.dueAt !== undefined && observed.dueAt > now) continue;
        return `${name} was delayed until ${iso(observed.dueAt)} (retry backoff or an open breaker) and no worker has taken it since`;
    }
  }
  if (jobs.some((job) => job.state === 'delayed')) return undefined;

  const steps = Object.entries(state.steps);
  for (const [stepId, step] of steps) {
    if (step.status !== 'waiting' || step.waitingFor?.until === undefined) continue;
    if (step.waitingFor.until + stuckAfterMs < now) return `the timer of step "${stepId}" was due at ${iso(step.waitingFor.until)} and has not fired`;
  }
  const waitsLegitimately = steps.some(([, step]) => step.status === 'waiting' || (step.status === 'running' && step.childCaseId !== undefined));
  if (waitsLegitimately || jobs.length > 0) return undefined;
  return 'no step is scheduled, running or waiting: nothing can move the case on';
}
