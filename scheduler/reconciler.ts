import type { RedisClient } from '../lib/adapters/redis/connection.js';
import { randomUUID } from 'node:crypto';
import { CASE_GROUP_PREFIX } from '../lib/core/limits.js';
import { childFinishedEvent } from '../lib/core/machine/jobs.js';
import { repairOf, workerLostEvent } from '../lib/core/repairs.js';
import { isTerminalCase, type Command, type StepReport } from '../lib/core/state.js';
import { stuckReason, type ObservedJob } from '../lib/core/stuck.js';
import { outstandingWork } from '../lib/core/transition.js';
import type { CaseAdvancer } from '../lib/engine/advancer.js';
import type { CaseRepository } from '../lib/engine/case-repository.js';
import { caseAdmittedReport } from '../lib/engine/case-slots.js';
import type { WorkflowRegistry } from '../lib/engine/workflows.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Clock } from '../lib/ports/clock.js';
import type { FleetMonitor } from '../lib/ports/fleet.js';
import type { TaskQueues } from '../lib/ports/queues.js';
import type { ConcurrencyGate } from '../lib/ports/limits.js';
import type { CaseStore } from '../lib/ports/store.js';

const PAGE = 200;

/** Deletes the lock only if it is still ours: compare-and-delete in one Lua call. */
async function releaseLock(redis: RedisClient, key: string, token: string): Promise<void> {
  if (!('workfleetReleaseLock' in redis)) {
    redis.defineCommand('workfleetReleaseLock', {
      numberOfKeys: 1,
      lua: "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
    });
  }
  await (redis as unknown as { workfleetReleaseLock(key: string, token: string): Promise<number> }).workfleetReleaseLock(key, token);
}

/** Holders of one workflow key group whose case the reconciler checks per pass, at most. */
const CASE_SLOTS_PER_PASS = 200;

export interface ReconcileReport {
  /** Cases idle past the stale threshold whose document was behind their history. */
  casesCaughtUp: number;
  /** Cases still moving whose document only lagged (it is not written between two steps): projection written, nothing repaired. */
  projectionsWritten: number;
  casesChecked: number;
  jobsRestored: number;
  jobsReplaced: number;
  /** Jobs that lost their worker more often than allowed: their steps failed with WORKER_LOST. */
  workersLost: number;
  /** Slots of workflow concurrency keys still held by cases that had ended (the release was lost in a crash): given up. */
  caseSlotsFreed: number;
  /** Cases newly marked stuck (or whose reason changed). */
  casesMarkedStuck: number;
  /** Reports a finished job kept and the case never got: sent again rather than running the task again. */
  reportsResent: number;
}

/**
 * Makes good what a crash between two writes can leave behind, and writes the projections that
 * lag: a case document behind its committed history (it is not written between two steps, so
 * a long-running case's lags until the reconciler or a status change writes it), step jobs never enqueued (or lost with Redis data), and jobs that ended
 * without their report reaching the scheduler. A job the queue failed because its workers kept
 * dying under it (a crash loop) fails its step with WORKER_LOST instead of running again. Cases
 * that still make no progress past `stuckAfterMs` are marked stuck with the reason seen. Only
 * cases that have not moved for `staleAfterMs` are examined, one scheduler at a time (a lock).
 */
export class Reconciler {
  /** Where the next pass over each workflow key group's holders starts (freeEndedCaseSlots). */
  private readonly caseSlotOffsets = new Map<string, number>();

  constructor(
    private readonly deps: {
      store: CaseStore;
      queues: TaskQueues;
      workflows: WorkflowRegistry;
      repository: CaseRepository;
      advancer: CaseAdvancer;
      monitor: Pick<FleetMonitor, 'members'>;
      /** Where keyed units wait for a slot (their jobs are not lost meanwhile). */
      gate?: Pick<ConcurrencyGate, 'position' | 'stats' | 'heldIn' | 'release'>;
      redis: RedisClient;
      lockKey: string;
      clock: Clock;
      logger: Logger;
      staleAfterMs: number;
      stuckAfterMs: number;
      lockTtlMs: number;
    },
  ) {}

