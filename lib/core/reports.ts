import { Type, type TSchema } from '@sinclair/typebox';
import { InputInvalidError } from './errors.js';
import type { StepReport } from './state.js';
import { schemaIssues } from './validate.js';

const Time = Type.Integer({ minimum: 0 });
const Attempt = Type.Integer({ minimum: 1 });
const StepId = Type.String({ minLength: 1, maxLength: 64 });
const ErrorInfoSchema = Type.Object({
  code: Type.String({ minLength: 1, maxLength: 100 }),
  message: Type.String({ maxLength: 10_000 }),
  retryable: Type.Optional(Type.Boolean()),
  stepId: Type.Optional(Type.String()),
  attempt: Type.Optional(Type.Integer()),
  details: Type.Optional(Type.Unknown()),
});

const Run = Type.Integer({ minimum: 0 });
const CaseId = Type.String({ minLength: 1, maxLength: 100 });
/** Which unit of a step a worker report is about. */
const address = {
  run: Type.Optional(Run),
  instance: Type.Optional(Type.Integer({ minimum: 0 })),
  iteration: Type.Optional(Type.Integer({ minimum: 1 })),
  compensation: Type.Optional(Type.Boolean()),
};

const event = <T extends Record<string, TSchema>>(type: string, fields: T) => Type.Object({ type: Type.Literal(type), ...fields }, { additionalProperties: false });

/**
 * The shape of reports on the results queue: workers' reports about units, and the messages
 * cases send each other (a child started or finished, cancel a child). Anything else is refused.
 */
const StepReportSchema = Type.Object(
  {
    caseId: CaseId,
    event: Type.Union([
      event('stepStarted', { stepId: StepId, attempt: Attempt, at: Time, worker: Type.Optional(Type.String()), ...address }),
      event('stepRetrying', { stepId: StepId, attempt: Attempt, at: Time, startedAt: Time, error: ErrorInfoSchema, retryAt: Time, ...address }),
      event('stepCompleted', { stepId: StepId, attempt: Attempt, at: Time, startedAt: Time, output: Type.Unknown(), ...address }),
      event('stepFailed', { stepId: StepId, attempt: Attempt, at: Time, startedAt: Type.Optional(Time), error: ErrorInfoSchema, ...address }),
      event('stepDeferred', {
        stepId: StepId,
        attempt: Attempt,
        at: Time,
        breaker: Type.String(),
        until: Time,
        limit: Type.Optional(
          Type.Object(
            {
              kind: Type.Union([Type.Literal('rate'), Type.Literal('concurrency')]),
              group: Type.String({ maxLength: 128 }),
              key: Type.String({ maxLength: 200 }),
              ahead: Type.Optional(Type.Integer({ minimum: 0 })),
            },
            { additionalProperties: false },
          ),
        ),
        ...address,
      }),
      event('caseAdmitted', { at: Time }),
      event('breakerOpened', { stepId: StepId, at: Time, breaker: Type.String(), until: Time }),
      event('breakerClosed', { stepId: StepId, at: Time, breaker: Type.String() }),
      event('childStarted', { stepId: StepId, run: Run, childId: CaseId, at: Time }),
      event('childFinished', {
        stepId: StepId,
        run: Run,
        childId: CaseId,
        status: Type.Union([Type.Literal('completed'), Type.Literal('failed'), Type.Literal('cancelled')]),
        output: Type.Optional(Type.Unknown()),
        error: Type.Optional(ErrorInfoSchema),
        at: Time,
      }),
      event('cancel', { reason: Type.String({ maxLength: 1_000 }), compensate: Type.Optional(Type.Boolean()), at: Time }),
      event('timerFired', { stepId: StepId, run: Run, kind: Type.Union([Type.Literal('sleep'), Type.Literal('signalTimeout')]), at: Time }),
    ]),
  },
  { additionalProperties: false },
);

export function parseStepReport(data: unknown): StepReport {
  const issues = schemaIssues(StepReportSchema, data, 5);
  if (issues.length > 0) throw new InputInvalidError(issues, 'step report');
  return data as StepReport;
}
