import type { ErrorInfo } from './state.js';

/**
 * Every error workfleet raises on purpose carries a stable `code` and says whether trying again
 * can help. Edges translate them: the API to an HTTP status, the workers to BullMQ's
 * UnrecoverableError. Code elsewhere branches on `code`, never on `message`.
 */
export class WorkfleetError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: string, message: string, options: { retryable?: boolean; details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WorkfleetError';
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }
}

/** One problem found in a document, located by a path such as `steps[2].after[0]`. */
export interface ValidationIssue {
  path: string;
  message: string;
}

export function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
}

export class DefinitionInvalidError extends WorkfleetError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[]) {
    super('DEFINITION_INVALID', `workflow definition is invalid: ${formatIssues(issues)}`, { details: { issues } });
    this.name = 'DefinitionInvalidError';
    this.issues = issues;
  }
}

export class InputInvalidError extends WorkfleetError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[], what = 'request') {
    super('INPUT_INVALID', `${what} is invalid: ${formatIssues(issues)}`, { details: { issues } });
    this.name = 'InputInvalidError';
    this.issues = issues;
  }
}

export class WorkflowNotFoundError extends WorkfleetError {
  /** `suggestions`: existing workflows whose names are close to `name` (a typo's likely meaning). */
  constructor(name: string, version?: number, suggestions: readonly string[] = []) {
    const missing = version === undefined ? `workflow "${name}" does not exist` : `workflow "${name}" has no version ${version}`;
    const hint = suggestions.length > 0 ? `; did you mean ${suggestions.map((candidate) => `"${candidate}"`).join(' or ')}?` : '';
    super('WORKFLOW_NOT_FOUND', `${missing}${hint}`, suggestions.length > 0 ? { details: { suggestions } } : {});
    this.name = 'WorkflowNotFoundError';
  }
}

export class SignalNotAcceptedError extends WorkfleetError {
  constructor(caseId: string, name: string, accepted: readonly string[]) {
    const names = accepted.length > 0 ? `it accepts ${accepted.map((signal) => `"${signal}"`).join(', ')}` : 'no step of it waits for a signal any more';
    super('SIGNAL_NOT_ACCEPTED', `no step of case ${caseId} waits or may still wait for signal "${name}": ${names}`, { details: { accepted } });
    this.name = 'SignalNotAcceptedError';
  }
}

export class CaseNotFoundError extends WorkfleetError {
  constructor(id: string) {
    super('CASE_NOT_FOUND', `case "${id}" does not exist`);
    this.name = 'CaseNotFoundError';
  }
}

export class IdempotencyConflictError extends WorkfleetError {
  constructor(key: string, existingCaseId: string) {
    super(
      'IDEMPOTENCY_CONFLICT',
      `idempotency key "${key}" already started case ${existingCaseId} with a different request`,
      { details: { caseId: existingCaseId } },
    );
    this.name = 'IdempotencyConflictError';
  }
}

export class BulkOperationNotFoundError extends WorkfleetError {
  constructor(id: string) {
    super('BULK_OPERATION_NOT_FOUND', `bulk operation "${id}" does not exist`);
    this.name = 'BulkOperationNotFoundError';
  }
}

/**
 * A start whose case may already be stored (its insert was sent) but which did not finish: the
 * insert's answer or the enqueue of its first steps failed. A retry with the same idempotency key
 * finds the case and enqueues what it lacks; without a key, `details.caseId` names the case that
 * may exist (the reconciler enqueues its steps if it does).
 */
export class StartIncompleteError extends WorkfleetError {
  constructor(caseId: string, idempotencyKey: string | undefined, cause: unknown) {
    const retry = idempotencyKey === undefined ? `look for case ${caseId} before starting again (send an idempotencyKey to make retries safe)` : `retry with the same idempotency key`;
    super('START_INCOMPLETE', `the start of case ${caseId} did not finish (it may have been made); ${retry}`, {
      retryable: true,
      cause,
      details: { caseId, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) },
    });
    this.name = 'StartIncompleteError';
  }
}

/** Raised when a conditional write lost a race; the caller re-reads and tries again. */
export class RevisionConflictError extends WorkfleetError {
  constructor(caseId: string) {
    super('REVISION_CONFLICT', `case ${caseId} changed while a transition was being applied`, { retryable: true });
    this.name = 'RevisionConflictError';
  }
}