  async run(): Promise<ReconcileReport | undefined> {
    const { redis, lockKey, lockTtlMs } = this.deps;
    const token = randomUUID();
    if ((await redis.set(lockKey, token, 'PX', lockTtlMs, 'NX')) !== 'OK') return undefined;
    try {
      const report = await this.restoreJobs();
      report.caseSlotsFreed = await this.freeEndedCaseSlots();
      if (report.caseSlotsFreed + report.casesCaughtUp + report.jobsRestored + report.jobsReplaced + report.workersLost + report.casesMarkedStuck + report.reportsResent > 0) {
        this.deps.logger.warn(report, 'reconciler repaired cases');
      } else if (report.projectionsWritten > 0) {
        this.deps.logger.debug(report, 'reconciler wrote the projections of cases still moving');
      }
      return report;
    } finally {
      await releaseLock(redis, lockKey, token);
    }
  }

  /**
   * A case gives its slot of its workflow's key up when it ends; if the process that ended it
   * died before that, the slot would be held until its lease (as long as any case may live)
   * ran out. Each pass looks at the next CASE_SLOTS_PER_PASS holders of each workflow key group
   * (every case's lease is as long, so the order barely moves: a pass goes on where the last one
   * stopped, and starts over after the end) and frees those whose case has ended; the next case
   * in line is admitted.
   */
  private async freeEndedCaseSlots(): Promise<number> {
    const { gate, store, clock, queues } = this.deps;
    if (!gate) return 0;
    const groups = (await gate.stats(1)).groups.filter((group) => group.group.startsWith(CASE_GROUP_PREFIX) && group.inUse > 0);
    let freed = 0;
    for (const { group } of groups) {
      const offset = this.caseSlotOffsets.get(group) ?? 0;
      const holders = await gate.heldIn(group, CASE_SLOTS_PER_PASS, offset);
      const records = await Promise.all(holders.map((caseId) => store.getCase(caseId)));
      const ended = holders.flatMap((caseId, index) => {
        const status = records[index]?.status;
        return status !== undefined && isTerminalCase(status) ? [{ group, jobId: caseId }] : [];
      });
      // The freed leave the order: the next pass starts that many places earlier.
      this.caseSlotOffsets.set(group, holders.length < CASE_SLOTS_PER_PASS ? 0 : offset + holders.length - ended.length);
      if (ended.length === 0) continue;
      const now = clock.now();
      const admitted = await gate.release(ended, now);
      if (admitted.length > 0) await queues.report(admitted.map((admission) => caseAdmittedReport(admission.jobId, now)));
      freed += ended.length;
    }
    return freed;
  }

  /** A child that finished while its notice to the parent was lost: send the notice again. */
  private async deliverFinishedChildren(record: { id: string; steps: Readonly<Record<string, { status: string; childCaseId?: string; run?: number }>> }): Promise<void> {
    const reports: StepReport[] = [];
    for (const [stepId, step] of Object.entries(record.steps)) {
      if (step.status !== 'running' || !step.childCaseId) continue;
      const child = await this.deps.store.getCase(step.childCaseId);
      if (!child || !isTerminalCase(child.status)) continue;
      reports.push({ caseId: record.id, event: childFinishedEvent(child, { stepId, run: step.run ?? 0 }, this.deps.clock.now()) });
    }
    if (reports.length > 0) await this.deps.queues.report(reports);
  }

