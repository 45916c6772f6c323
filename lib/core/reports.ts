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

const event = <T extends Record<string, TSchema>>(type: string, fields: T) =>
  Type.Object({ type: Type.Literal(type), ...fields }, { additionalProperties: false });

/** The shape of worker reports on the results queue; anything else there is refused. */
export const StepReportSchema = Type.Object(
  {
    caseId: Type.String({ minLength: 1, maxLength: 100 }),
    event: Type.Union([
      event('stepStarted', { stepId: StepId, attempt: Attempt, at: Time, worker: Type.Optional(Type.String()) }),
      event('stepRetrying', { stepId: StepId, attempt: Attempt, at: Time, startedAt: Time, error: ErrorInfoSchema, retryAt: Time }),
      event('stepCompleted', { stepId: StepId, attempt: Attempt, at: Time, startedAt: Time, output: Type.Unknown() }),
      event('stepFailed', { stepId: StepId, attempt: Attempt, at: Time, startedAt: Type.Optional(Time), error: ErrorInfoSchema }),
      event('stepDeferred', { stepId: StepId, attempt: Attempt, at: Time, breaker: Type.String(), until: Time }),
      event('breakerOpened', { stepId: StepId, at: Time, breaker: Type.String(), until: Time }),
      event('breakerClosed', { stepId: StepId, at: Time, breaker: Type.String() }),
    ]),
  },
  { additionalProperties: false },
);

export function parseStepReport(data: unknown): StepReport {
  const issues = schemaIssues(StepReportSchema, data, 5);
  if (issues.length > 0) throw new InputInvalidError(issues, 'step report');
  return data as StepReport;
}
