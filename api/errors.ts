import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isInfrastructureUnavailable, infrastructureReason } from '../lib/adapters/unavailable.js';
import { ErrorCode, errorCodeEntry, httpStatusOf } from '../lib/core/error-codes.js';
import { WorkfleetError, type ValidationIssue } from '../lib/core/errors.js';
import type { EpisodeLog } from '../lib/obs/episode-log.js';
import { formatDuration } from '../lib/core/format.js';
import { pointerToPath } from '../lib/core/validate.js';

/** Fastify's own errors that are the client's doing, with the code we answer with. */
const FASTIFY_CLIENT_ERRORS: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: ErrorCode.bodyTooLarge,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: ErrorCode.unsupportedMediaType,
  FST_ERR_CTP_EMPTY_JSON_BODY: ErrorCode.inputInvalid,
  FST_ERR_CTP_INVALID_JSON_BODY: ErrorCode.inputInvalid,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: ErrorCode.inputInvalid,
  FST_ERR_CTP_INVALID_TYPE: ErrorCode.inputInvalid,
};

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: ErrorCode, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

/** Answers with an error: the status, and the Retry-After if any, are the table's for its code. */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string, details?: unknown): FastifyReply {
  const { retryAfterSeconds } = errorCodeEntry(code);
  if (retryAfterSeconds !== undefined) void reply.header('retry-after', String(retryAfterSeconds));
  return reply.status(httpStatusOf(code)).send(errorBody(code, message, details));
}

function validationIssues(error: FastifyError): ValidationIssue[] {
  const items = error.validation ?? [];
  const where = (instancePath: string) => {
    const base = pointerToPath(instancePath);
    return error.validationContext === 'body' ? base : [error.validationContext, base].filter(Boolean).join('.');
  };
  // A choice of values (a union of constants) fails once per constant, then once as a whole:
  // said once, with the values it accepts.
  const allowedByPath = new Map<string, unknown[]>();
  for (const item of items) {
    if (item.keyword === 'const') allowedByPath.set(item.instancePath, [...(allowedByPath.get(item.instancePath) ?? []), (item.params as { allowedValue?: unknown }).allowedValue]);
  }
  const issues: ValidationIssue[] = [];
  const said = new Set<string>();
  for (const item of items) {
    const path = where(item.instancePath);
    const missing = (item.params as { missingProperty?: string }).missingProperty;
    const extra = (item.params as { additionalProperty?: string }).additionalProperty;
    const allowed = item.keyword === 'enum' ? (item.params as { allowedValues?: unknown[] }).allowedValues : allowedByPath.get(item.instancePath);
    let issue: ValidationIssue;
    if (missing) issue = { path: path ? `${path}.${missing}` : missing, message: 'is required' };
    else if (extra) issue = { path: path ? `${path}.${extra}` : extra, message: 'unknown field' };
    else if (allowed && ['const', 'enum', 'anyOf'].includes(item.keyword)) issue = { path, message: `must be one of: ${allowed.map((value) => String(value)).join(', ')}` };
    else issue = { path, message: item.message ?? 'is invalid' };
    const key = `${issue.path}\u0000${issue.message}`;
    if (!said.has(key)) issues.push(issue);
    said.add(key);
  }
  return issues;
}

/**
 * Fastify's router answers some malformed URLs before any hook runs (an undecodable path, a
 * parameter over the length limit); this gives them the API's error shape too.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void sendError(reply, ErrorCode.uriTooLong, 'a path parameter is longer than the API accepts');
    return;
  }
  void sendError(reply, ErrorCode.inputInvalid, 'the request URL could not be decoded');
}

/**
 * Node's HTTP parser refuses some requests before Fastify sees them (headers over
 * `maxHeaderSize`, a malformed request line, a request that took too long to arrive); Fastify's
 * default answer is in its own shape. This one answers in the API's, on the raw socket, and
 * closes the connection, as Node itself does.
 */
export function clientErrorAnswer(maxHeaderBytes: number) {
  return (error: Error & { code?: string }, socket: Socket): void => {
    // A reset connection has nobody to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [code, message] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? [ErrorCode.headersTooLarge, `the request's headers exceed the ${maxHeaderBytes} bytes the API accepts`]
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [ErrorCode.requestTimeout, 'the request did not arrive in time']
          : [ErrorCode.badRequest, 'the request is not well-formed HTTP'];
    const status = httpStatusOf(code);
    const json = JSON.stringify(errorBody(code, message));
    // Not into the middle of an answer already under way on a keep-alive connection (Node's own
    // rule; `_httpMessage` is where Node keeps the socket's current response).
    const current = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !current?.headersSent) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(json)}\r\nConnection: close\r\n\r\n${json}`);
    }
    socket.destroy();
  };
}

/**
 * SERVICE_UNAVAILABLE (503 with Retry-After): a server behind the API is away, full or too slow,
 * and the same request may succeed shortly. Logged once per episode (`episodes`), not per request.
 */
function unavailable(reply: FastifyReply, episodes: EpisodeLog, error: unknown, message: string, details?: unknown): FastifyReply {
  episodes.failure(`unavailable:${infrastructureReason(error) ?? 'timeout'}`, error, 'requests answered 503: a backing service is unavailable');
  return sendError(reply, ErrorCode.serviceUnavailable, message, details);
}

const UNAVAILABLE_MESSAGE = 'a backing service (MongoDB or Redis) is unavailable or out of memory; retry shortly';

/**
 * One place turns errors into responses: `{"error": {"code", "message"}}` with the right status.
 * Clients never see a stack trace; a 500 is logged with its stack and answered plainly.
 */
export function installErrorHandling(app: FastifyInstance, episodes: EpisodeLog): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof WorkfleetError && error.code === ErrorCode.startIncomplete) {
      // The case may be in the store already: say which, and how to finish the start without making a second one.
      if (isInfrastructureUnavailable(error.cause)) return unavailable(reply, episodes, error.cause, error.message, error.details);
      request.log.error({ err: error }, 'request failed');
      return sendError(reply, ErrorCode.internal, error.message, error.details);
    }
    if (error instanceof WorkfleetError) {
      if (httpStatusOf(error.code) >= 500) request.log.error({ err: error }, 'request failed');
      return sendError(reply, error.code, error.message, error.details);
    }
    if (error.validation) {
      const issues = validationIssues(error);
      const message = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
      return sendError(reply, ErrorCode.inputInvalid, message, { issues });
    }
    const known = error.code ? FASTIFY_CLIENT_ERRORS[error.code] : undefined;
    if (known) return sendError(reply, known, error.message);
    if (error.code === 'FST_ERR_HANDLER_TIMEOUT') {
      return unavailable(
        reply,
        episodes,
        error,
        `no answer within ${formatDuration(Number((error as { timeoutMs?: number }).timeoutMs ?? 0))}: MongoDB or Redis is slow or paused; retry shortly (a start may have made its case: retry it with the same idempotency key)`,
      );
    }
    if (error.statusCode === 429) return sendError(reply, ErrorCode.rateLimited, error.message);
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Other client errors from Fastify's parsers (e.g. prototype poisoning): keep their status.
      return reply.status(error.statusCode).send(errorBody(ErrorCode.badRequest, error.message));
    }
    if (isInfrastructureUnavailable(error)) return unavailable(reply, episodes, error, UNAVAILABLE_MESSAGE);
    request.log.error({ err: error }, 'request failed');
    return sendError(reply, ErrorCode.internal, 'internal error; the server log has the details');
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, ErrorCode.routeNotFound, `no route ${request.method} ${request.url.split('?')[0] ?? ''}`));
}