  private async restoreJobs(): Promise<ReconcileReport> {
    const { store, queues, workflows, clock, staleAfterMs, logger } = this.deps;
    const now = clock.now();
    const servedQueues = new Set((await this.deps.monitor.members(now)).filter((member) => member.role === 'worker').flatMap((member) => member.queues));
    const report: ReconcileReport = { casesChecked: 0, casesCaughtUp: 0, projectionsWritten: 0, jobsRestored: 0, jobsReplaced: 0, workersLost: 0, casesMarkedStuck: 0, reportsResent: 0, caseSlotsFreed: 0 };
    let afterId: string | undefined;
    for (;;) {
      const page = await store.findStaleCases(now - staleAfterMs, PAGE, afterId);
      for (const stale of page) {
        report.casesChecked += 1;
        const record = await this.deps.repository.catchUp(stale.id);
        if (!record) continue;
        // Only its projection was stale (a case's document is not written between two steps): it is moving.
        if (record.updatedAt >= now - staleAfterMs) {
          if (record.revision !== stale.revision) report.projectionsWritten += 1;
          continue;
        }
        if (record.revision !== stale.revision) report.casesCaughtUp += 1;
        const workflow = await workflows.compiled(record.workflow, record.version);
        const work = outstandingWork(workflow, record);
        const observed: ObservedJob[] = [];
        const missing: Array<Command & { type: 'enqueueStep' }> = [];
        const ended: Array<Command & { type: 'enqueueStep' }> = [];
        const lost: Array<{ command: Command & { type: 'enqueueStep' }; attempt: number; stalls: number }> = [];
        const resend: StepReport[] = [];
        for (const command of work) {
          if (command.type !== 'enqueueStep') continue;
          // A keyed unit waiting in its key's line has no job yet, by design: nothing to repair.
          if (command.job.concurrency && (await this.deps.gate?.position({ group: command.job.concurrency.group, jobId: command.jobId }))?.state === 'waiting') continue;
          const info = await queues.inspectStepJob(command.queue, command.jobId);
          observed.push({ queue: command.queue, job: command.job, ...info });
          const repair = repairOf(info, now, staleAfterMs);
          if (repair.kind === 'restore') missing.push(command);
          else if (repair.kind === 'failLost') lost.push({ command, attempt: repair.attempt, stalls: repair.stalls });
          else if (repair.kind === 'resend') resend.push(...repair.reports);
          else if (repair.kind === 'replace') ended.push(command);
        }
        // Timers and child cases are re-issued as they are: both are idempotent by their ids.
        await this.deps.repository.carryOut(work.filter((command) => command.type === 'scheduleTimer' || command.type === 'startChild'));
        await this.deliverFinishedChildren(record);
        if (missing.length > 0) await queues.enqueueSteps(missing);
        if (ended.length > 0) await queues.replaceSteps(ended);
        if (resend.length > 0) await queues.report(resend);
        for (const { command, attempt, stalls } of lost) await this.failLostStep(record.id, command, attempt, stalls);
        report.jobsRestored += missing.length;
        report.jobsReplaced += ended.length;
        report.reportsResent += resend.length;
        report.workersLost += lost.length;
        if (missing.length + ended.length + lost.length + resend.length > 0) {
          logger.warn(
            {
              caseId: record.id,
              restored: missing.map((job) => job.job.stepId),
              replaced: ended.map((job) => job.job.stepId),
              lost: lost.map(({ command }) => command.job.stepId),
              resent: resend.map((sent) => sent.event.type),
            },
            'step jobs restored',
          );
          continue;
        }
        const reason = stuckReason({ state: record, jobs: observed, servedQueues, now, stuckAfterMs: this.deps.stuckAfterMs });
        if (reason !== undefined && reason !== record.stuck?.reason) {
          await this.deps.advancer.apply(record.id, { type: 'stuck', reason, at: now });
          report.casesMarkedStuck += 1;
          logger.warn({ caseId: record.id, workflow: record.workflow, reason }, 'case is stuck');
        }
      }
      if (page.length < PAGE) break;
      afterId = page.at(-1)?.id;
    }
    return report;
  }

  private async failLostStep(caseId: string, command: Command & { type: 'enqueueStep' }, attempt: number, stalls: number): Promise<void> {
    await this.deps.advancer.apply(caseId, workerLostEvent(command.job, attempt, stalls, this.deps.clock.now()));
  }
}
