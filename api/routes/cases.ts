import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { InputInvalidError } from '../../lib/core/errors.js';
import { PAYLOAD_LIMITS, payloadIssues, StartCaseRequestSchema } from '../../lib/core/requests.js';
import { SIGNAL_NAME_PATTERN } from '../../lib/core/definition.js';
import { can, mayReadCase } from '../../lib/core/auth.js';
import { caseNotFoundError } from '../../lib/core/errors.js';
import type { CaseService } from '../../lib/engine/cases.js';
import { CASE_FILTER_FIELDS, parseCaseFilter } from '../case-filter.js';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { sendError } from '../errors.js';
import type { LimitWaits } from '../limit-waits.js';
import { presentCase, presentSummary, presentTrace } from '../presenters.js';
import { CaseListSchema, CaseViewSchema, DebouncedStartSchema, errorResponses, StartedCaseSchema, TraceSchema } from '../schemas.js';

const tags = ['cases'];

const CaseParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }) });
const SignalParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 100 }), name: Type.String({ pattern: SIGNAL_NAME_PATTERN, maxLength: 64 }) });
const CancelBody = Type.Object(
  {
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 1_000, description: 'Shown in the case error and the trace.' })),
    compensate: Type.Optional(Type.Boolean({ description: "Run the compensations of completed steps first (latest first). Default: the workflow's onCancel." })),
  },
  { additionalProperties: false },
);
const ListQuery = Type.Object(
  {
    ...CASE_FILTER_FIELDS,
    // Query strings are text; bodies are not coerced, so numbers here are checked as digits.
    limit: Type.Optional(Type.String({ pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', description: 'Cases per page, 1 to 200. Default 50.' })),
    cursor: Type.Optional(Type.String({ maxLength: 200, pattern: '^[A-Za-z0-9_-]+$' })),
  },
  { additionalProperties: false },
);

/** `waits`: where the queued units of keyed steps stand, added to a read of one case. */
export function caseRoutes(app: FastifyInstance, cases: CaseService, waits: LimitWaits): void {
  app.post<{ Body: Static<typeof StartCaseRequestSchema> }>(
    '/v1/cases',
    {
      config: { permission: 'cases:start' },
      // A start request that tries to carry roles is an escalation attempt, not a typo: 403.
      preValidation: async (request, reply) => {
        const body = request.body as Record<string, unknown> | null;
        if (body && typeof body === 'object' && ('role' in body || 'roles' in body)) {
          return sendError(reply, ErrorCode.forbidden, 'roles come from the API key, never from a request body');
        }
      },
      schema: {
        tags,
        operationId: 'startCase',
        description:
          'Starts a case of the latest version of a workflow, or of `version`. A repeat with the same idempotency key answers 200 with the case it started; the same key with a different request answers 409. ' +
          "A workflow with `debounce:` collapses a burst of starts with the same key into one case: such a start answers 202 with the id the burst's case will have and when it starts (docs/PRODUCERS.md).",
        summary: 'Start a case (201), find the one its idempotency key started (200), or join a debounce burst (202)',
        body: StartCaseRequestSchema,
        response: { 200: StartedCaseSchema, 201: StartedCaseSchema, 202: DebouncedStartSchema, ...errorResponses(400, 401, 403, 404, 409, 413, 429) },
      },
    },
    async (request, reply) => {
      const started = await cases.submit(request.body, { startedBy: request.principal.id, requestId: request.id });
      if (started.kind === 'debounced') {
        const { id, workflow, version, key, outcome, startsAt, starts } = started.debounced;
        // The Location names the case to be: 404 until the burst closes.
        return reply
          .status(202)
          .header('location', `/v1/cases/${id}`)
          .send({ id, status: 'debounced', workflow, version, debounce: { key, outcome, startsAt: startsAt === undefined ? null : new Date(startsAt).toISOString(), starts: starts ?? null } });
      }
      const { record, created } = started;
      return reply
        .status(created ? 201 : 200)
        .header('location', `/v1/cases/${record.id}`)
        .send({ id: record.id, status: record.status, workflow: record.workflow, version: record.version });
    },
  );

  // A key that may read only its own cases sees only those; someone else's case is "not found".
  const readable = async (id: string, principal: Parameters<typeof mayReadCase>[0]) => {
    const record = await cases.get(id);
    if (!mayReadCase(principal, record.startedBy)) throw caseNotFoundError(id);
    return record;
  };

  app.get<{ Querystring: Static<typeof ListQuery> }>(
    '/v1/cases',
    {
      config: { permission: 'cases:read-own' },
      schema: {
        tags,
        operationId: 'listCases',
        description:
          'Filter by status, workflow, a business key (name=value) and creation time; pass `nextCursor` as `cursor` for the next page. A key that may read only the cases it started lists only those.',
        summary: 'A page of cases, newest first',
        querystring: ListQuery,
        response: { 200: CaseListSchema, ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (request) => {
      const { limit, cursor, ...filter } = request.query;
      const ownOnly = !can(request.principal.roles, 'cases:read');
      const page = await cases.list({
        ...parseCaseFilter(filter),
        limit: limit === undefined ? 50 : Number(limit),
        ...(ownOnly ? { startedBy: request.principal.id } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return { cases: page.cases.map(presentSummary), nextCursor: page.nextCursor ?? null };
    },
  );

  const readOwn = { permission: 'cases:read-own' as const };
  app.get<{ Params: Static<typeof CaseParams> }>(
    '/v1/cases/:id',
    {
      config: readOwn,
      schema: {
        tags,
        operationId: 'getCase',
        description:
          "Every step's status, attempts, output and error. A step with a concurrency key or a rate limit whose units are queued says what they wait for (`limits`): a slot of their key, with the units ahead in its line (looked up for at most 10 units per read), or the rate limit, until when. A key that may read only the cases it started gets 404 for the others.",
        summary: 'A case with its steps',
        params: CaseParams,
        response: { 200: CaseViewSchema, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      const record = await readable(request.params.id, request.principal);
      return presentCase(record, await waits.of(record));
    },
  );

  const operate = { permission: 'cases:operate' as const };
  const answer = { 200: CaseViewSchema, ...errorResponses(400, 401, 403, 404, 409, 429) };
  // 503 CASE_NOT_COMMITTABLE: the store refuses the case's next transition (the case is marked stuck).
  const changeAnswer = { ...answer, ...errorResponses(503) };

  app.post<{ Params: Static<typeof CaseParams>; Body: Static<typeof CancelBody> | undefined }>(
    '/v1/cases/:id/cancel',
    {
      config: operate,
      schema: {
        tags,
        operationId: 'cancelCase',
        description:
          "Stops the case's running jobs and cancels its sub-workflow cases; with `compensate` (default: the workflow's onCancel) the compensations of completed steps run first, latest first. 409 when the case has finished; 503 CASE_NOT_COMMITTABLE (with Retry-After) when the store refuses the case's next transition.",
        summary: 'Cancel a case: stop its jobs and children, compensate if asked',
        params: CaseParams,
        body: Type.Optional(CancelBody),
        response: changeAnswer,
      },
    },
    async (request) => {
      const body = request.body ?? {};
      return presentCase(
        await cases.cancel(request.params.id, {
          ...(body.reason === undefined ? {} : { reason: body.reason }),
          ...(body.compensate === undefined ? {} : { compensate: body.compensate }),
        }),
      );
    },
  );

  app.post<{ Params: Static<typeof SignalParams>; Body: unknown }>(
    '/v1/cases/:id/signals/:name',
    {
      config: operate,
      schema: {
        tags,
        operationId: 'signalCase',
        description:
          'A step waiting for the signal goes on; a signal no step waits for yet is kept until one does. 409 when the case has finished, or SIGNAL_BUFFER_FULL when it already keeps 100 signals (or 1 MiB of them) for steps not yet waiting; 413 CASE_TOO_LARGE when the payload would take the case past its budget (CASE_MAX_BYTES).',
        summary: 'Send a signal (the body is its payload, any JSON); a step waiting for it goes on, or it is kept until one does',
        params: SignalParams,
        response: { ...changeAnswer, ...errorResponses(413) },
      },
    },
    async (request) => {
      const problems = payloadIssues(request.body ?? null, 'payload', PAYLOAD_LIMITS.maxInputBytes);
      if (problems.length > 0) throw new InputInvalidError(problems, 'signal');
      return presentCase(await cases.signal(request.params.id, request.params.name, request.body ?? null));
    },
  );

  app.post<{ Params: Static<typeof CaseParams> }>(
    '/v1/cases/:id/retry',
    {
      config: operate,
      schema: {
        tags,
        operationId: 'retryCase',
        description:
          'Only a failed case: its failed steps run again, with new jobs and the same idempotency keys; completed steps keep their outputs. 409 for a case that has not failed, or whose completed steps were compensated.',
        summary: 'Resume a failed case from its failed steps (same idempotency keys, new jobs)',
        params: CaseParams,
        response: answer,
      },
    },
    async (request) => presentCase(await cases.retry(request.params.id)),
  );

  app.get<{ Params: Static<typeof CaseParams> }>(
    '/v1/cases/:id/trace',
    {
      config: readOwn,
      schema: {
        tags,
        operationId: 'getCaseTrace',
        description: "Every event of the case in seq order, the order it changed in. An event's `at` is stamped by the process that saw it, so times from different processes can be out of seq order.",
        summary: 'Every state change of a case, in order',
        params: CaseParams,
        response: { 200: TraceSchema, ...errorResponses(401, 403, 404, 429) },
      },
    },
    async (request) => {
      await readable(request.params.id, request.principal);
      return presentTrace(await cases.trace(request.params.id));
    },
  );
}
