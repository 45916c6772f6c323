import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { assertCaseInput } from '../../lib/core/input-schema.js';
import { parseScheduleRequest, ScheduleRequestSchema } from '../../lib/core/schedules.js';
import type { WorkflowRegistry } from '../../lib/engine/workflows.js';
import type { ScheduleInfo, Schedules } from '../../lib/ports/schedules.js';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { sendError } from '../errors.js';
import { errorResponses } from '../schemas.js';

const ScheduleParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,99}$' }) });
const tags = ['schedules'];

const ScheduleView = Type.Object(
  {
    id: Type.String(),
    workflow: Type.String(),
    version: Type.Optional(Type.Integer({ description: 'The definition version every run starts; the latest when absent.' })),
    input: Type.Record(Type.String(), Type.Unknown(), { description: 'The input of every case it starts.' }),
    businessKeys: Type.Optional(Type.Record(Type.String(), Type.String())),
    cron: Type.Optional(Type.String()),
    everyMs: Type.Optional(Type.Integer({ description: 'The interval, in milliseconds.' })),
    timezone: Type.Optional(Type.String()),
    next: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the next case starts, if known.' }),
    runs: Type.Integer({ description: 'Cases started so far.' }),
  },
  { title: 'Schedule' },
);
const ScheduleList = Type.Object({ schedules: Type.Array(ScheduleView) }, { title: 'ScheduleList' });

function present(schedule: ScheduleInfo) {
  return {
    id: schedule.id,
    workflow: schedule.workflow,
    ...(schedule.version === undefined ? {} : { version: schedule.version }),
    input: schedule.input,
    ...(schedule.businessKeys === undefined ? {} : { businessKeys: schedule.businessKeys }),
    ...(schedule.cron === undefined ? {} : { cron: schedule.cron }),
    ...(schedule.everyMs === undefined ? {} : { everyMs: schedule.everyMs }),
    ...(schedule.timezone === undefined ? {} : { timezone: schedule.timezone }),
    next: schedule.next === undefined ? null : new Date(schedule.next).toISOString(),
    runs: schedule.runs ?? 0,
  };
}

/** Schedules: start a workflow on a cron expression or an interval (BullMQ job schedulers). */
export function scheduleRoutes(app: FastifyInstance, deps: { schedules: Schedules; workflows: WorkflowRegistry }): void {
  app.post<{ Body: Static<typeof ScheduleRequestSchema> }>(
    '/v1/schedules',
    {
      config: { permission: 'workflows:write' },
      schema: {
        tags,
        operationId: 'createSchedule',
        description:
          'Starts cases of a workflow on a cron expression (in a time zone, UTC by default) or at an interval (`every`). A schedule with the same id is replaced. 404 when the workflow, or the version named, does not exist.',
        summary: 'Create or replace a schedule',
        body: ScheduleRequestSchema,
        response: { 201: ScheduleView, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const schedule = parseScheduleRequest(request.body);
      // Refuse a schedule of a workflow (version) that does not exist rather than fail every run.
      // …and one whose fixed input the workflow's input schema refuses.
      const workflow = await deps.workflows.compiled(schedule.workflow, schedule.version);
      assertCaseInput(workflow, schedule.input);
      await deps.schedules.upsert(schedule);
      const stored = (await deps.schedules.list()).find((item) => item.id === schedule.id);
      return reply.status(201).send(present(stored ?? schedule));
    },
  );

  app.get(
    '/v1/schedules',
    {
      config: { permission: 'fleet:read' },
      schema: {
        tags,
        operationId: 'listSchedules',
        description: 'Every schedule with when it next starts a case and how many it has started.',
        summary: 'Every schedule with its next run',
        response: { 200: ScheduleList, ...errorResponses(401, 403, 429) },
      },
    },
    async () => ({
      schedules: (await deps.schedules.list()).map(present),
    }),
  );

  app.delete<{ Params: Static<typeof ScheduleParams> }>(
    '/v1/schedules/:id',
    {
      config: { permission: 'workflows:write' },
      schema: {
        tags,
        operationId: 'deleteSchedule',
        description: 'Cases it has started go on.',
        summary: 'Delete a schedule',
        params: ScheduleParams,
        response: { 204: Type.Null({ description: 'Deleted; no body.' }), ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      if (!(await deps.schedules.remove(request.params.id))) return sendError(reply, ErrorCode.scheduleNotFound, `no schedule ${request.params.id}`);
      return reply.status(204).send();
    },
  );
}
