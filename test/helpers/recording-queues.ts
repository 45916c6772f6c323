import type { StepJob, StepReport } from '../../lib/core/state.js';
import type { JobState, StepJobInfo, TaskQueues, Timer } from '../../lib/ports/queues.js';

type StepItem = { queue: string; jobId: string; job: StepJob };

/**
 * A unit-test double of the TaskQueues port: it keeps what the engine asks for, with the one
 * rule of the real queues that the engine relies on (a job id already there is not added
 * again), and records every call so a test can tell a repeated request from a repeated job.
 */
export class RecordingQueues implements TaskQueues {
  /** The step jobs in the queues, by `<queue>/<jobId>`. */
  readonly steps = new Map<string, StepItem>();
  /** Every step job the engine asked for, in order, repeats included. */
  readonly stepRequests: StepItem[] = [];
  readonly timers = new Map<string, Timer>();
  readonly cancelled: Array<{ queue: string; jobId: string }> = [];
  readonly reports: StepReport[] = [];
  private failures: Error[] = [];

  /** The next `enqueueSteps` call fails with `error` and adds nothing (Redis unreachable). */
  failNextEnqueue(error: Error): void {
    this.failures.push(error);
  }

  /** The job ids of the step jobs in the queues, in the order they were added. */
  jobIds(): string[] {
    return [...this.steps.values()].map((item) => item.jobId);
  }

  /** The step job with this id, on whichever queue. */
  job(jobId: string): StepJob | undefined {
    return [...this.steps.values()].find((item) => item.jobId === jobId)?.job;
  }

  async enqueueSteps(jobs: readonly StepItem[]): Promise<void> {
    const failure = this.failures.shift();
    if (failure) throw failure;
    for (const item of jobs) {
      this.stepRequests.push(structuredClone(item));
      const key = `${item.queue}/${item.jobId}`;
      if (!this.steps.has(key)) this.steps.set(key, structuredClone(item));
    }
  }

  async scheduleTimers(timers: readonly Timer[]): Promise<void> {
    for (const timer of timers) if (!this.timers.has(timer.jobId)) this.timers.set(timer.jobId, structuredClone(timer));
  }

  /** Job ids a worker is running (the test says which): a cancellation tells them to abort rather than removing them. */
  readonly active = new Set<string>();

  async cancelJobs(jobs: ReadonlyArray<{ queue: string; jobId: string }>): Promise<{ running: readonly string[] }> {
    const running: string[] = [];
    for (const job of jobs) {
      this.cancelled.push({ ...job });
      if (this.active.has(job.jobId)) running.push(job.jobId);
      else this.steps.delete(`${job.queue}/${job.jobId}`);
    }
    return { running };
  }

  async report(reports: readonly StepReport[]): Promise<void> {
    this.reports.push(...structuredClone(reports));
  }

  async replaceSteps(jobs: readonly StepItem[]): Promise<void> {
    for (const item of jobs) this.steps.set(`${item.queue}/${item.jobId}`, structuredClone(item));
  }

  async removeSteps(jobs: ReadonlyArray<{ queue: string; jobId: string }>): Promise<void> {
    for (const job of jobs) this.steps.delete(`${job.queue}/${job.jobId}`);
  }

  // Recorded steps have no delay to cut short: every one already counts as waiting (stepJobState).
  async promoteSteps(): Promise<void> {}

  async stepJobState(queue: string, jobId: string): Promise<JobState['state']> {
    return this.steps.has(`${queue}/${jobId}`) ? 'waiting' : 'missing';
  }

  async inspectStepJob(queue: string, jobId: string): Promise<StepJobInfo> {
    return { state: await this.stepJobState(queue, jobId), stalls: 0, attemptsMade: 0 };
  }

  async close(): Promise<void> {}
}
