import { Type } from '@sinclair/typebox';
import { BULK_LIMITS, type BulkCaseResult, type BulkOperation } from '../lib/core/bulk.js';
import { SIGNAL_NAME_PATTERN } from '../lib/core/definition.js';
import { CASE_STATUSES } from '../lib/core/state.js';
import { CaseFilterSchema, presentCaseFilter } from './case-filter.js';
import type { BulkPreview } from '../lib/engine/bulk.js';
import { presentSummary } from './presenters.js';

/** Requests and answers of the bulk routes (`/v1/cases/bulk/…`, `/v1/bulk/…`), and how operations look on the wire. */

const CaseStatus = Type.Union(CASE_STATUSES.map((status) => Type.Literal(status)));
const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const Nullable = (schema: ReturnType<typeof Type.String>) => Type.Union([schema, Type.Null()]);

const common = {
  filter: CaseFilterSchema,
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: BULK_LIMITS.maxCases, description: `Most cases to act on, newest first: 1 to ${BULK_LIMITS.maxCases}. Default ${BULK_LIMITS.defaultCases}.` })),
  dryRun: Type.Optional(Type.Boolean({ description: 'Only count the matching cases (200 with a preview); nothing is changed.' })),
};

export const BulkRetryBody = Type.Object(common, { additionalProperties: false });
export const BulkCancelBody = Type.Object(
  {
    ...common,
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 1_000, description: 'Shown in each case error and trace.' })),
    compensate: Type.Optional(Type.Boolean({ description: "Run the compensations of completed steps first. Default: each workflow's onCancel." })),
  },
  { additionalProperties: false },
);
export const BulkSignalBody = Type.Object(
  {
    ...common,
    signal: Type.Object(
      { name: Type.String({ pattern: SIGNAL_NAME_PATTERN, maxLength: 64 }), payload: Type.Optional(Type.Unknown({ description: 'Any JSON; default null.' })) },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const Counts = Type.Object({ ok: Type.Integer(), skipped: Type.Integer(), error: Type.Integer() });
const Summary = Type.Object({
  id: Type.String(),
  workflow: Type.String(),
  version: Type.Integer(),
  status: CaseStatus,
  createdAt: Time,
  updatedAt: Time,
  error: Type.Union([Type.Ref('ErrorInfo'), Type.Null()]),
});

export const BulkPreviewSchema = Type.Object(
  {
    dryRun: Type.Literal(true),
    action: Type.String(),
    matched: Type.Integer({ description: `Matching cases, counted up to ${BULK_LIMITS.maxCases}.` }),
    atLeast: Type.Boolean({ description: `True when the count stopped at ${BULK_LIMITS.maxCases}.` }),
    byStatus: Type.Record(Type.String(), Type.Integer()),
    eligible: Type.Integer({ description: 'Of the matching cases, those whose status allows the action; the others would be skipped.' }),
    wouldAct: Type.Integer({ description: 'Cases a real run would act on: the matching ones up to the limit.' }),
    limit: Type.Integer(),
    sample: Type.Array(Summary, { description: 'The newest matching cases.' }),
  },
  { $id: 'BulkPreview' },
);

export const BulkOperationSchema = Type.Object(
  {
    id: Type.String(),
    action: Type.Union([Type.Literal('retry'), Type.Literal('cancel'), Type.Literal('signal')]),
    filter: CaseFilterSchema,
    limit: Type.Integer(),
    status: Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('stopped')]),
    total: Type.Integer({ description: 'Cases it acts on: those matching at its start, up to the limit (corrected at the end).' }),
    done: Type.Integer({ description: 'Cases acted on so far.' }),
    counts: Counts,
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    finishedAt: Time,
    createdBy: Type.String({ description: 'The key that started it.' }),
    reason: Type.Optional(Type.String()),
    compensate: Type.Optional(Type.Boolean()),
    signal: Type.Optional(Type.Object({ name: Type.String(), payload: Type.Unknown() })),
  },
  { $id: 'BulkOperation' },
);

export const BulkResultsSchema = Type.Object(
  {
    results: Type.Array(
      Type.Object({
        caseId: Type.String(),
        outcome: Type.Union([Type.Literal('ok'), Type.Literal('skipped'), Type.Literal('error')], {
          description: 'ok: applied; skipped: the case did not allow it (its status, or gone); error: it failed, and may be tried again.',
        }),
        status: Type.Union([CaseStatus, Type.Null()]),
        code: Nullable(Type.String({ description: 'Why it was skipped or failed: the code the single-case route answers with.' })),
        message: Nullable(Type.String()),
      }),
    ),
    nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next results; null when no more are stored (yet).' })),
  },
  { $id: 'BulkResults' },
);

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export function presentPreview(action: string, limit: number, preview: BulkPreview) {
  return { dryRun: true as const, action, ...preview, limit, sample: preview.sample.map(presentSummary) };
}

export function presentOperation(operation: BulkOperation) {
  const { params } = operation;
  return {
    id: operation.id,
    action: params.action,
    filter: presentCaseFilter(operation.filter),
    limit: operation.limit,
    status: operation.status,
    total: operation.total,
    done: operation.done,
    counts: operation.counts,
    createdAt: new Date(operation.createdAt).toISOString(),
    updatedAt: new Date(operation.updatedAt).toISOString(),
    finishedAt: iso(operation.finishedAt),
    createdBy: operation.createdBy,
    ...(params.action === 'cancel' && params.reason !== undefined ? { reason: params.reason } : {}),
    ...(params.action === 'cancel' && params.compensate !== undefined ? { compensate: params.compensate } : {}),
    ...(params.action === 'signal' ? { signal: { name: params.name, payload: params.payload } } : {}),
  };
}

export function presentResult(result: BulkCaseResult) {
  return { caseId: result.caseId, outcome: result.outcome, status: result.status ?? null, code: result.code ?? null, message: result.message ?? null };
}
