import { Type, type Static } from '@sinclair/typebox';
import { MAX_LISTED_WAITS, MAX_PLACE_LOOKUPS } from './limit-waits.js';
import { CASE_STATUSES, STEP_STATUSES } from './state.js';

/**
 * A case as the API shows it (GET /v1/cases/:id, and the answer to cancel, signal and retry),
 * defined once: the API's response schema (and so openapi.json), the presenter's return type
 * (api/presenters.ts) and the client's type (workfleet/client) are this schema and its Static
 * type. The explorer's own copy (ui/src/model.ts) is checked against it when tests typecheck
 * (test/contract/ui-case-view.check.ts). Times are ISO 8601, absent values null.
 */

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()]);
const Time = Nullable(Type.String({ format: 'date-time' }));
const AnyJson = Type.Unknown({ description: 'Any JSON value.' });

/** Why a case or step failed. `code` is stable: STEP_FAILED, STEP_TIMEOUT, DEADLINE_EXCEEDED, or a handler's code. */
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
export type ErrorInfo = Static<typeof ErrorInfoSchema>;

// A reference to the shared schema in the API's answers (components/schemas/ErrorInfo), typed as ErrorInfo.
const ErrorOrNull = () => Type.Union([Type.Ref(ErrorInfoSchema), Type.Null()]);

/** One queued unit of a keyed step that waits: for a slot of its concurrency key, or for its rate limit. */
const LimitWaitSchema = Type.Object({
  instance: Type.Optional(Type.Integer({ description: 'forEach: the item.' })),
  kind: Type.Union([Type.Literal('concurrency'), Type.Literal('rate')], { description: 'concurrency: waits for a slot of its key; rate: deferred by its rate limit.' }),
  group: Type.String(),
  key: Type.String({ description: 'The rendered key (a digest, #…, when it is long or not printable).' }),
  ahead: Type.Optional(Type.Integer({ description: "concurrency: units before it in its key's line." })),
  inUse: Type.Optional(Type.Integer({ description: "concurrency: the key's slots in use." })),
  limit: Type.Optional(Type.Integer({ description: "concurrency: the key's slots." })),
  until: Type.Optional(Time),
});

/** Where a keyed step's queued units stand; places in line cost a Redis call each, so a read looks up a bounded number. */
const StepLimitsSchema = Type.Object(
  {
    queued: Type.Integer({ description: 'Units queued and not running: 1 for a task step, the dispatched items of a forEach.' }),
    rateLimited: Type.Integer({ description: 'Of them, deferred by the rate limit (all counted).' }),
    checked: Type.Integer({ description: `Of the others, those whose place in their key's line was looked up: at most ${MAX_PLACE_LOOKUPS} for one read of a case.` }),
    waitingForSlot: Type.Integer({ description: 'Of those looked up, waiting for a slot of their key.' }),
    holdingSlot: Type.Integer({ description: 'Of those looked up, holding a slot: their job waits in its queue for a worker.' }),
    waits: Type.Array(LimitWaitSchema, { description: `The first ${MAX_LISTED_WAITS} units that wait, in item order.` }),
    unavailable: Type.Optional(Type.Boolean({ description: 'Redis did not answer in time: places in line are unknown.' })),
  },
  { description: 'A step with a concurrency key or a rate limit, while units of it are queued: what they wait for.' },
);

export const StepViewSchema = Type.Object({
  status: Type.Union(STEP_STATUSES.map((status) => Type.Literal(status))),
  attempts: Type.Integer(),
  startedAt: Time,
  finishedAt: Time,
  output: AnyJson,
  error: ErrorOrNull(),
  scheduledAt: Time,
  nextAttemptAt: Type.Optional(Time),
  deferredBy: Type.Optional(Type.String({ description: 'The breaker that deferred the next attempt.' })),
  limits: Type.Optional(StepLimitsSchema),
  waitingFor: Type.Optional(Type.Object({ signals: Type.Array(Type.String()), until: Time })),
  iteration: Type.Optional(Type.Integer({ description: 'repeat: the current or last iteration.' })),
  items: Type.Optional(
    Type.Object({ total: Type.Integer(), completed: Type.Integer(), failed: Type.Integer(), running: Type.Integer(), pending: Type.Integer() }, { description: 'forEach: how its items stand.' }),
  ),
  childCaseId: Type.Optional(Type.String({ description: 'workflow: the child case.' })),
  skipReason: Type.Optional(Type.String()),
  compensation: Type.Optional(Type.Object({ status: Type.String(), attempts: Type.Integer(), startedAt: Time, finishedAt: Time, output: AnyJson, error: ErrorOrNull() })),
  run: Type.Optional(Type.Integer({ description: 'How often the step was run again by retrying the case.' })),
});
export type StepView = Static<typeof StepViewSchema>;

const CaseStatus = Type.Union(CASE_STATUSES.map((status) => Type.Literal(status)));

export const CaseViewSchema = Type.Object(
  {
    id: Type.String(),
    workflow: Type.String(),
    version: Type.Integer(),
    status: CaseStatus,
    input: AnyJson,
    output: AnyJson,
    error: ErrorOrNull(),
    steps: Type.Record(Type.String(), StepViewSchema),
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
/** A case as `GET /v1/cases/:id` shows it. */
export type CaseView = Static<typeof CaseViewSchema>;
