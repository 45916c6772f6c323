import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CASE_STATUSES } from '../../lib/core/state.js';
import type { Clock } from '../../lib/ports/clock.js';
import type { FleetMonitor } from '../../lib/ports/fleet.js';
import type { ConcurrencyGate, LimitStats, RateLimiter, RateStats } from '../../lib/ports/limits.js';
import type { CaseStore } from '../../lib/ports/store.js';
import { errorResponses } from '../schemas.js';

/** Stuck cases listed at most; `more` says whether there are others. */
const STUCK_SAMPLE = 20;
/** The busiest concurrency and rate-limit keys listed per group: keys are unbounded, the read is not. */
const TOP_KEYS = 10;

const Time = Type.String({ format: 'date-time' });
const QueueCounts = Type.Object({ waiting: Type.Integer(), active: Type.Integer(), delayed: Type.Integer(), failed: Type.Integer(), completed: Type.Integer(), prioritized: Type.Integer() });
const StatusSchema = Type.Object(
  {
    at: Time,
    queues: Type.Record(Type.String(), QueueCounts, { description: 'Every BullMQ queue under the prefix, by name.' }),
    processes: Type.Array(
      Type.Object({
        id: Type.String({ description: 'host:pid' }),
        role: Type.Union([Type.Literal('api'), Type.Literal('scheduler'), Type.Literal('worker')]),
        host: Type.String(),
        pid: Type.Integer(),
        queues: Type.Array(Type.String()),
        concurrency: Type.Integer(),
        startedAt: Time,
        seenAt: Time,
      }),
    ),
    workers: Type.Integer({ description: 'Live worker processes.' }),
    cases: Type.Object(Object.fromEntries(CASE_STATUSES.map((status) => [status, Type.Integer()])), { description: 'Cases by status.' }),
    stuck: Type.Object({
      afterMs: Type.Integer({ description: 'SCHEDULER_STUCK_AFTER_MS' }),
      count: Type.Integer(),
      cases: Type.Array(Type.Object({ id: Type.String(), workflow: Type.String(), status: Type.String(), updatedAt: Time, since: Time, reason: Type.String() }), {
        description: `The longest stuck, at most ${STUCK_SAMPLE}.`,
      }),
      more: Type.Boolean({ description: 'Whether more cases are stuck than listed.' }),
    }),
    redis: Type.Object({ maxmemoryPolicy: Type.String(), usedMemoryBytes: Type.Integer() }),
    concurrency: Type.Object(
      {
        groups: Type.Array(
          Type.Object({
            group: Type.String(),
            inUse: Type.Integer({ description: 'Slots held: units admitted or running.' }),
            waiting: Type.Integer({ description: 'Units waiting in the lines of its keys.' }),
            topKeys: Type.Array(Type.Object({ key: Type.String(), inUse: Type.Integer(), waiting: Type.Integer(), limit: Type.Integer() }), {
              description: `The busiest keys (in use plus waiting), at most ${TOP_KEYS}.`,
            }),
          }),
        ),
      },
      { description: "Concurrency keys by group (the groups steps name, and workflow:<name> for a workflow's own concurrency key): slots in use, units waiting, the busiest keys." },
    ),
    rateLimits: Type.Object(
      {
        groups: Type.Array(
          Type.Object({
            group: Type.String(),
            keys: Type.Integer({ description: 'Keys with a start reserved in their window.' }),
            deferred: Type.Integer({ description: 'Units deferred by the limit: starts reserved for later (over the 1,000 most recently used keys).' }),
            topKeys: Type.Array(
              Type.Object({
                key: Type.String(),
                max: Type.Integer(),
                perMs: Type.Integer(),
                used: Type.Integer({ description: 'Starts in the last perMs.' }),
                deferred: Type.Integer({ description: 'Starts reserved for later.' }),
              }),
              { description: `The busiest keys (used plus deferred), at most ${TOP_KEYS}.` },
            ),
          }),
        ),
      },
      { description: 'Rate-limit keys by group (the groups steps name): the keys in use, the units they defer, the busiest keys.' },
    ),
  },
  { title: 'FleetStatus' },
);

