import { parseStepReport } from '../lib/core/reports.js';
import type { CaseAdvancer } from '../lib/engine/advancer.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Metrics } from '../lib/obs/metrics.js';
import type { Clock } from '../lib/ports/clock.js';
import type { Processor } from '../lib/ports/queues.js';
import { outcomeOfError } from './outcomes.js';

/** Applies workers' step reports to their cases, each exactly once. */
export function resultsProcessor(deps: { advancer: CaseAdvancer; clock: Clock; logger: Logger; metrics: Metrics }): Processor<unknown> {
  return async (delivery) => {
    try {
      const report = parseStepReport(delivery.data);
      const result = await deps.advancer.apply(report.caseId, report.event);
      if (result === 'duplicate') deps.metrics.transitions.inc({ outcome: 'duplicate' });
      if (result === 'unknown-case') deps.logger.warn({ caseId: report.caseId, event: report.event.type }, 'report for an unknown case dropped');
      return { kind: 'complete' };
    } catch (error) {
      const outcome = outcomeOfError(error, deps.clock.now());
      deps.logger.warn({ jobId: delivery.id, err: error, outcome: outcome.kind }, 'step report not applied');
      return outcome;
    }
  };
}
