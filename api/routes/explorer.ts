import { Type, type Static } from '@sinclair/typebox';
import { Job } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import type { BullQueues } from '../../lib/adapters/bullmq/queues.js';
import { can, mayReadCase, PERMISSIONS } from '../../lib/core/auth.js';
import { STEP_ID_PATTERN } from '../../lib/core/definition.js';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { caseNotFoundError } from '../../lib/core/errors.js';
import { unitJobId } from '../../lib/core/machine/jobs.js';
import type { CaseService } from '../../lib/engine/cases.js';
import type { WorkflowRegistry } from '../../lib/engine/workflows.js';
import type { Clock } from '../../lib/ports/clock.js';
import type { FleetMonitor } from '../../lib/ports/fleet.js';
import type { CaseStore } from '../../lib/ports/store.js';
import { BOARD_PATH } from '../bull-board.js';
import { sendError } from '../errors.js';
import { presentItems } from '../presenters.js';
import { errorResponses, ErrorInfoSchema } from '../schemas.js';

/**
 * Read endpoints the case explorer (/ui) needs beyond the public /v1 API: who the key is (so the
 * page hides what it may not do), the age of each queue's oldest waiting job and the breakers
 * deferring work (the fleet page), the job behind a step (its rendered input and logs), and the
 * items of a forEach step (the case view only counts them).
 */

const tags = ['explorer'];

/** Open cases read to find breakers that defer work; the page says when there were more. */
const BREAKER_SCAN_LIMIT = 500;
/** Job log lines returned at most (the newest); Bull Board shows them all. */
const LOG_LINES = 100;

const SessionSchema = Type.Object(
  {
    authEnabled: Type.Boolean({ description: 'False in development mode: every request acts as an administrator.' }),
    principal: Type.Object({ id: Type.String(), name: Type.String(), roles: Type.Array(Type.String()) }),
    permissions: Type.Array(Type.String(), { description: 'What this key may do; the explorer hides the rest.' }),
  },
  { $id: 'ExplorerSession' },
);

const FleetSchema = Type.Object(
  {
    at: Type.String({ format: 'date-time' }),
    queues: Type.Record(
      Type.String(),
      Type.Object({
        oldestWaitingAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the oldest job still waiting entered the queue.' }),
      }),
    ),
    breakers: Type.Array(
      Type.Object({
        breaker: Type.String(),
        deferredSteps: Type.Integer({ description: 'Steps of open cases whose next attempt this breaker deferred.' }),
        until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'The latest time a deferred attempt is due.' }),
        cases: Type.Array(Type.String(), { description: 'Some of the cases concerned.' }),
      }),
    ),
    scannedCases: Type.Integer(),
    scanComplete: Type.Boolean({ description: 'False when there were more open cases than were read.' }),
  },
  { $id: 'ExplorerFleet' },
);

const StepJobSchema = Type.Object(
  {
    queue: Type.String(),
    jobId: Type.String(),
    boardUrl: Type.String({ description: 'The job in Bull Board.' }),
    state: Type.String({ description: 'BullMQ state, or "missing" once the job was removed (finished jobs are kept for a while).' }),
    input: Type.Unknown({ description: 'The rendered input the handler got.' }),
    attemptsMade: Type.Integer(),
    progress: Type.Unknown(),
    failedReason: Type.Union([Type.String(), Type.Null()]),
    enqueuedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    processedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    finishedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    logs: Type.Array(Type.String(), { description: `The newest ${LOG_LINES} lines a handler logged to the job.` }),
    logCount: Type.Integer(),
  },
  { $id: 'ExplorerStepJob' },
);

const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const UNIT_STATUSES = ['pending', 'scheduled', 'running', 'completed', 'failed', 'cancelled'] as const;

const StepItemsSchema = Type.Object(
  {
    total: Type.Integer({ description: 'Items of the step (0 until it has read them).' }),
    matching: Type.Integer({ description: 'Items in the asked status (all of them without one).' }),
    offset: Type.Integer(),
    items: Type.Array(
      Type.Object({
        index: Type.Integer(),
        status: Type.Union(UNIT_STATUSES.map((status) => Type.Literal(status))),
        attempts: Type.Integer(),
        startedAt: Time,
        finishedAt: Time,
        nextAttemptAt: Time,
        error: Type.Union([Type.Ref(ErrorInfoSchema), Type.Null()]),
      }),
    ),
  },
  { $id: 'ExplorerStepItems' },
);

