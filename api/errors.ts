import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { WorkfleetError, type ValidationIssue } from '../lib/core/errors.js';
import { pointerToPath } from '../lib/core/validate.js';

/** HTTP status of each workfleet error code; codes not listed are server faults (500). */
const STATUS_BY_CODE: Record<string, number> = {
  INPUT_INVALID: 400,
  DEFINITION_INVALID: 400,
  WORKFLOW_NOT_FOUND: 404,
  CASE_NOT_FOUND: 404,
  IDEMPOTENCY_CONFLICT: 409,
  KEY_NOT_FOUND: 404,
  CASE_STATE_CONFLICT: 409,
  SIGNAL_NOT_ACCEPTED: 409,
  SIGNAL_BUFFER_FULL: 409,
  CASE_TOO_LARGE: 413,
  // The store refuses the case's next transition; the case is marked stuck. Not the client's doing, and not a bug to hide behind a 500.
  CASE_NOT_COMMITTABLE: 503,
  SCHEDULE_NOT_FOUND: 404,
  BULK_OPERATION_NOT_FOUND: 404,
};

/** Fastify's own errors that are the client's doing, with the code we answer with. */
const FASTIFY_CLIENT_ERRORS: Record<string, { status: number; code: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'BODY_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'INPUT_INVALID' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'INPUT_INVALID' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'INPUT_INVALID' },
  FST_ERR_CTP_INVALID_TYPE: { status: 400, code: 'INPUT_INVALID' },
};

/** Errors of the infrastructure (database or Redis away): the client may retry, so 503. */
function isUnavailable(error: { name?: string; code?: unknown }): boolean {
  return (
    /^Mongo(ServerSelection|Network|NotConnected|Topology)/.test(error.name ?? '') ||
    error.code === 'ECONNREFUSED' ||
    error.name === 'MaxRetriesPerRequestError'
  );
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
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
 * One place turns errors into responses: `{"error": {"code", "message"}}` with the right status.
 * Clients never see a stack trace; a 500 is logged with its stack and answered plainly.
 */
/**
 * Fastify's router answers some malformed URLs before any hook runs (an undecodable path, a
 * parameter over the length limit); this gives them the API's error shape too.
 */
export function frameworkErrors(error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply.code(414).send(errorBody('URI_TOO_LONG', 'a path parameter is longer than the API accepts'));
    return;
  }
  void reply.code(400).send(errorBody('INPUT_INVALID', 'the request URL could not be decoded'));
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof WorkfleetError) {
      const status = STATUS_BY_CODE[error.code] ?? 500;
      if (status >= 500) request.log.error({ err: error }, 'request failed');
      if (status === 503) void reply.header('retry-after', '30');
      return reply.status(status).send(errorBody(error.code, error.message, error.details));
    }
    if (error.validation) {
      const issues = validationIssues(error);
      const message = issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message)).join('; ');
      return reply.status(400).send(errorBody('INPUT_INVALID', message, { issues }));
    }
    const known = error.code ? FASTIFY_CLIENT_ERRORS[error.code] : undefined;
    if (known) return reply.status(known.status).send(errorBody(known.code, error.message));
    if (error.statusCode === 429) return reply.status(429).send(errorBody('RATE_LIMITED', error.message));
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Other client errors from Fastify's parsers (e.g. prototype poisoning): keep their status.
      return reply.status(error.statusCode).send(errorBody('BAD_REQUEST', error.message));
    }
    if (isUnavailable(error)) {
      request.log.warn({ err: error }, 'dependency unavailable');
      return reply.status(503).header('retry-after', '5').send(errorBody('SERVICE_UNAVAILABLE', 'a backing service (MongoDB or Redis) is not reachable; retry shortly'));
    }
    request.log.error({ err: error }, 'request failed');
    return reply.status(500).send(errorBody('INTERNAL', 'internal error; the server log has the details'));
  });

  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send(errorBody('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`)),
  );
}
