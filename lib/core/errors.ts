import { ErrorCode, errorCodeEntry, isErrorCode } from './error-codes.js';
import type { ErrorInfo } from './state.js';

/**
 * Every error workfleet raises on purpose carries a stable `code` from the table of
 * lib/core/error-codes.ts, which also says whether trying again can help. Edges translate them:
 * the API to the table's HTTP status, the workers to BullMQ's UnrecoverableError. Code elsewhere
 * branches on `code`, never on `message`.
 */
export class WorkfleetError extends Error {
  readonly code: ErrorCode;
  /** Whether the same operation, repeated unchanged, may succeed: the table's word for the code. */
  readonly retryable: boolean;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WorkfleetError';
    this.code = code;
    this.retryable = errorCodeEntry(code).retryable;
    this.details = options.details;
  }
}

/** One problem found in a document, located by a path such as `steps[2].after[0]`. */
export interface ValidationIssue {
  path: string;
  message: string;
}

function formatIssues(issues: readonly ValidationIssue[]): string {
  return issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
}

export class DefinitionInvalidError extends WorkfleetError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[]) {
    super(ErrorCode.definitionInvalid, `workflow definition is invalid: ${formatIssues(issues)}`, { details: { issues } });
    this.name = 'DefinitionInvalidError';
    this.issues = issues;
  }
}

export class InputInvalidError extends WorkfleetError {
  readonly issues: readonly ValidationIssue[];
  constructor(issues: readonly ValidationIssue[], what = 'request') {
    super(ErrorCode.inputInvalid, `${what} is invalid: ${formatIssues(issues)}`, { details: { issues } });
    this.name = 'InputInvalidError';
    this.issues = issues;
  }
}

/**
 * The store refuses to commit a case's next transition, and would refuse it again (its history
 * entry is over the document limit, or the server rejects the document): retrying cannot help
 * until the case changes. The case is marked stuck with this reason (`why`).
 */
export class CaseNotCommittableError extends WorkfleetError {
  readonly why: string;
  constructor(caseId: string, why: string, details: Record<string, unknown> = {}, cause?: unknown) {
    super(ErrorCode.caseNotCommittable, `case ${caseId} cannot be committed: ${why}`, { details: { why, ...details }, ...(cause === undefined ? {} : { cause }) });
    this.why = why;
    this.name = 'CaseNotCommittableError';
  }
}

/** `suggestions`: existing workflows whose names are close to `name` (a typo's likely meaning). */
export function workflowNotFoundError(name: string, version?: number, suggestions: readonly string[] = []): WorkfleetError {
  const missing = version === undefined ? `workflow "${name}" does not exist` : `workflow "${name}" has no version ${version}`;
  const hint = suggestions.length > 0 ? `; did you mean ${suggestions.map((candidate) => `"${candidate}"`).join(' or ')}?` : '';
  return new WorkfleetError(ErrorCode.workflowNotFound, `${missing}${hint}`, suggestions.length > 0 ? { details: { suggestions } } : {});
}

export function signalNotAcceptedError(caseId: string, name: string, accepted: readonly string[]): WorkfleetError {
  const names = accepted.length > 0 ? `it accepts ${accepted.map((signal) => `"${signal}"`).join(', ')}` : 'no step of it waits for a signal any more';
  return new WorkfleetError(ErrorCode.signalNotAccepted, `no step of case ${caseId} waits or may still wait for signal "${name}": ${names}`, { details: { accepted } });
}

export function caseNotFoundError(id: string): WorkfleetError {
  return new WorkfleetError(ErrorCode.caseNotFound, `case "${id}" does not exist`);
}

/** An operation that the case's status does not allow (signal a finished case, retry a running one). */
export function caseStateConflictError(id: string, status: string, why: string): WorkfleetError {
  return new WorkfleetError(ErrorCode.caseStateConflict, `case ${id} is ${status}: ${why}`, { details: { status } });
}

export function idempotencyConflictError(key: string, existingCaseId: string): WorkfleetError {
  return new WorkfleetError(ErrorCode.idempotencyConflict, `idempotency key "${key}" already started case ${existingCaseId} with a different request`, {
    details: { caseId: existingCaseId },
  });
}

export function bulkOperationNotFoundError(id: string): WorkfleetError {
  return new WorkfleetError(ErrorCode.bulkOperationNotFound, `bulk operation "${id}" does not exist`);
}

/**
 * A start whose case may already be stored (its insert was sent) but which did not finish: the
 * insert's answer or the enqueue of its first steps failed (`cause`). A retry with the same
 * idempotency key finds the case and enqueues what it lacks; without a key, `details.caseId`
 * names the case that may exist (the reconciler enqueues its steps if it does).
 */
export function startIncompleteError(caseId: string, idempotencyKey: string | undefined, cause: unknown): WorkfleetError {
  const retry = idempotencyKey === undefined ? `look for case ${caseId} before starting again (send an idempotencyKey to make retries safe)` : `retry with the same idempotency key`;
  return new WorkfleetError(ErrorCode.startIncomplete, `the start of case ${caseId} did not finish (it may have been made); ${retry}`, {
    cause,
    details: { caseId, ...(idempotencyKey === undefined ? {} : { idempotencyKey }) },
  });
}

/** Another writer committed the case's next revision first (its `<case>:<revision>` history entry was taken) every time; the caller gave up re-reading. */
export function revisionConflictError(caseId: string): WorkfleetError {
  return new WorkfleetError(ErrorCode.revisionConflict, `case ${caseId} changed while a transition was being applied`);
}

/**
 * An event the core refused (a signal that does not fit), as the door that sent it answers it.
 * The core refuses with codes of the table; any other would be a bug, answered as one.
 */
export function eventRefusedError(refusal: ErrorInfo): WorkfleetError {
  const code = isErrorCode(refusal.code) ? refusal.code : ErrorCode.internal;
  return new WorkfleetError(code, refusal.message, refusal.details === undefined ? {} : { details: refusal.details });
}