/** Error codes a step can end with; handlers may add their own codes too. */
export const StepErrorCode = {
  timeout: 'STEP_TIMEOUT',
  handlerFailed: 'HANDLER_FAILED',
  handlerMissing: 'HANDLER_NOT_FOUND',
  nonRetryable: 'NON_RETRYABLE',
  outputInvalid: 'OUTPUT_INVALID',
  cancelled: 'STEP_CANCELLED',
  /** The job's workers kept dying under it (crash loop, kill, blocked event loop): it is not run again. */
  workerLost: 'WORKER_LOST',
  /** A job on a step queue that no workfleet scheduler or worker made (its id or payload does not fit a workflow). */
  jobInvalid: 'STEP_JOB_INVALID',
  /** A `when` or `repeat.while` condition could not be evaluated (a missing field, a type mismatch, not a boolean). */
  conditionFailed: 'CONDITION_FAILED',
  /** A condition ran out of its evaluation budget (steps, or the size of a value it builds): not retryable, the same data costs the same again. */
  conditionBudgetExceeded: 'CONDITION_BUDGET_EXCEEDED',
  /** A forEach step's items are not a list, or too long a one. */
  itemsInvalid: 'ITEMS_INVALID',
  /** A forEach step with `failure: failFast` ended at an item that failed for good. */
  itemFailed: 'ITEM_FAILED',
  /** A sleep step's `until` did not render to a time. */
  sleepUntilInvalid: 'SLEEP_UNTIL_INVALID',
  /** A sub-workflow step would nest cases deeper than allowed. */
  nestingTooDeep: 'NESTING_TOO_DEEP',
  /** A sub-workflow step's child case failed, or was cancelled. */
  childFailed: 'CHILD_FAILED',
  childCancelled: 'CHILD_CANCELLED',
} as const;

/** Error codes a case can end with. */
export const CaseErrorCode = {
  stepFailed: 'STEP_FAILED',
  deadlineExceeded: 'DEADLINE_EXCEEDED',
  /** A step's result (or a signal) would have grown the case past its budget (CASE_MAX_BYTES); also a signal's refusal. */
  tooLarge: 'CASE_TOO_LARGE',
  /** Cancelled by request (or by its parent). */
  cancelled: 'CANCELLED',
} as const;

/** Codes of a signal refused when it arrives (beside CASE_TOO_LARGE and SIGNAL_NOT_ACCEPTED). */
export const SignalErrorCode = {
  /** The signals kept for steps not yet waiting are at their count or size bound. */
  bufferFull: 'SIGNAL_BUFFER_FULL',
} as const;

/** An event the core refused (a signal that does not fit), as the door that sent it answers it. */
export class EventRefusedError extends WorkfleetError {
  constructor(error: ErrorInfo) {
    super(error.code, error.message, error.details === undefined ? {} : { details: error.details });
    this.name = 'EventRefusedError';
  }
}

/**
 * The store refuses to commit a case's next transition, and would refuse it again (its history
 * entry is over the document limit, or the server rejects the document): retrying cannot help
 * until the case changes. The case is marked stuck with this reason.
 */
export class CaseNotCommittableError extends WorkfleetError {
  readonly why: string;
  constructor(caseId: string, why: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super('CASE_NOT_COMMITTABLE', `case ${caseId} cannot be committed: ${why}`, { details: { why, ...details }, ...(cause === undefined ? {} : { cause }) });
    this.why = why;
    this.name = 'CaseNotCommittableError';
  }
}

/** Codes of a bulk operation's per-case results, beside the single-case routes' own (CASE_STATE_CONFLICT, CASE_NOT_FOUND). */
export const BulkErrorCode = {
  /** The action failed for a reason that is no refusal of the case (the store or Redis away, a bug): the case may be acted on again. */
  actionFailed: 'BULK_ACTION_FAILED',
} as const;

/**
 * Codes of requests the API refuses before any route runs: authentication, rate limits, and
 * what Node's HTTP parser refuses before Fastify sees a request.
 */
export const RequestErrorCode = {
  unauthenticated: 'UNAUTHENTICATED',
  forbidden: 'FORBIDDEN',
  rateLimited: 'RATE_LIMITED',
  headersTooLarge: 'HEADERS_TOO_LARGE',
  requestTimeout: 'REQUEST_TIMEOUT',
  badRequest: 'BAD_REQUEST',
} as const;
