import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { isTerminalCase, type StepReport } from '../lib/core/state.js';
import { outstandingWork } from '../lib/core/transition.js';
import type { CaseAdvancer } from '../lib/engine/advancer.js';
import type { WorkflowRegistry } from '../lib/engine/workflows.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Clock } from '../lib/ports/clock.js';
import type { TaskQueues } from '../lib/ports/queues.js';
import type { CaseStore } from '../lib/ports/store.js';

const PAGE = 200;

/** Deletes the lock only if it is still ours: compare-and-delete in one Lua call. */
async function releaseLock(redis: Redis, key: string, token: string): Promise<void> {
  if (!('workfleetReleaseLock' in redis)) {
    redis.defineCommand('workfleetReleaseLock', {
      numberOfKeys: 1,
      lua: "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
    });
  }
  await (redis as unknown as { workfleetReleaseLock(key: string, token: string): Promise<number> }).workfleetReleaseLock(key, token);
}

export interface ReconcileReport {
  casesCaughtUp: number;
  casesChecked: number;
  jobsRestored: number;
  jobsReplaced: number;
}

/**
 * Makes good what a crash between two writes can leave behind: a case document behind its
 * committed history, step jobs never enqueued (or lost with Redis data), and jobs that ended
 * without their report reaching the scheduler. Only cases that have not moved for
 * `staleAfterMs` are examined, and one scheduler at a time does it (a Redis lock).
 */
export class Reconciler {
  constructor(
    private readonly deps: {
      store: CaseStore;
      queues: TaskQueues;
      workflows: WorkflowRegistry;
      advancer: CaseAdvancer;
      redis: Redis;
      lockKey: string;
      clock: Clock;
      logger: Logger;
      staleAfterMs: number;
      lockTtlMs: number;
    },
  ) {}

  async run(): Promise<ReconcileReport | undefined> {
    const { redis, lockKey, lockTtlMs } = this.deps;
    const token = randomUUID();
    if ((await redis.set(lockKey, token, 'PX', lockTtlMs, 'NX')) !== 'OK') return undefined;
    try {
      const report = await this.restoreJobs();
      if (report.casesCaughtUp + report.jobsRestored + report.jobsReplaced > 0) this.deps.logger.warn(report, 'reconciler repaired cases');
      return report;
    } finally {
      await releaseLock(redis, lockKey, token);
    }
  }

  /** A child that finished while its notice to the parent was lost: send the notice again. */
  private async deliverFinishedChildren(record: { id: string; steps: Readonly<Record<string, { status: string; childCaseId?: string; run?: number }>> }): Promise<void> {
    const reports: StepReport[] = [];
    for (const [stepId, step] of Object.entries(record.steps)) {
      if (step.status !== 'running' || !step.childCaseId) continue;
      const child = await this.deps.store.getCase(step.childCaseId);
      if (!child || !isTerminalCase(child.status)) continue;
      reports.push({
        caseId: record.id,
        event: {
          type: 'childFinished',
          stepId,
          run: step.run ?? 0,
          childId: child.id,
          status: child.status as 'completed' | 'failed' | 'cancelled',
          at: this.deps.clock.now(),
          ...(child.output === undefined ? {} : { output: child.output }),
          ...(child.error ? { error: child.error } : {}),
        },
      });
    }
    if (reports.length > 0) await this.deps.queues.report(reports);
  }

  private async restoreJobs(): Promise<ReconcileReport> {
    const { store, queues, workflows, clock, staleAfterMs } = this.deps;
    const before = clock.now() - staleAfterMs;
    let casesChecked = 0;
    let casesCaughtUp = 0;
    let jobsRestored = 0;
    let jobsReplaced = 0;
    let afterId: string | undefined;
    for (;;) {
      const page = await store.findStaleCases(before, PAGE, afterId);
      for (const stale of page) {
        casesChecked += 1;
        const record = await store.catchUp(stale.id);
        if (!record) continue;
        if (record.revision !== stale.revision) casesCaughtUp += 1;
        const workflow = await workflows.compiled(record.workflow, record.version);
        const missing = [];
        const ended = [];
        const work = outstandingWork(workflow, record);
        for (const job of work) {
          if (job.type !== 'enqueueStep') continue;
          const state = await queues.stepJobState(job.queue, job.jobId);
          if (state === 'missing') missing.push(job);
          else if (state === 'completed' || state === 'failed') ended.push(job);
        }
        // Timers and child cases are re-issued as they are: both are idempotent by their ids.
        await this.deps.advancer.carryOut(work.filter((command) => command.type === 'scheduleTimer' || command.type === 'startChild'));
        await this.deliverFinishedChildren(record);
        if (missing.length > 0) await queues.enqueueSteps(missing);
        if (ended.length > 0) await queues.replaceSteps(ended);
        jobsRestored += missing.length;
        jobsReplaced += ended.length;
        if (missing.length + ended.length > 0) {
          this.deps.logger.warn(
            { caseId: record.id, restored: missing.map((job) => job.job.stepId), replaced: ended.map((job) => job.job.stepId) },
            'step jobs restored',
          );
        }
      }
      if (page.length < PAGE) break;
      afterId = page.at(-1)?.id;
    }
    return { casesChecked, casesCaughtUp, jobsRestored, jobsReplaced };
  }
}
