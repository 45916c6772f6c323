import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BULK_LIMITS, type BulkParams } from '../../lib/core/bulk.js';
import { InputInvalidError } from '../../lib/core/errors.js';
import { PAYLOAD_LIMITS, payloadIssues } from '../../lib/core/requests.js';
import type { BulkService } from '../../lib/engine/bulk.js';
import { BulkCancelBody, BulkOperationSchema, BulkPreviewSchema, BulkResultsSchema, BulkRetryBody, BulkSignalBody, presentOperation, presentPreview, presentResult } from '../bulk-schemas.js';
import { parseCaseFilter } from '../case-filter.js';
import { errorResponses } from '../schemas.js';

/**
 * Retry, cancel or signal every case a filter matches. With `dryRun` the answer (200) counts
 * them; otherwise (202) it is an operation that runs in the background, page by page, whose
 * progress and per-case results are read at /v1/bulk/:id. The permission is the single-case
 * action's.
 */

const tags = ['bulk'];
const OperationParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f-]{36}$' }) });
const ResultsQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,6}$', description: 'The `nextCursor` of the previous answer.' })),
    outcome: Type.Optional(Type.Union([Type.Literal('ok'), Type.Literal('skipped'), Type.Literal('error')])),
  },
  { additionalProperties: false },
);

type CommonBody = Static<typeof BulkRetryBody>;

export function bulkRoutes(app: FastifyInstance, bulk: BulkService): void {
  const answer = { 200: BulkPreviewSchema, 202: BulkOperationSchema, ...errorResponses(400, 401, 403, 413, 429) };

  const run = async (reply: FastifyReply, body: CommonBody, params: BulkParams, createdBy: string) => {
    const request = { params, filter: parseCaseFilter(body.filter), limit: body.limit ?? BULK_LIMITS.defaultCases };
    if (body.dryRun) return reply.status(200).send(presentPreview(params.action, request.limit, await bulk.preview(request)));
    const operation = await bulk.start(request, createdBy);
    return reply.status(202).header('location', `/v1/bulk/${operation.id}`).send(presentOperation(operation));
  };

  app.post<{ Body: Static<typeof BulkRetryBody> }>(
    '/v1/cases/bulk/retry',
    {
      config: { permission: 'cases:operate' },
      schema: { operationId: 'bulkRetryCases', tags, summary: 'Retry every failed case a filter matches (dryRun: count them)', body: BulkRetryBody, response: answer },
    },
    async (request, reply) => run(reply, request.body, { action: 'retry' }, request.principal.id),
  );

  app.post<{ Body: Static<typeof BulkCancelBody> }>(
    '/v1/cases/bulk/cancel',
    {
      config: { permission: 'cases:operate' },
      schema: { operationId: 'bulkCancelCases', tags, summary: 'Cancel every open case a filter matches (dryRun: count them)', body: BulkCancelBody, response: answer },
    },
    async (request, reply) => {
      const { reason, compensate } = request.body;
      return run(reply, request.body, { action: 'cancel', ...(reason === undefined ? {} : { reason }), ...(compensate === undefined ? {} : { compensate }) }, request.principal.id);
    },
  );

  app.post<{ Body: Static<typeof BulkSignalBody> }>(
    '/v1/cases/bulk/signal',
    {
      config: { permission: 'cases:operate' },
      schema: { operationId: 'bulkSignalCases', tags, summary: 'Send a signal to every open case a filter matches (dryRun: count them)', body: BulkSignalBody, response: answer },
    },
    async (request, reply) => {
      const payload = request.body.signal.payload ?? null;
      const problems = payloadIssues(payload, 'signal.payload', PAYLOAD_LIMITS.maxInputBytes);
      if (problems.length > 0) throw new InputInvalidError(problems, 'signal');
      return run(reply, request.body, { action: 'signal', name: request.body.signal.name, payload }, request.principal.id);
    },
  );

  app.get<{ Params: Static<typeof OperationParams> }>(
    '/v1/bulk/:id',
    {
      config: { permission: 'cases:read' },
      schema: {
        operationId: 'getBulkOperation',
        tags,
        summary: 'A bulk operation: its progress and counts by outcome',
        params: OperationParams,
        response: { 200: BulkOperationSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => presentOperation(await bulk.get(request.params.id)),
  );

  app.get<{ Params: Static<typeof OperationParams>; Querystring: Static<typeof ResultsQuery> }>(
    '/v1/bulk/:id/results',
    {
      config: { permission: 'cases:read' },
      schema: {
        operationId: 'listBulkResults',
        tags,
        summary: 'Per-case results of a bulk operation, in the order the cases were acted on (up to 200 an answer)',
        params: OperationParams,
        querystring: ResultsQuery,
        response: { 200: BulkResultsSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const { cursor, outcome } = request.query;
      const page = await bulk.results(request.params.id, { from: cursor === undefined ? 0 : Number(cursor), ...(outcome ? { outcome } : {}) });
      return { results: page.results.map(presentResult), nextCursor: page.nextPage === null ? null : String(page.nextPage) };
    },
  );

  app.post<{ Params: Static<typeof OperationParams> }>(
    '/v1/bulk/:id/stop',
    {
      config: { permission: 'cases:operate' },
      schema: {
        operationId: 'stopBulkOperation',
        tags,
        summary: 'Stop a bulk operation before its next page (a finished one is answered as it is)',
        params: OperationParams,
        response: { 200: BulkOperationSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => presentOperation(await bulk.stop(request.params.id)),
  );
}
