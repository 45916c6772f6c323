import type { BackoffPolicy } from './definition.js';

export const CASE_STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

export const STEP_STATUSES = ['pending', 'scheduled', 'running', 'completed', 'failed', 'skipped', 'cancelled'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

const TERMINAL_CASE = new Set<CaseStatus>(['completed', 'failed', 'cancelled']);
const TERMINAL_STEP = new Set<StepStatus>(['completed', 'failed', 'skipped', 'cancelled']);

export const isTerminalCase = (status: CaseStatus): boolean => TERMINAL_CASE.has(status);
export const isTerminalStep = (status: StepStatus): boolean => TERMINAL_STEP.has(status);

/** Why something failed, as stored on steps and cases and shown to users. */
export interface ErrorInfo {
  code: string;
  message: string;
  /** Whether trying again could help (false for non-retryable handler errors). */
  retryable?: boolean;
  stepId?: string;
  attempt?: number;
  details?: unknown;
}

export interface StepState {
  status: StepStatus;
  /** Highest attempt number started or finished. */
  attempts: number;
  /** Attempts that have ended (failed and retried, or finished). */
  attemptsDone: number;
  scheduledAt?: number;
  /** Start of the first attempt. */
  startedAt?: number;
  finishedAt?: number;
  output?: unknown;
  /** The last error, also while a retry is pending. */
  error?: ErrorInfo;
  /** When the next attempt may start (after a retry backoff or a breaker deferral). */
  nextAttemptAt?: number;
  /** The breaker that deferred the next attempt, while it is deferred. */
  deferredBy?: string;
}

/** A case as the pure core sees it. Times are epoch milliseconds. */
export interface CaseState {
  id: string;
  workflow: string;
  version: number;
  status: CaseStatus;
  input: unknown;
  output?: unknown;
  error?: ErrorInfo;
  steps: Readonly<Record<string, StepState>>;
  createdAt: number;
  updatedAt: number;
  deadlineAt: number;
  finishedAt?: number;
  /** Bumped by every applied transition; writes are conditional on it. */
  revision: number;
  /** Sequence number of the last trace event. */
  seq: number;
  /** The request (HTTP request id, or intake job) that started the case; carried into its jobs and logs. */
  requestId?: string;
}

export const TRACE_TYPES = [
  'case.created',
  'case.completed',
  'case.failed',
  'case.cancelled',
  'step.scheduled',
  'step.started',
  'step.retried',
  'step.deferred',
  'step.completed',
  'step.failed',
  'step.skipped',
  'breaker.opened',
  'breaker.closed',
] as const;
export type TraceType = (typeof TRACE_TYPES)[number];

/** One entry of a case's history; `seq` orders them and is unique per case. */
export interface TraceEvent {
  seq: number;
  type: TraceType;
  stepId?: string;
  at: number;
  data: Record<string, unknown>;
}

/** Everything a worker needs to run one step; it travels as the BullMQ job's data. */
export interface StepJob {
  caseId: string;
  workflow: string;
  version: number;
  stepId: string;
  task: string;
  input: unknown;
  /** Stable across retries of this step, for handlers that must make effects exactly once. */
  idempotencyKey: string;
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  breaker: string;
  requestId?: string;
}

/** What the shell must do after a transition has been stored. */
export type Command = { type: 'enqueueStep'; queue: string; jobId: string; job: StepJob };

/** Events that move a case, reported by workers and timers. Times are epoch milliseconds. */
export type CaseEvent =
  | { type: 'stepStarted'; stepId: string; attempt: number; at: number; worker?: string }
  | { type: 'stepRetrying'; stepId: string; attempt: number; at: number; startedAt: number; error: ErrorInfo; retryAt: number }
  | { type: 'stepCompleted'; stepId: string; attempt: number; at: number; startedAt: number; output: unknown }
  | { type: 'stepFailed'; stepId: string; attempt: number; at: number; startedAt?: number; error: ErrorInfo }
  | { type: 'stepDeferred'; stepId: string; attempt: number; at: number; breaker: string; until: number }
  | { type: 'breakerOpened'; stepId: string; at: number; breaker: string; until: number }
  | { type: 'breakerClosed'; stepId: string; at: number; breaker: string }
  | { type: 'deadlineExceeded'; at: number };

export type CaseEventType = CaseEvent['type'];

/** One report from a worker about one step of one case, carried by the results queue. */
export interface StepReport {
  caseId: string;
  event: CaseEvent;
}

/** The result of a transition: the next state, the history it adds, the work it asks for. */
export interface Transition {
  state: CaseState;
  events: TraceEvent[];
  commands: Command[];
}
