import type { StepReport } from '../core/state.js';
import type { Logger } from '../obs/logger.js';
import type { TaskQueues } from '../ports/queues.js';
import type { ApplyResult, CaseAdvancer } from './advancer.js';

/**
 * Where a worker sends its step reports when it advances cases itself: each report is applied
 * here, by the worker that finished the step (the pure transition, one history append, the next
 * steps enqueued), instead of crossing the results queue to a scheduler. That takes a queue hop,
 * a BullMQ job and a scheduler's turn off the path from one step to the next.
 *
 * Exactly once still holds: the history entry's unique `<case>:<revision>` decides every commit,
 * whoever applies it. Reports that cannot be applied here (the store is unreachable, a case
 * too contended) go to the results queue after all, where a scheduler applies them with its
 * retries; only if that fails too does the call fail, and the job runs again (at least once,
 * as before). Reports of one call for one case go in together as one transition (the
 * advancer's per-case mailbox), so a failure and the breaker event before it are one commit.
 */
export class AdvancingReports implements Pick<TaskQueues, 'report'> {
  constructor(
    private readonly deps: {
      advancer: Pick<CaseAdvancer, 'apply'>;
      queues: Pick<TaskQueues, 'report'>;
      logger: Logger;
      /** Called with what became of each report applied here (metrics). */
      onApplied?: (result: ApplyResult) => void;
    },
  ) {}

  async report(reports: readonly StepReport[]): Promise<void> {
    const outcomes = await Promise.allSettled(reports.map((report) => this.deps.advancer.apply(report.caseId, report.event)));
    const forward: StepReport[] = [];
    outcomes.forEach((outcome, index) => {
      const report = reports[index];
      if (!report) return;
      if (outcome.status === 'rejected') {
        forward.push(report);
        this.deps.logger.warn({ err: outcome.reason, caseId: report.caseId, event: report.event.type }, 'report not applied here; sent to the scheduler');
        return;
      }
      if (outcome.value === 'unknown-case') this.deps.logger.warn({ caseId: report.caseId, event: report.event.type }, 'report for an unknown case dropped');
      this.deps.onApplied?.(outcome.value);
    });
    if (forward.length > 0) await this.deps.queues.report(forward);
  }
}
