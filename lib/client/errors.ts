import { ErrorCode } from '../core/error-codes.js';
import type { CaseView } from './types.js';

/**
 * Codes the client itself gives, beside the API's own (`INPUT_INVALID`, `CASE_NOT_FOUND`,
 * `RATE_LIMITED`, …, passed through unchanged in `WorkfleetApiError.code`). All are entries of
 * workfleet's one table of error codes, which this package exports as `ErrorCode`.
 */
export const CLIENT_ERROR_CODES = {
  /** No answer: refused connection, DNS failure, reset. */
  unreachable: ErrorCode.unreachable,
  /** No answer within `timeoutMs`. */
  requestTimeout: ErrorCode.requestTimeout,
  /** The caller's AbortSignal fired. */
  aborted: ErrorCode.aborted,
  /** `waitForResult` gave up before the case finished. */
  waitTimeout: ErrorCode.waitTimeout,
  /** The API answered something that is not the JSON it documents. */
  invalidResponse: ErrorCode.invalidResponse,
} as const;

/**
 * Base of every error the client throws; `code` is stable and meant for programs: compare it with
 * `ErrorCode` (`error.code === ErrorCode.caseNotFound`). It is a string, not only an `ErrorCode`:
 * an API newer than this client may answer with a code the client does not know yet.
 */
export class WorkfleetError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WorkfleetError';
    this.code = code;
  }
}

/** The API answered with an error: `status` is the HTTP status, `code` the API's code. */
export class WorkfleetApiError extends WorkfleetError {
  readonly status: number;
  readonly details: unknown;
  /** The X-Request-Id of the failed request: quote it when asking an operator. */
  readonly requestId: string | undefined;
  constructor(status: number, code: string, message: string, details?: unknown, requestId?: string) {
    super(code, message);
    this.name = 'WorkfleetApiError';
    this.status = status;
    this.details = details;
    this.requestId = requestId;
  }
}

/** 400: the request is malformed; `details.issues` names each problem with its path. */
export class InvalidRequestError extends WorkfleetApiError {
  override name = 'InvalidRequestError';
}
/** 401: the key is missing, unknown, wrong, revoked or expired. */
export class UnauthorizedError extends WorkfleetApiError {
  override name = 'UnauthorizedError';
}
/** 403: the key's roles do not allow this. */
export class ForbiddenError extends WorkfleetApiError {
  override name = 'ForbiddenError';
}
/** 404: no such case or workflow (or, for a producer key, a case it did not start). */
export class NotFoundError extends WorkfleetApiError {
  override name = 'NotFoundError';
}
/** 409: the case is in a state that does not allow this, or an idempotency key was reused for a different request. */
export class ConflictError extends WorkfleetApiError {
  override name = 'ConflictError';
}
/** 429: too many requests for this key; `retryAfterMs` says when to come back. */
export class RateLimitedError extends WorkfleetApiError {
  override name = 'RateLimitedError';
  retryAfterMs: number | undefined;
}
/** 5xx: the API cannot serve now (503: MongoDB or Redis away). Worth retrying later. */
export class ServiceUnavailableError extends WorkfleetApiError {
  override name = 'ServiceUnavailableError';
}

/** No answer from the API (code UNREACHABLE or REQUEST_TIMEOUT). */
export class WorkfleetConnectionError extends WorkfleetError {
  override name = 'WorkfleetConnectionError';
}

/** The caller's AbortSignal fired (code ABORTED). */
export class WorkfleetAbortError extends WorkfleetError {
  override name = 'WorkfleetAbortError';
}

/** The API answered with something other than its documented JSON (code INVALID_RESPONSE). */
export class InvalidResponseError extends WorkfleetError {
  override name = 'InvalidResponseError';
}

/** `waitForResult` timed out (code WAIT_TIMEOUT); `lastSeen` is the case as last read. */
export class WaitTimeoutError extends WorkfleetError {
  override name = 'WaitTimeoutError';
  readonly lastSeen: CaseView | undefined;
  constructor(message: string, lastSeen: CaseView | undefined) {
    super(CLIENT_ERROR_CODES.waitTimeout, message);
    this.lastSeen = lastSeen;
  }
}

/** The error class for an HTTP error status. */
export function apiErrorFor(status: number, code: string, message: string, details: unknown, requestId: string | undefined, retryAfterMs?: number): WorkfleetApiError {
  if (status === 400) return new InvalidRequestError(status, code, message, details, requestId);
  if (status === 401) return new UnauthorizedError(status, code, message, details, requestId);
  if (status === 403) return new ForbiddenError(status, code, message, details, requestId);
  if (status === 404) return new NotFoundError(status, code, message, details, requestId);
  if (status === 409) return new ConflictError(status, code, message, details, requestId);
  if (status === 429) {
    const error = new RateLimitedError(status, code, message, details, requestId);
    error.retryAfterMs = retryAfterMs;
    return error;
  }
  if (status >= 500) return new ServiceUnavailableError(status, code, message, details, requestId);
  return new WorkfleetApiError(status, code, message, details, requestId);
}
