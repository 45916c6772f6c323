import type { CaseEvent, JobRef, StepJob, StepReport } from '../core/state.js';

export type { StepReport } from '../core/state.js';

/**
 * What the engine needs from its queues. The BullMQ adapter implements it; the processors in
 * scheduler/ and workers/ return an Outcome and never touch BullMQ's error classes themselves.
 */

/** The queue producers add `start` jobs to (docs/PRODUCERS.md, "The intake queue contract"). */
export const INTAKE_QUEUE = 'cases';
/** Where workers report what happened to steps; the scheduler applies the reports. */
export const RESULTS_QUEUE = 'results';
/** Delayed jobs (sleep steps, signal timeouts) the scheduler applies when they fall due. */
export const TIMERS_QUEUE = 'timers';

/** A timer: at `at`, `event` is applied to `caseId`. */
export interface Timer {
  jobId: string;
  at: number;
  caseId: string;
  event: CaseEvent & { type: 'timerFired' };
}

export interface JobState {
  state: 'waiting' | 'active' | 'delayed' | 'completed' | 'failed' | 'prioritized' | 'waiting-children' | 'missing';
}

export interface StepJobInfo {
  state: JobState['state'];
  /** Times the job's worker vanished while running it (its lock lapsed). */
  stalls: number;
  /** Attempts the queue has counted as made (failures; deferrals and stalls do not count). */
  attemptsMade: number;
  /** When the job last became active (ms), if it ever did. */
  processedAt?: number;
  /** When the job entered the queue (ms). */
  enqueuedAt?: number;
  /** For a delayed job: when it becomes due (ms). */
  dueAt?: number;
  /** When the job completed or failed (ms). */
  finishedAt?: number;
  /** For a completed job: what its processor kept with it. */
  result?: unknown;
}

/** A step job to add: `rank`, for units holding a concurrency slot, is its slot's rank (lower ranks are taken first). */
export interface StepToEnqueue {
  queue: string;
  jobId: string;
  job: StepJob;
  rank?: number;
}

export interface TaskQueues {
  /** Adds step jobs; a job id already in the queue is not added again. */
  enqueueSteps(jobs: readonly StepToEnqueue[]): Promise<void>;
  /** Adds delayed timer jobs; a timer id already there is not added again. */
  scheduleTimers(timers: readonly Timer[]): Promise<void>;
  /**
   * Stops jobs of a cancelled case: waiting and delayed ones are removed, active ones are told
   * to abort (every consumer listens) and end without another attempt. Answers the ids of those
   * that were running, read on the way (no second look per job).
   */
  cancelJobs(jobs: readonly JobRef[]): Promise<{ running: readonly string[] }>;
  /** Sends reports to the scheduler: workers' reports, and cases' messages to each other. */
  report(reports: readonly StepReport[]): Promise<void>;
  /** Removes finished step jobs and adds them afresh: a job that ended without its report arriving runs again. */
  replaceSteps(jobs: readonly StepToEnqueue[]): Promise<void>;
  /** Removes step jobs that are not running (waiting, delayed, finished), so that their ids can be added afresh. */
  removeSteps(jobs: ReadonlyArray<{ queue: string; jobId: string }>): Promise<void>;
  /** Moves delayed step jobs to waiting now (a unit parked for want of a slot, given one); others are left as they are. */
  promoteSteps(jobs: ReadonlyArray<{ queue: string; jobId: string }>): Promise<void>;
  /** Where a step job is, for the reconciler. */
  stepJobState(queue: string, jobId: string): Promise<JobState['state']>;
  /** Where a step job is and what happened to it, for the reconciler's repairs and stuck reasons. */
  inspectStepJob(queue: string, jobId: string): Promise<StepJobInfo>;
  close(): Promise<void>;
}

/** The abort reason a consumer gives active jobs when its shutdown grace period is over. */
export const SHUTDOWN_REASON = 'shutdown';
/** The abort reason of an active job whose case was cancelled. */
export const CANCEL_REASON = 'cancelled';

/** A job handed to a processor. */
export interface Delivery<T> {
  id: string;
  /** The queue the job came from. */
  queue: string;
  name: string;
  data: T;
  /**
   * When the job was added (ms, the adding client's clock), never changed by retries. Ids start
   * again at 1 on a new Redis; with this the job is named for ever.
   */
  enqueuedAt: number;
  /** 1 for the first attempt; a retry after a failure counts up, a deferral does not. */
  attempt: number;
  maxAttempts: number;
  /** Fires with CANCEL_REASON when the job's case was cancelled, or with SHUTDOWN_REASON when the process hands the job back. */
  signal: AbortSignal;
  reportProgress(progress: number | object): Promise<void>;
}

/** What a processor decided; the adapter turns it into the queue's own mechanics. */
export type Outcome =
  /** Done; `result` is kept with the finished job (what a step job reported, for the reconciler). */
  | { kind: 'complete'; result?: unknown }
  /** Try again after `delayMs`, counting an attempt. */
  | { kind: 'retry'; delayMs: number; reason: string }
  /** Fail now, no further attempts, with a reason shown in the queue UI. */
  | { kind: 'fail'; reason: string }
  /** Try again at `until` without counting an attempt (breaker open, database unreachable). */
  | { kind: 'defer'; until: number; reason: string }
  /** Put the job back for another process, without counting an attempt (shutdown). */
  | { kind: 'handBack' };

export type Processor<T> = (delivery: Delivery<T>) => Promise<Outcome>;

export interface ConsumerOptions {
  concurrency: number;
  /** Lock duration in ms; a job whose lock lapses is given to another consumer. Default 30,000. */
  lockDurationMs?: number;
  /** Times a job may lose its consumer and be run again before it fails. Default 1. */
  maxStalls?: number;
  /** How often the consumer looks for jobs whose lock lapsed. Default 30,000 ms. */
  stalledCheckIntervalMs?: number;
}

export interface Consumer {
  /** Stops taking jobs; waits up to `graceMs` for active ones, then aborts them and hands them back. */
  close(graceMs: number): Promise<void>;
}

export interface QueueConsumers {
  consume<T>(queue: string, processor: Processor<T>, options: ConsumerOptions): Consumer;
}
