import { Type } from '@sinclair/typebox';
import { CaseViewSchema, ErrorInfoSchema } from '../lib/core/case-view.js';
import { CASE_STATUSES } from '../lib/core/state.js';

// The case as shown is defined once, with its type, for the API, its presenter and the client.
export { CaseViewSchema, ErrorInfoSchema };

/**
 * Response schemas of the API: they document the answers in the OpenAPI description (and let
 * Fastify serialize them fast). Payloads (inputs, outputs, error details) are free JSON.
 */

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);
const Time = Nullable(Type.String({ format: 'date-time' }));
const AnyJson = Type.Unknown({ description: 'Any JSON value.' });

export const ErrorResponseSchema = Type.Object(
  { error: Type.Object({ code: Type.String(), message: Type.String(), details: Type.Optional(AnyJson) }) },
  { $id: 'ErrorResponse', description: 'Every error answer: a stable code and a message for people.' },
);

const CaseStatus = Type.Union(CASE_STATUSES.map((status) => Type.Literal(status)));

export const StartedCaseSchema = Type.Object({ id: Type.String(), status: CaseStatus, workflow: Type.String(), version: Type.Integer() }, { $id: 'StartedCase' });

export const DebouncedStartSchema = Type.Object(
  {
    id: Type.String({ description: 'The id the case will have: `GET /v1/cases/:id` answers 404 until the burst closes, then the case.' }),
    status: Type.Literal('debounced'),
    workflow: Type.String(),
    version: Type.Integer({ description: 'The version the start was checked against; the case runs the version of the last start of the burst.' }),
    debounce: Type.Object({
      key: Type.String({ description: "The debounce key the start's input rendered." }),
      outcome: Type.Union([Type.Literal('opened'), Type.Literal('joined'), Type.Literal('replayed')], {
        description: 'opened: this start began the burst; joined: it joined an open one (its input replaces the earlier ones); replayed: its idempotency key had joined this burst before (nothing changed).',
      }),
      startsAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
        description: 'When the burst closes and its case starts, as things stand: a later start in the burst puts it off, up to maxWait after the first. Null for a replay of a burst already closed.',
      }),
      starts: Type.Union([Type.Integer(), Type.Null()], { description: 'Starts in the burst so far, this one included (null for a replay of a closed burst).' }),
    }),
  },
  { $id: 'DebouncedStart', description: 'A start of a workflow with `debounce:`: it joined a burst, whose one case starts when the burst closes, with the last start of the burst.' },
);

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
        type: Type.String({
          description: 'case.created, step.scheduled, step.started, step.retried, step.deferred, step.completed, step.failed, breaker.opened, breaker.closed, case.completed, case.failed, …',
        }),
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