/**
 * GET /v1/status: the fleet at a glance for operators: every queue's job counts, the live
 * processes with their queues and concurrency, cases by status, the open cases the
 * scheduler's reconciler marked stuck, longest-stuck first, with the reason it saw, and the
 * concurrency key and rate-limit groups with their busiest keys (a bounded read: 10 keys a group).
 */
export function statusRoutes(
  app: FastifyInstance,
  deps: { monitor: FleetMonitor; store: CaseStore; limits: Pick<ConcurrencyGate, 'stats'> & Pick<RateLimiter, 'rateStats'>; clock: Clock; stuckAfterMs: number },
): void {
  app.get(
    '/v1/status',
    {
      config: { permission: 'fleet:read' },
      schema: {
        tags: ['operations'],
        operationId: 'getStatus',
        description:
          "For operators: every BullMQ queue under the prefix with its job counts, the live processes (API, schedulers, workers) with their queues and concurrency, cases by status, the open cases the reconciler marked stuck (longest stuck first, with the reason it saw), Redis's eviction policy and memory use, each concurrency key group's slots in use and units waiting with its busiest keys, and each rate-limit group's keys in use and units deferred with its busiest keys.",
        summary: 'Queues, live processes, cases by status, stuck cases, concurrency and rate-limit keys',
        response: { 200: StatusSchema, ...errorResponses(401, 403, 429) },
      },
    },
    async () => {
      const now = deps.clock.now();
      // Redis away or too slow fails the whole answer (503 with Retry-After), as for the queues.
      const [names, members, cases, stuck, redis, limits, rates] = await Promise.all([
        deps.monitor.queueNames(),
        deps.monitor.members(now),
        deps.store.countByStatus(),
        deps.store.findStuckCases(STUCK_SAMPLE),
        deps.monitor.redisHealth(),
        deps.limits.stats(TOP_KEYS),
        deps.limits.rateStats(TOP_KEYS, now),
      ]);
      const iso = (ms: number) => new Date(ms).toISOString();
      return {
        at: iso(now),
        queues: await deps.monitor.queueCounts(names),
        processes: members.map((member) => ({ ...member, startedAt: iso(member.startedAt), seenAt: iso(member.seenAt) })),
        workers: members.filter((member) => member.role === 'worker').length,
        cases: { pending: 0, running: 0, waiting: 0, completed: 0, failed: 0, cancelled: 0, ...cases },
        stuck: {
          afterMs: deps.stuckAfterMs,
          count: stuck.count,
          cases: stuck.cases.map((record) => ({
            id: record.id,
            workflow: record.workflow,
            status: record.status,
            updatedAt: iso(record.updatedAt),
            since: iso(record.stuck?.since ?? record.updatedAt),
            reason: record.stuck?.reason ?? '',
          })),
          more: stuck.count > stuck.cases.length,
        },
        redis,
        concurrency: concurrencyGroups(limits),
        rateLimits: rateGroups(rates),
      };
    },
  );
}

/** The gate's stats with each group's busiest keys under it. */
function concurrencyGroups(stats: LimitStats) {
  return {
    groups: stats.groups.map(({ group, inUse, waiting }) => ({
      group,
      inUse,
      waiting,
      topKeys: stats.topKeys.filter((key) => key.group === group).map(({ key, inUse: held, waiting: queued, limit }) => ({ key, inUse: held, waiting: queued, limit })),
    })),
  };
}

/** The rate limiter's stats with each group's busiest keys under it. */
function rateGroups(stats: RateStats) {
  return {
    groups: stats.groups.map(({ group, keys, deferred }) => ({
      group,
      keys,
      deferred,
      topKeys: stats.topKeys.filter((key) => key.group === group).map(({ key, max, perMs, used, deferred: later }) => ({ key, max, perMs, used, deferred: later })),
    })),
  };
}
