import { Type } from '@sinclair/typebox';
import { CASE_STATUSES, STEP_STATUSES } from '../lib/core/state.js';

/**
 * Response schemas of the API: they document the answers in the OpenAPI description (and let
 * Fastify serialize them fast). Payloads (inputs, outputs, error details) are free JSON.
 */

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);
const Time = Nullable(Type.String({ format: 'date-time' }));
const AnyJson = Type.Unknown({ description: 'Any JSON value.' });

export const ErrorInfoSchema = Type.Object(
  {
    code: Type.String({ description: 'Stable code, e.g. STEP_FAILED, STEP_TIMEOUT, DEADLINE_EXCEEDED, or a handler code.' }),
    message: Type.String(),
    retryable: Type.Optional(Type.Boolean()),
    stepId: Type.Optional(Type.String()),
    attempt: Type.Optional(Type.Integer()),
    details: Type.Optional(AnyJson),
  },
  { $id: 'ErrorInfo' },
);

export const ErrorResponseSchema = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(AnyJson) }) },
  { $id: 'ErrorResponse', description: 'Every error answer: a stable code and a message for people.' },
);

const StepView = Type.Object({
  status: Type.Union(STEP_STATUSES.map((status) => Type.Literal(status))),
  attempts: Type.Integer(),
  startedAt: Time,
  finishedAt: Time,
  output: AnyJson,
  error: Type.Union([Type.Ref(ErrorInfoSchema), Type.Null()]),
  scheduledAt: Time,
  nextAttemptAt: Type.Optional(Time),
  deferredBy: Type.Optional(Type.String({ description: 'The breaker that deferred the next attempt.' })),
  waitingFor: Type.Optional(Type.Object({ signals: Type.Array(Type.String()), until: Time })),
  iteration: Type.Optional(Type.Integer({ description: 'repeat: the current or last iteration.' })),
  items: Type.Optional(
    Type.Object(
      { total: Type.Integer(), completed: Type.Integer(), failed: Type.Integer(), running: Type.Integer(), pending: Type.Integer() },
      { description: 'forEach: how its items stand.' },
    ),
  ),
  childCaseId: Type.Optional(Type.String({ description: 'workflow: the child case.' })),
  skipReason: Type.Optional(Type.String()),
  compensation: Type.Optional(
    Type.Object({ status: Type.String(), attempts: Type.Integer(), startedAt: Time, finishedAt: Time, output: AnyJson, error: Type.Union([Type.Ref(ErrorInfoSchema), Type.Null()]) }),
  ),
  run: Type.Optional(Type.Integer({ description: 'How often the step was run again by retrying the case.' })),
});

const CaseStatus = Type.Union(CASE_STATUSES.map((status) => Type.Literal(status)));

export const CaseViewSchema = Type.Object(
  {
    id: Type.String(),
    workflow: Type.String(),
    version: Type.Integer(),
    status: CaseStatus,
    input: AnyJson,
    output: AnyJson,
    error: Type.Union([Type.Ref(ErrorInfoSchema), Type.Null()]),
    steps: Type.Record(Type.String(), StepView),
    createdAt: Time,
    updatedAt: Time,
    deadlineAt: Time,
    finishedAt: Time,
    startedBy: Nullable(Type.String()),
    businessKeys: Type.Record(Type.String(), Type.String()),
    waitingFor: Type.Array(Type.Object({ stepId: Type.String(), signals: Type.Array(Type.String()), until: Time }), {
      description: 'Steps waiting for a signal or a timer, and what would move them.',
    }),
    parent: Type.Optional(Type.Object({ caseId: Type.String(), stepId: Type.String() }, { description: 'For a sub-workflow case: the step that started it.' })),
    stuck: Type.Optional(Type.Object({ reason: Type.String(), since: Time }, { description: 'Set when the case made no progress for too long, with what the scheduler believes is the reason.' })),
    idempotencyKey: Type.Optional(Type.String()),
  },
  { $id: 'Case' },
);

export const StartedCaseSchema = Type.Object({ id: Type.String(), status: CaseStatus, workflow: Type.String(), version: Type.Integer() }, { $id: 'StartedCase' });

export const CaseListSchema = Type.Object(
  {
    cases: Type.Array(
      Type.Object({
        id: Type.String(),
        workflow: Type.String(),
        version: Type.Integer(),
        status: CaseStatus,
        createdAt: Time,
        updatedAt: Time,
        finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the case finished; null while it is open.' }),
        error: Type.Union([Type.Ref(ErrorInfoSchema), Type.Null()]),
      }),
    ),
    nextCursor: Nullable(Type.String({ description: 'Pass as `cursor` for the next page; null on the last.' })),
  },
  { $id: 'CaseList' },
);

export const TraceSchema = Type.Object(
  {
    events: Type.Array(
      Type.Object({
        seq: Type.Integer({ description: 'Order of the event within the case, from 1, without gaps.' }),
        type: Type.String({ description: 'case.created, step.scheduled, step.started, step.retried, step.deferred, step.completed, step.failed, breaker.opened, breaker.closed, case.completed, case.failed, …' }),
        stepId: Type.Optional(Type.String()),
        at: Type.String({ format: 'date-time' }),
        data: Type.Record(Type.String(), AnyJson),
      }),
    ),
  },
  { $id: 'Trace' },
);

/** The shared schemas, registered once with Fastify so that routes can refer to them. */
export const SHARED_SCHEMAS = [ErrorInfoSchema, ErrorResponseSchema];

/** Error answers a route may give, for its OpenAPI description. */
export function errorResponses(...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((status) => [status, Type.Ref(ErrorResponseSchema)]));
}
