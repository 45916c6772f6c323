/**
 * `workfleet/client`: the producer SDK. A typed HTTP client of the workfleet API, with no
 * dependencies, for services that start cases and read their results. Producers that speak
 * only BullMQ (or another language) follow docs/PRODUCERS.md instead.
 */
export { WorkfleetClient, CLIENT_OPERATIONS } from './client.js';
export type { WorkfleetClientOptions, RequestOptions, WaitOptions, StartResult, ClientOperation } from './client.js';
export {
  CLIENT_ERROR_CODES,
  WorkfleetError,
  WorkfleetApiError,
  InvalidRequestError,
  UnauthorizedError,
  ForbiddenError,
  NotFoundError,
  ConflictError,
  RateLimitedError,
  ServiceUnavailableError,
  WorkfleetConnectionError,
  WorkfleetAbortError,
  InvalidResponseError,
  WaitTimeoutError,
} from './errors.js';
export { ErrorCode } from '../core/error-codes.js';
export * from './types.js';
