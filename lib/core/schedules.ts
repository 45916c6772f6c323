import { Type, type Static } from '@sinclair/typebox';
import { CronExpressionParser } from 'cron-parser';
import { DURATION_PATTERN, parseDuration } from './duration.js';
import { InputInvalidError } from './errors.js';
import { StartCaseRequestSchema } from './requests.js';
import { schemaIssues } from './validate.js';

/** Shortest interval a schedule may start cases at. */
const MIN_EVERY_MS = 1_000;

/**
 * A schedule starts a workflow on a cron expression or an interval with a fixed input. It is a
 * BullMQ job scheduler on the intake queue: each run is a `start` job like any producer's, so
 * one next run exists at a time however many schedulers run.
 */
export const ScheduleRequestSchema = Type.Object(
  {
    id: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,99}$', description: 'Names the schedule; creating it again replaces it.' }),
    workflow: StartCaseRequestSchema.properties.workflow,
    version: StartCaseRequestSchema.properties.version,
    input: StartCaseRequestSchema.properties.input,
    businessKeys: StartCaseRequestSchema.properties.businessKeys,
    cron: Type.Optional(Type.String({ minLength: 9, maxLength: 100, description: 'A cron expression, e.g. "0 3 * * *" (with optional seconds field).' })),
    every: Type.Optional(Type.Union([Type.Integer({ minimum: MIN_EVERY_MS }), Type.String({ pattern: DURATION_PATTERN })], { description: 'An interval, e.g. "15m".' })),
    timezone: Type.Optional(Type.String({ maxLength: 64, description: 'IANA time zone of the cron expression. Default UTC.' })),
  },
  { additionalProperties: false },
);

export type ScheduleRequest = Static<typeof ScheduleRequestSchema>;

export interface Schedule {
  id: string;
  workflow: string;
  version?: number;
  input: Record<string, unknown>;
  businessKeys?: Record<string, string>;
  cron?: string;
  everyMs?: number;
  timezone?: string;
}

export function parseScheduleRequest(data: unknown): Schedule {
  const issues = schemaIssues(ScheduleRequestSchema, data);
  if (issues.length > 0) throw new InputInvalidError(issues, 'schedule');
  const request = data as ScheduleRequest;
  if ((request.cron === undefined) === (request.every === undefined)) {
    throw new InputInvalidError([{ path: '', message: 'give exactly one of cron and every' }], 'schedule');
  }
  if (request.timezone !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: request.timezone });
    } catch {
      throw new InputInvalidError([{ path: 'timezone', message: `"${request.timezone}" is not an IANA time zone` }], 'schedule');
    }
  }
  if (request.cron !== undefined) {
    try {
      // Only parsed, to refuse what is not a cron expression; the start date and the seed of `H`
      // fields are fixed so cron-parser reads neither the clock nor Math.random (a pure core).
      CronExpressionParser.parse(request.cron, { currentDate: new Date(0), hashSeed: request.cron, ...(request.timezone === undefined ? {} : { tz: request.timezone }) });
    } catch (error) {
      throw new InputInvalidError([{ path: 'cron', message: `is not a cron expression: ${(error as Error).message}` }], 'schedule');
    }
  }
  const everyMs = request.every === undefined ? undefined : parseDuration(request.every);
  if (everyMs !== undefined && everyMs < MIN_EVERY_MS) throw new InputInvalidError([{ path: 'every', message: `must be at least ${MIN_EVERY_MS} ms` }], 'schedule');
  return {
    id: request.id,
    workflow: request.workflow,
    input: request.input ?? {},
    ...(request.version === undefined ? {} : { version: request.version }),
    ...(request.businessKeys === undefined ? {} : { businessKeys: request.businessKeys }),
    ...(request.cron === undefined ? {} : { cron: request.cron }),
    ...(everyMs === undefined ? {} : { everyMs }),
    ...(request.timezone === undefined ? {} : { timezone: request.timezone }),
  };
}
