import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../lib/ports/clock.js';
import type { FleetMonitor } from '../../lib/ports/fleet.js';
import type { CaseStore } from '../../lib/ports/store.js';

/** Stuck cases listed at most; `more` says whether there are others. */
const STUCK_SAMPLE = 20;

/**
 * GET /v1/status: the fleet at a glance for operators: every queue's job counts, the live
 * processes with their queues and concurrency, cases by status, and the open cases the
 * scheduler's reconciler marked stuck, longest-stuck first, with the reason it saw.
 */
export function statusRoutes(
  app: FastifyInstance,
  deps: { monitor: FleetMonitor; store: CaseStore; clock: Clock; stuckAfterMs: number },
): void {
  app.get('/v1/status', { config: { permission: 'fleet:read' }, schema: { tags: ['operations'], summary: 'Queues, live processes, cases by status, stuck cases' } }, async () => {
    const now = deps.clock.now();
    const [names, members, cases, stuck, redis] = await Promise.all([
      deps.monitor.queueNames(),
      deps.monitor.members(now),
      deps.store.countByStatus(),
      deps.store.findStuckCases(STUCK_SAMPLE),
      deps.monitor.redisHealth(),
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
    };
  });
}