const ItemsQuery = Type.Object(
  {
    offset: Type.Optional(Type.String({ pattern: '^(0|[1-9][0-9]{0,4})$', description: 'Items to skip, in index order. Default 0.' })),
    limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]?|[1-4][0-9]{2}|500)$', description: 'Items per page, 1 to 500. Default 100.' })),
    status: Type.Optional(Type.Union(UNIT_STATUSES.map((status) => Type.Literal(status)))),
  },
  { additionalProperties: false },
);

const StepParams = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 100 }),
  stepId: Type.String({ pattern: STEP_ID_PATTERN, maxLength: 64 }),
});
const UnitQuery = Type.Object(
  {
    instance: Type.Optional(Type.String({ pattern: '^(0|[1-9][0-9]{0,5})$', description: 'forEach: the item index.' })),
    iteration: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,5}$', description: 'repeat: the iteration, from 1.' })),
    compensation: Type.Optional(Type.Literal('true')),
  },
  { additionalProperties: false },
);

const iso = (ms: number | undefined | null): string | null => (ms ? new Date(ms).toISOString() : null);

export function explorerRoutes(
  app: FastifyInstance,
  deps: { authEnabled: boolean; cases: CaseService; workflows: WorkflowRegistry; store: CaseStore; monitor: FleetMonitor; queues: BullQueues; clock: Clock },
): void {
  app.get(
    '/v1/explorer/session',
    {
      // Every role has read-own; a key that authenticates at all learns what it may do.
      config: { permission: 'cases:read-own' },
      schema: {
        tags,
        operationId: 'getExplorerSession',
        description: 'What the case explorer (/ui) shows or hides: whether authentication is on, whose key this is and what it may do.',
        summary: 'The key behind this request: its roles and permissions',
        response: { 200: SessionSchema, ...errorResponses(401, 403, 429) },
      },
    },
    async (request) => ({
      authEnabled: deps.authEnabled,
      principal: { id: request.principal.id, name: request.principal.name, roles: [...request.principal.roles] },
      permissions: PERMISSIONS.filter((permission) => can(request.principal.roles, permission)),
    }),
  );

  app.get(
    '/v1/explorer/fleet',
    {
      config: { permission: 'fleet:read' },
      schema: {
        tags,
        operationId: 'getExplorerFleet',
        description: "For the explorer's fleet page: when each queue's oldest waiting job was enqueued, and which breakers defer steps of open cases (from up to 500 open cases).",
        summary: "Each queue's oldest waiting job, and the breakers deferring steps of open cases",
        response: { 200: FleetSchema, ...errorResponses(401, 403, 429) },
      },
    },
    async () => {
      const now = deps.clock.now();
      const names = await deps.monitor.queueNames();
      const queues: Record<string, { oldestWaitingAt: string | null }> = {};
      await Promise.all(
        names.map(async (name) => {
          // Ascending: index 0 is the job that has waited longest.
          const [oldest] = await deps.queues.queue(name).getJobs(['waiting'], 0, 0, true);
          queues[name] = { oldestWaitingAt: iso(oldest?.timestamp) };
        }),
      );
      // Breaker state lives in each worker process; what the fleet shows of it is the steps it
      // defers, recorded on the open cases (every open case, up to the scan limit).
      const open = await deps.store.findStaleCases(now + 1, BREAKER_SCAN_LIMIT + 1);
      const breakers = new Map<string, { deferredSteps: number; until: number; cases: Set<string> }>();
      for (const record of open.slice(0, BREAKER_SCAN_LIMIT)) {
        for (const step of Object.values(record.steps)) {
          const units = [step, ...Object.values(step.instances ?? {}), ...(step.compensation ? [step.compensation] : [])];
          for (const unit of units) {
            if (!unit.deferredBy) continue;
            const entry = breakers.get(unit.deferredBy) ?? { deferredSteps: 0, until: 0, cases: new Set<string>() };
            entry.deferredSteps += 1;
            entry.until = Math.max(entry.until, unit.nextAttemptAt ?? 0);
            if (entry.cases.size < 10) entry.cases.add(record.id);
            breakers.set(unit.deferredBy, entry);
          }
        }
      }
      return {
        at: new Date(now).toISOString(),
        queues,
        breakers: [...breakers].map(([breaker, entry]) => ({ breaker, deferredSteps: entry.deferredSteps, until: iso(entry.until), cases: [...entry.cases] })),
        scannedCases: Math.min(open.length, BREAKER_SCAN_LIMIT),
        scanComplete: open.length <= BREAKER_SCAN_LIMIT,
      };
    },
  );

  app.get<{ Params: Static<typeof StepParams>; Querystring: Static<typeof UnitQuery> }>(
    '/v1/explorer/cases/:id/steps/:stepId/job',
    {
      config: { permission: 'cases:read-own' },
      schema: {
        tags,
        operationId: 'getStepJob',
        description: "For the explorer's step panel; `state` is missing when the queue no longer keeps the job.",
        summary: 'The BullMQ job behind a step (or one item, iteration or compensation of it): rendered input, state, logs',
        params: StepParams,
        querystring: UnitQuery,
        response: { 200: StepJobSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const { id, stepId } = request.params;
      const record = await deps.cases.get(id);
      if (!mayReadCase(request.principal, record.startedBy)) throw caseNotFoundError(id);
      const workflow = await deps.workflows.compiled(record.workflow, record.version);
      const step = workflow.steps.get(stepId);
      const state = record.steps[stepId];
      if (!step || !state) return sendError(reply, ErrorCode.stepNotFound, `case ${id} has no step "${stepId}"`);
      const compensation = request.query.compensation === 'true';
      const address = {
        run: state.run ?? 0,
        ...(request.query.instance === undefined ? {} : { instance: Number(request.query.instance) }),
        ...(request.query.iteration === undefined ? {} : { iteration: Number(request.query.iteration) }),
        ...(compensation ? { compensation: true } : {}),
      };
      const queue = compensation && step.compensate ? step.compensate.queue : step.queue;
      const jobId = unitJobId(id, stepId, address);
      const bullQueue = deps.queues.queue(queue);
      const job = await Job.fromId<{ in?: unknown; input?: unknown }>(bullQueue, jobId);
      const logs = job ? await bullQueue.getJobLogs(jobId, -LOG_LINES, -1, true) : { logs: [], count: 0 };
      return {
        queue,
        jobId,
        boardUrl: `${BOARD_PATH}/queue/${encodeURIComponent(queue)}/${encodeURIComponent(jobId)}`,
        state: job ? await job.getState() : 'missing',
        // A step payload's `in` (lib/core/step-payload.ts), or a whole job's `input` enqueued before payloads were cut down.
        input: job?.data.in ?? job?.data.input ?? null,
        attemptsMade: job?.attemptsMade ?? 0,
        progress: job?.progress ?? null,
        failedReason: job?.failedReason || null,
        enqueuedAt: iso(job?.timestamp),
        processedAt: iso(job?.processedOn),
        finishedAt: iso(job?.finishedOn),
        logs: logs.logs,
        logCount: logs.count,
      };
    },
  );

  app.get<{ Params: Static<typeof StepParams>; Querystring: Static<typeof ItemsQuery> }>(
    '/v1/explorer/cases/:id/steps/:stepId/items',
    {
      config: { permission: 'cases:read-own' },
      schema: {
        tags,
        operationId: 'listStepItems',
        summary: 'A page of the items of a forEach step: state, attempts, times and error of each',
        params: StepParams,
        querystring: ItemsQuery,
        response: { 200: StepItemsSchema, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      const { id, stepId } = request.params;
      const record = await deps.cases.get(id);
      if (!mayReadCase(request.principal, record.startedBy)) throw caseNotFoundError(id);
      const workflow = await deps.workflows.compiled(record.workflow, record.version);
      const state = record.steps[stepId];
      if (!workflow.steps.get(stepId)?.forEach || !state) return sendError(reply, ErrorCode.stepNotFound, `case ${id} has no forEach step "${stepId}"`);
      const { offset, limit, status } = request.query;
      return presentItems(state, { offset: Number(offset ?? 0), limit: Number(limit ?? 100), ...(status === undefined ? {} : { status }) });
    },
  );
}
