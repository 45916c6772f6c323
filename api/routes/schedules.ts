import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { assertCaseInput } from '../../lib/core/input-schema.js';
import { parseScheduleRequest, ScheduleRequestSchema } from '../../lib/core/schedules.js';
import type { WorkflowRegistry } from '../../lib/engine/workflows.js';
import type { ScheduleInfo, Schedules } from '../../lib/ports/schedules.js';
import { errorBody } from '../errors.js';
import { errorResponses } from '../schemas.js';

const ScheduleParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_.-]{0,99}$' }) });
const tags = ['schedules'];

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
      schema: { tags, summary: 'Create or replace a schedule', body: ScheduleRequestSchema, response: errorResponses(400, 401, 403, 404, 429) },
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

  app.get('/v1/schedules', { config: { permission: 'fleet:read' }, schema: { tags, summary: 'Every schedule with its next run' } }, async () => ({
    schedules: (await deps.schedules.list()).map(present),
  }));

  app.delete<{ Params: Static<typeof ScheduleParams> }>(
    '/v1/schedules/:id',
    { config: { permission: 'workflows:write' }, schema: { tags, summary: 'Delete a schedule', params: ScheduleParams } },
    async (request, reply) => {
      if (!(await deps.schedules.remove(request.params.id))) return reply.status(404).send(errorBody('SCHEDULE_NOT_FOUND', `no schedule ${request.params.id}`));
      return reply.status(204).send();
    },
  );
}
