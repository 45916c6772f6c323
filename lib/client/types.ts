/**
 * The shapes of the workfleet HTTP API as a producer sees them. Written by hand for readable
 * TSDoc (but the case itself, which is the API's schema's type), and held to `openapi.json` by
 * test/contract/client-openapi.test.ts: every field named here exists there, every field
 * required there is required here, and the status lists match.
 */

import type { CaseView, ErrorInfo, StepView } from '../core/case-view.js';

/** Every status a case can have; the last three are final. */
export const CASE_STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled'] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

/** The statuses after which a case never changes again. */
export const FINISHED_CASE_STATUSES = ['completed', 'failed', 'cancelled'] as const satisfies readonly CaseStatus[];
export type FinishedCaseStatus = (typeof FINISHED_CASE_STATUSES)[number];

export const STEP_STATUSES = ['pending', 'scheduled', 'running', 'waiting', 'completed', 'failed', 'skipped', 'cancelled', 'compensated'] as const;
export type StepStatus = (typeof STEP_STATUSES)[number];

/** What `POST /v1/cases` takes (and what an intake job on the `cases` queue carries). */
export interface StartCaseRequest {
  /** Workflow name. */
  workflow: string;
  /** Definition version. Default: the latest. */
  version?: number;
  /** The case input: a JSON object. Default `{}`. */
  input?: Record<string, unknown>;
  /** A second start with the same key returns the first case instead of making another. */
  idempotencyKey?: string;
  /**
   * How long the case answers for `idempotencyKey` ("1h", "7d", or milliseconds): a start with the
   * key after that makes a new case. Default: for ever.
   */
  idempotencyWindow?: number | string;
  /** Up to 10 names and values to find the case by later (`list({ key: 'orderId=A-17' })`). */
  businessKeys?: Record<string, string>;
  /** -100 to 100, default 0: orders the case's keyed units (and the case, for a workflow key) in their key's line; child cases inherit it. */
  priority?: number;
}

/** The answer to a start. */
export interface StartedCase {
  id: string;
  status: CaseStatus;
  workflow: string;
  version: number;
}

/**
 * The answer (202) to a start of a workflow with `debounce:`: it joined a burst of starts, whose
 * one case starts when the burst closes, with the burst's last start. `id` is the id that case will
 * have (`get(id)` is NotFoundError until then).
 */
export interface DebouncedStart {
  id: string;
  status: 'debounced';
  workflow: string;
  version: number;
  debounce: {
    /** The debounce key the start's input rendered. */
    key: string;
    /** opened: this start began the burst; joined: it joined an open one; replayed: its idempotency key had joined this burst before. */
    outcome: 'opened' | 'joined' | 'replayed';
    /** When the case starts as things stand (ISO 8601); later starts may put it off, up to the workflow's maxWait. Null for a replay of a closed burst. */
    startsAt: string | null;
    /** Starts in the burst so far; null for a replay of a closed burst. */
    starts: number | null;
  };
}

/**
 * A case as `GET /v1/cases/:id` shows it (`CaseView`), its steps (`StepView`) and why a case or
 * step failed (`ErrorInfo`, whose `code` is stable: STEP_FAILED, STEP_TIMEOUT, DEADLINE_EXCEEDED,
 * or a handler's code): the types of the API's own response schema (lib/core/case-view.ts),
 * so that the client's idea of a case cannot drift from what the API sends.
 */
export type { CaseView, ErrorInfo, StepView } from '../core/case-view.js';

/** Where the queued units of a keyed step stand (`StepView.limits`), and one unit that waits (`StepLimitsView['waits'][number]`). */
export type StepLimitsView = NonNullable<StepView['limits']>;

/** A case that will not change again. */
export type FinishedCase = CaseView & { status: FinishedCaseStatus };

export interface CaseSummary {
  id: string;
  workflow: string;
  version: number;
  status: CaseStatus;
  createdAt: string | null;
  updatedAt: string | null;
  /** When the case finished; null while it is open. */
  finishedAt: string | null;
  error: ErrorInfo | null;
}

