import { CASE_GROUP_PREFIX } from '../core/limits.js';
import type { StepJob } from '../core/state.js';
import type { Clock } from '../ports/clock.js';
import type { Admission, ConcurrencyGate, GatedUnit } from '../ports/limits.js';
import { caseAdmittedReport } from './case-slots.js';
import type { StepToEnqueue, TaskQueues } from '../ports/queues.js';

/** What a waiting unit keeps in the gate: the job to add once it is admitted. */
type WaitingJob = Omit<StepToEnqueue, 'rank'>;

/** The gate's view of a keyed unit. */
function gatedUnit(entry: WaitingJob & { job: StepJob & { concurrency: NonNullable<StepJob['concurrency']> } }): GatedUnit {
  const { concurrency } = entry.job;
  return {
    group: concurrency.group,
    key: concurrency.key,
    limit: concurrency.limit,
    jobId: entry.jobId,
    queue: entry.queue,
    priority: entry.job.priority ?? 0,
    payload: JSON.stringify({ queue: entry.queue, jobId: entry.jobId, job: entry.job } satisfies WaitingJob),
  };
}

const isGated = (entry: StepToEnqueue): entry is StepToEnqueue & { job: StepJob & { concurrency: NonNullable<StepJob['concurrency']> } } => entry.job.concurrency !== undefined;

/**
 * The step queues behind the concurrency gate: a keyed unit's job goes into its queue only once
 * the unit holds a slot of its key (with the slot's rank as its priority, so that keys take
 * turns); until then it waits in the key's line in the gate. Admissions (a slot freed by a
 * release, a cancellation or a lapsed lease) are dispatched here too. Units without a key pass
 * straight through.
 */
export class GatedQueues implements TaskQueues {
  constructor(
    private readonly inner: TaskQueues,
    private readonly gate: ConcurrencyGate,
    private readonly clock: Clock,
  ) {}

  async enqueueSteps(jobs: readonly StepToEnqueue[]): Promise<void> {
    const gated = jobs.filter(isGated);
    if (gated.length === 0) return this.inner.enqueueSteps(jobs);
    const { answers, admitted } = await this.gate.offer(gated.map(gatedUnit), this.clock.now());
    const ranks = new Map(answers.flatMap((answer) => (answer.admitted ? [[answer.jobId, answer.rank] as const] : [])));
    const now = jobs.flatMap((entry) => {
      if (!isGated(entry)) return [entry];
      const rank = ranks.get(entry.jobId);
      return rank === undefined ? [] : [{ ...entry, rank }];
    });
    await this.inner.enqueueSteps(now);
    await this.dispatch(admitted);
  }

  /** Puts admitted units' jobs in their queues: added afresh, or promoted when parked there. */
  async dispatch(admissions: readonly Admission[]): Promise<void> {
    if (admissions.length === 0) return;
    // A case given its slot of its workflow's key (a slot freed by a sweep) is told through the results queue.
    const cases = admissions.filter((admission) => admission.group.startsWith(CASE_GROUP_PREFIX));
    const units = admissions.filter((admission) => !admission.group.startsWith(CASE_GROUP_PREFIX));
    const added = units.flatMap((admission) => (admission.payload === undefined ? [] : [{ ...(JSON.parse(admission.payload) as WaitingJob), rank: admission.rank }]));
    const parked = units.filter((admission) => admission.payload === undefined);
    const at = this.clock.now();
    await Promise.all([
      this.inner.enqueueSteps(added),
      parked.length > 0 ? this.inner.promoteSteps(parked) : undefined,
      cases.length > 0 ? this.inner.report(cases.map((admission) => caseAdmittedReport(admission.jobId, at))) : undefined,
    ]);
  }

  async cancelJobs(jobs: Parameters<TaskQueues['cancelJobs']>[0]): Promise<{ running: readonly string[] }> {
    // Waiting units leave their line first: a release elsewhere while the jobs are being
    // cancelled could otherwise admit one and enqueue its job after the cancel had passed it.
    const keyed = jobs.flatMap((job) => (job.group === undefined ? [] : [{ group: job.group, jobId: job.jobId }]));
    if (keyed.length > 0) await this.gate.withdraw(keyed);
    const cancelled = await this.inner.cancelJobs(jobs);
    // Admitted units not yet running give their slot up. A running unit keeps its slot until its
    // worker has aborted it and releases it: freeing it now could start the next unit of the key
    // while the aborted one still runs.
    const running = new Set(cancelled.running);
    const leaving = keyed.filter((unit) => !running.has(unit.jobId));
    if (leaving.length > 0) await this.dispatch(await this.gate.release(leaving, this.clock.now()));
    return cancelled;
  }

  async replaceSteps(jobs: readonly StepToEnqueue[]): Promise<void> {
    const gated = jobs.filter(isGated);
    await this.inner.replaceSteps(jobs.filter((entry) => !isGated(entry)));
    if (gated.length === 0) return;
    await this.inner.removeSteps(gated);
    await this.enqueueSteps(gated);
  }

  scheduleTimers(...args: Parameters<TaskQueues['scheduleTimers']>) {
    return this.inner.scheduleTimers(...args);
  }

  report(...args: Parameters<TaskQueues['report']>) {
    return this.inner.report(...args);
  }

  removeSteps(...args: Parameters<TaskQueues['removeSteps']>) {
    return this.inner.removeSteps(...args);
  }

  promoteSteps(...args: Parameters<TaskQueues['promoteSteps']>) {
    return this.inner.promoteSteps(...args);
  }

  stepJobState(...args: Parameters<TaskQueues['stepJobState']>) {
    return this.inner.stepJobState(...args);
  }

  inspectStepJob(...args: Parameters<TaskQueues['inspectStepJob']>) {
    return this.inner.inspectStepJob(...args);
  }

  close() {
    return this.inner.close();
  }
}
