import { describe, expect, it } from 'vitest';
import type { CaseEvent, StepReport } from '../../lib/core/state.js';
import { AdvancingReports } from '../../lib/engine/advancing-reports.js';
import type { ApplyResult } from '../../lib/engine/advancer.js';
import { createLogger } from '../../lib/obs/logger.js';
import { memoryEngine } from '../helpers/memory-engine.js';
import { RecordingQueues } from '../helpers/recording-queues.js';
import { orderDefinition, T0 } from './fixtures.js';

/** A worker that advances the cases whose steps it finishes: applied here, or handed to the scheduler. */

const logger = createLogger({ level: 'silent', name: 'advancing-reports-test' });
const completed = (stepId: string, output: unknown, at = T0 + 10): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at, startedAt: at - 5, output });

async function orderCase() {
  const engine = memoryEngine({ now: T0 + 1_000 });
  await engine.workflows.apply(orderDefinition);
  const { record } = await engine.cases.start({ workflow: 'order', input: { sku: 'book', amount: 25 } });
  return { ...engine, id: record.id };
}

describe('AdvancingReports', () => {
  it('applies a completion in place: the case moves on and its next step is enqueued, with nothing sent to the scheduler', async () => {
    const engine = await orderCase();
    const scheduler = new RecordingQueues();
    const results: ApplyResult[] = [];
    const reports = new AdvancingReports({ advancer: engine.advancer, queues: scheduler, logger, onApplied: (result) => results.push(result) });
    await reports.report([
      { caseId: engine.id, event: completed('reserve', { reservationId: 'r1' }) },
      { caseId: engine.id, event: completed('charge', { receipt: 'c1' }) },
    ]);
    expect(scheduler.reports).toEqual([]);
    expect(results).toEqual(['applied', 'applied']);
    expect((await engine.store.getCase(engine.id))?.steps.charge?.status).toBe('completed');
    expect(engine.queues.jobIds()).toContain(`${engine.id}.ship`);
  });

  it('a report applied twice (the job ran again after its worker died) changes the case once', async () => {
    const engine = await orderCase();
    const reports = new AdvancingReports({ advancer: engine.advancer, queues: new RecordingQueues(), logger });
    const report: StepReport = { caseId: engine.id, event: completed('reserve', { reservationId: 'r1' }) };
    await reports.report([report]);
    const once = await engine.store.getCase(engine.id);
    await reports.report([report]);
    expect((await engine.store.getCase(engine.id))?.revision).toBe(once?.revision);
  });

  it('hands what it cannot apply to the scheduler, and fails only when that fails too', async () => {
    const engine = await orderCase();
    const failing = {
      apply: async (caseId: string, event: CaseEvent): Promise<ApplyResult> => {
        if (event.type === 'stepCompleted' && event.stepId === 'charge') throw new Error('store unreachable');
        return engine.advancer.apply(caseId, event);
      },
    };
    const scheduler = new RecordingQueues();
    const reports = new AdvancingReports({ advancer: failing, queues: scheduler, logger });
    const charge: StepReport = { caseId: engine.id, event: completed('charge', { receipt: 'c1' }) };
    await reports.report([{ caseId: engine.id, event: completed('reserve', { reservationId: 'r1' }) }, charge]);
    expect(scheduler.reports).toEqual([charge]);
    expect((await engine.store.getCase(engine.id))?.steps.reserve?.status).toBe('completed');

    const unreachable = { report: async () => Promise.reject(new Error('redis unreachable')) };
    const stuck = new AdvancingReports({ advancer: failing, queues: unreachable, logger });
    await expect(stuck.report([charge])).rejects.toThrow('redis unreachable');
  });

  it('drops a report for a case that does not exist, without sending it on', async () => {
    const engine = await orderCase();
    const scheduler = new RecordingQueues();
    const results: ApplyResult[] = [];
    const reports = new AdvancingReports({ advancer: engine.advancer, queues: scheduler, logger, onApplied: (result) => results.push(result) });
    await reports.report([{ caseId: '01a00000-0000-7000-8000-00000000ffff', event: completed('reserve', {}) }]);
    expect(results).toEqual(['unknown-case']);
    expect(scheduler.reports).toEqual([]);
  });
});
