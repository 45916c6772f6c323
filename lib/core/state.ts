import type { BackoffPolicy, CaseConcurrencyStrategy } from './definition.js';

export const CASE_STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

export const STEP_STATUSES = ['pending', 'scheduled', 'running', 'waiting', 'completed', 'failed', 'skipped', 'cancelled', 'compensated'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

const TERMINAL_CASE = new Set<CaseStatus>(['completed', 'failed', 'cancelled']);
const TERMINAL_STEP = new Set<StepStatus>(['completed', 'failed', 'skipped', 'cancelled', 'compensated']);

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

/** The attempt bookkeeping every runnable unit has: a step that is its own unit carries it too. */
export interface UnitFields {
  /** Highest attempt number started or finished (of the current iteration, for a repeat step). */
  attempts: number;
  /** Attempts that have ended (failed and retried, or finished). */
  attemptsDone: number;
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
  /** The rate limit or concurrency key the next attempt waits for, while it waits. */
  deferredFor?: LimitWait;
}

export const UNIT_STATUSES = ['pending', 'scheduled', 'running', 'completed', 'failed', 'cancelled'] as const;
export type UnitStatus = (typeof UNIT_STATUSES)[number];

/**
 * One runnable unit of work and its attempts: a task step, one item of a forEach step, one
 * iteration of a repeat step (the step itself, reset per iteration), or a compensation.
 */
export interface UnitState extends UnitFields {
  status: UnitStatus;
}

/**
 * A step: its status and its own unit's fields (a task or repeat step is its own unit; the
 * other kinds use the fields they need), plus what its kind keeps.
 */
export interface StepState extends UnitFields {
  status: StepStatus;
  scheduledAt?: number;
  /** Bumped when a failed case is retried: a new run gets new job ids, keeps idempotency keys. */
  run?: number;
  /** repeat: the iteration running or last run, from 1. */
  iteration?: number;
  /** forEach: the items' units, keyed by index. */
  instances?: Record<string, UnitState>;
  /** forEach: how many items there are. */
  itemCount?: number;
  /** sleep and waitFor: what the step waits for. */
  waitingFor?: { signals?: readonly string[]; until?: number };
  /** workflow: the child case. */
  childCaseId?: string;
  /** Why the step was skipped. */
  skipReason?: string;
  /** The step's compensation, once the case compensates. */
  compensation?: UnitState;
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
  /**
   * Bumped by every applied transition. The store commits revision n by inserting the case's
   * history entry n (unique per case and revision), so of two writers of one revision one wins.
   */
  revision: number;
  /** Sequence number of the last trace event. */
  seq: number;
  /** The request (HTTP request id, or intake job) that started the case; carried into its jobs and logs. */
  requestId?: string;
  /** For a sub-workflow: the step of the parent case waiting for it. */
  parent?: { caseId: string; stepId: string; run: number };
  /** How deeply this case is nested in parents (0 for a top-level case). */
  depth?: number;
  /**
   * The case's slot of its workflow's concurrency key (rendered from its input at the start):
   * `waiting` until it is admitted, and while it waits no step starts.
   */
  concurrency?: { group: string; key: string; limit: number; strategy: CaseConcurrencyStrategy; waiting: boolean };
  /** The start's priority (a child's is its parent's): with each step's own, it orders units waiting for a concurrency slot. Absent: 0. */
  priority?: number;
  /** Signals that arrived before a step waited for them, oldest first. */
  signals?: ReadonlyArray<{ name: string; payload: unknown; at: number }>;
  /** While compensations run: how the case ends once they are done. */
  compensating?: { status: 'failed' | 'cancelled'; error: ErrorInfo };
  /** Set by the reconciler when the case made no progress for too long; cleared by any progress. */
  stuck?: { reason: string; since: number };
}

export const TRACE_TYPES = [
  'case.created',
  'case.completed',
  'case.failed',
  'case.cancelled',
  'case.compensating',
  'case.retried',
  'case.queued',
  'case.admitted',
  'case.stuck',
  'step.scheduled',
  'step.started',
  'step.retried',
  'step.deferred',
  'step.waiting',
  'step.completed',
  'step.failed',
  'step.skipped',
  'step.cancelled',
  'step.compensated',
  'compensation.failed',
  'child.started',
  'signal.received',
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

/** Which unit of a step a job or a report is about. */
export interface UnitAddress {
  /** The step's run (0 until the case is retried). */
  run?: number;
  /** forEach: the item's index. */
  instance?: number;
  /** repeat: the iteration, from 1. */
  iteration?: number;
  /** A compensation rather than the step itself. */
  compensation?: boolean;
}

/** Everything a worker needs to run one unit; it travels as the BullMQ job's data. */
export interface StepJob extends UnitAddress {
  caseId: string;
  workflow: string;
  version: number;
  stepId: string;
  task: string;
  input: unknown;
  /** Stable across retries of this unit (and retries of the case), for handlers that must make effects exactly once. */
  idempotencyKey: string;
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  breaker: string;
  requestId?: string;
  /** The unit's concurrency slot: the step's group and limit, and the key rendered from the case data. */
  concurrency?: { group: string; key: string; limit: number };
  /** The unit's rate limit: the step's group, max and window, and the key rendered from the case data. */
  rateLimit?: { group: string; key: string; max: number; perMs: number };
  /** The case priority plus the step's: among units waiting for a slot of one key, higher goes first. Absent: 0. */
  priority?: number;
}

/** Why a unit waits without spending an attempt: a rate limit's reservation, or a concurrency slot (`ahead` units before it). */
export interface LimitWait {
  kind: 'rate' | 'concurrency';
  group: string;
  key: string;
  ahead?: number;
}

/** A unit's job, as a cancellation names it. */
export interface JobRef {
  queue: string;
  jobId: string;
  /** The concurrency group of a keyed unit: its slot, or its place in line, is given up too. */
  group?: string;
}

/** Events that move a case, reported by workers, timers, the API and child cases. Times are epoch milliseconds. */
export type CaseEvent =
  | ({ type: 'stepStarted'; stepId: string; attempt: number; at: number; worker?: string } & UnitAddress)
  | ({ type: 'stepRetrying'; stepId: string; attempt: number; at: number; startedAt: number; error: ErrorInfo; retryAt: number } & UnitAddress)
  | ({ type: 'stepCompleted'; stepId: string; attempt: number; at: number; startedAt: number; output: unknown } & UnitAddress)
  | ({ type: 'stepFailed'; stepId: string; attempt: number; at: number; startedAt?: number; error: ErrorInfo } & UnitAddress)
  | ({ type: 'stepDeferred'; stepId: string; attempt: number; at: number; breaker: string; until: number; limit?: LimitWait } & UnitAddress)
  | { type: 'breakerOpened'; stepId: string; at: number; breaker: string; until: number }
  | { type: 'breakerClosed'; stepId: string; at: number; breaker: string }
  | { type: 'deadlineExceeded'; at: number }
  /** The case holds its slot of its workflow's concurrency key: its steps may start. */
  | { type: 'caseAdmitted'; at: number }
  | { type: 'signal'; name: string; payload: unknown; at: number }
  | { type: 'timerFired'; stepId: string; run: number; kind: 'sleep' | 'signalTimeout'; at: number }
  | { type: 'childStarted'; stepId: string; run: number; childId: string; at: number }
  | { type: 'childFinished'; stepId: string; run: number; childId: string; status: 'completed' | 'failed' | 'cancelled'; output?: unknown; error?: ErrorInfo; at: number }
  /** `compensate` unset: as the workflow's `onCancel` says. */
  | { type: 'cancel'; reason: string; compensate?: boolean; at: number }
  | { type: 'retry'; at: number }
  | { type: 'stuck'; reason: string; at: number };

/** One report from a worker about one step of one case, carried by the results queue. */
export interface StepReport {
  caseId: string;
  event: CaseEvent;
}

/** What the shell must do after a transition has been stored. */
export type Command =
  | { type: 'enqueueStep'; queue: string; jobId: string; job: StepJob }
  | { type: 'scheduleTimer'; jobId: string; at: number; caseId: string; event: CaseEvent & { type: 'timerFired' } }
  | { type: 'cancelJobs'; jobs: readonly JobRef[] }
  | { type: 'startChild'; parent: { caseId: string; stepId: string; run: number }; depth: number; idempotencyKey: string; request: { workflow: string; version?: number; input: unknown } }
  | { type: 'cancelChildren'; caseId: string; reason: string }
  | { type: 'notifyParent'; caseId: string; event: CaseEvent & { type: 'childFinished' } }
  /** Ask for the case's slot of its key (admitted: a caseAdmitted event follows), as its strategy says. */
  | { type: 'awaitSlot'; caseId: string; group: string; key: string; limit: number; strategy: CaseConcurrencyStrategy; priority: number }
  /** The case has ended: its slot, or its place in line, goes to the next case of its key. */
  | { type: 'releaseSlot'; group: string; caseId: string };

/** The result of a transition: the next state, the history it adds, the work it asks for. */
export interface Transition {
  state: CaseState;
  events: TraceEvent[];
  commands: Command[];
  /** Events refused rather than applied (a signal that does not fit the case), each with why. */
  refused?: Array<{ event: CaseEvent; error: ErrorInfo }>;
}