/** One page of `GET /v1/cases`, newest first. */
export interface CaseList {
  cases: CaseSummary[];
  /** Pass as `cursor` for the next page; null on the last. */
  nextCursor: string | null;
}

/** Which cases: the filters of the case list, also the `filter` of bulk operations. */
export interface CaseFilter {
  status?: CaseStatus;
  workflow?: string;
  /** A business key given at start, as `name=value`. */
  key?: string;
  /** Only cases created at or after this time. */
  createdAfter?: Date | string;
  /** Only cases created before this time. */
  createdBefore?: Date | string;
  /** Only cases last changed at or after this time (exact for finished cases). */
  updatedAfter?: Date | string;
  /** Only cases last changed before this time. */
  updatedBefore?: Date | string;
  /** The case error's code, or the code of the step error that failed it (e.g. `UPSTREAM_UNAVAILABLE`). */
  errorCode?: string;
}

export interface ListCasesQuery extends CaseFilter {
  /** Cases per page, 1 to 200. Default (the API's) 50. */
  limit?: number;
  cursor?: string;
}

export interface TraceEvent {
  /** Order of the event within the case, from 1, without gaps. */
  seq: number;
  /** case.created, step.scheduled, step.started, step.retried, step.completed, case.completed, … */
  type: string;
  stepId?: string;
  at: string;
  data: Record<string, unknown>;
}

export interface Trace {
  events: TraceEvent[];
}

export interface CancelOptions {
  /** Shown in the case error and the trace. */
  reason?: string;
  /** Run the compensations of completed steps first. Default: the workflow's `onCancel`. */
  compensate?: boolean;
}

/** What a bulk operation does to each case. */
export type BulkAction = 'retry' | 'cancel' | 'signal';

/** A bulk request: which cases, and how many at most (1 to 10,000; the API's default 1,000). */
export interface BulkRequest {
  filter: CaseFilter;
  limit?: number;
}

export interface BulkCancelRequest extends BulkRequest {
  /** Shown in each case error and trace. */
  reason?: string;
  /** Run the compensations of completed steps first. Default: each workflow's `onCancel`. */
  compensate?: boolean;
}

export interface BulkSignalRequest extends BulkRequest {
  signal: { name: string; payload?: unknown };
}

/** The request each action takes. */
export type BulkRequestFor<A extends BulkAction> = A extends 'signal' ? BulkSignalRequest : A extends 'cancel' ? BulkCancelRequest : BulkRequest;

/** A dry run's answer: nothing was changed. */
export interface BulkPreview {
  dryRun: true;
  action: string;
  /** Matching cases, counted up to 10,000. */
  matched: number;
  /** True when the count stopped at 10,000. */
  atLeast: boolean;
  byStatus: Record<string, number>;
  /** Of the matching cases, those whose status allows the action; the others would be skipped. */
  eligible: number;
  /** Cases a real run would act on: the matching ones up to the limit. */
  wouldAct: number;
  limit: number;
  /** The newest matching cases. */
  sample: CaseSummary[];
}

/** A bulk operation and its progress. */
export interface BulkOperation {
  id: string;
  action: BulkAction;
  filter: CaseFilter;
  limit: number;
  status: 'running' | 'completed' | 'stopped';
  /** Cases it acts on: those matching at its start, up to the limit (corrected at the end). */
  total: number;
  /** Cases acted on so far. */
  done: number;
  counts: { ok: number; skipped: number; error: number };
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** The key that started it. */
  createdBy: string;
  reason?: string;
  compensate?: boolean;
  signal?: { name: string; payload: unknown };
}

/** What happened to one case: `ok` applied, `skipped` its state did not allow it, `error` it failed (and may be tried again). */
export interface BulkResult {
  caseId: string;
  outcome: 'ok' | 'skipped' | 'error';
  status: CaseStatus | null;
  /** The code the single-case route answers with (CASE_STATE_CONFLICT, CASE_NOT_FOUND, …). */
  code: string | null;
  message: string | null;
}

export interface BulkResults {
  results: BulkResult[];
  /** Pass as `cursor` for the next results; null when no more are stored (yet). */
  nextCursor: string | null;
}
