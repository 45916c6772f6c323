import { describe, expect, it } from 'vitest';
import { retryRefusal } from '../../lib/core/machine/case-events.js';
import { childFinishedEvent, unitAddressOf, unitJobId } from '../../lib/core/machine/jobs.js';
import { repairOf, workerLostEvent } from '../../lib/core/repairs.js';
import type { StepJob } from '../../lib/core/state.js';
import { kindOf } from '../../lib/core/steps/index.js';
import { transition } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { order, startedOrder, T0 } from './fixtures.js';

// Rules the shell used to keep its own copies of; each is now one pure function of the core.
describe('the core policies the shell shares', () => {
  it('the unit address of a job keeps only what names the unit, and a report about it finds the same job id', () => {
    const job = { caseId: 'c', stepId: 's', run: 2, instance: 3, iteration: undefined, compensation: false, input: { big: 'x' } };
    const address = unitAddressOf(job);
    expect(address).toEqual({ run: 2, instance: 3 });
    expect(unitJobId('c', 's', address)).toBe(unitJobId('c', 's', job));
    expect(unitAddressOf({ run: 0, compensation: true })).toEqual({ compensation: true });
  });

  it('a finished child reads the same to its parent wherever its end is learnt', () => {
    const child = { id: 'child-1', status: 'failed' as const, error: { code: 'STEP_FAILED', message: 'no' } };
    expect(childFinishedEvent(child, { stepId: 'sub', run: 1 }, T0)).toEqual({
      type: 'childFinished',
      stepId: 'sub',
      run: 1,
      childId: 'child-1',
      status: 'failed',
      at: T0,
      error: { code: 'STEP_FAILED', message: 'no' },
    });
    expect(childFinishedEvent({ id: 'c2', status: 'completed', output: { n: 1 } }, { stepId: 'sub', run: 0 }, T0)).not.toHaveProperty('error');
  });

  it('retry is refused for a running case and for a compensated one, and the transition refuses the same', () => {
    const running = startedOrder();
    expect(retryRefusal(running)).toBe('only a failed case can be retried');
    expect(transition(order, running, [{ type: 'retry', at: T0 + 1 }], T0 + 1).events).toEqual([]);
    const compensated = {
      ...running,
      status: 'failed' as const,
      steps: { ...running.steps, reserve: { status: 'compensated' as const, attempts: 1, attemptsDone: 1, compensation: { status: 'completed' as const, attempts: 1, attemptsDone: 1 } } },
    };
    expect(retryRefusal(compensated)).toMatch(/compensated/);
    expect(transition(order, compensated, [{ type: 'retry', at: T0 + 1 }], T0 + 1).events).toEqual([]);
    const failed = { ...running, status: 'failed' as const };
    expect(retryRefusal(failed)).toBeUndefined();
  });

  it('every step of a definition follows the rules of its kind', () => {
    const workflow = compileWorkflow(
      {
        name: 'kinds',
        steps: [
          { id: 'plain', task: 't' },
          { id: 'items', task: 't', forEach: { items: '${input.list}' } },
          { id: 'again', task: 't', repeat: { while: 'false', maxIterations: 2 } },
          { id: 'nap', sleep: { for: '1s' } },
          { id: 'hold', waitFor: { signals: ['go'] } },
          { id: 'sub', workflow: { name: 'other' } },
        ],
      },
      1,
    );
    const kinds = [...workflow.steps.values()].map((step) => kindOf(step));
    expect(new Set(kinds).size).toBe(6);
  });

  it('the reconciler repairs a stale job by what its queue says of it', () => {
    const now = T0 + 600_000;
    const stale = 60_000;
    expect(repairOf({ state: 'missing', stalls: 0, attemptsMade: 0 }, now, stale)).toEqual({ kind: 'restore' });
    expect(repairOf({ state: 'failed', stalls: 2, attemptsMade: 1 }, now, stale)).toEqual({ kind: 'failLost', attempt: 2, stalls: 2 });
    expect(repairOf({ state: 'active', stalls: 1, attemptsMade: 0 }, now, stale)).toEqual({ kind: 'none' });
    // Just finished: its report is most likely still queued behind others.
    expect(repairOf({ state: 'completed', stalls: 0, attemptsMade: 0, finishedAt: now - 1_000 }, now, stale)).toEqual({ kind: 'none' });
    expect(repairOf({ state: 'completed', stalls: 0, attemptsMade: 0, finishedAt: now - 120_000 }, now, stale)).toEqual({ kind: 'replace' });
    const kept = { caseId: 'c', event: { type: 'stepCompleted', stepId: 's', attempt: 1, at: now, startedAt: now, output: 1 } };
    const result = { reports: [kept, { caseId: 3 }, null] };
    expect(repairOf({ state: 'completed', stalls: 0, attemptsMade: 0, finishedAt: now - 120_000, result }, now, stale)).toEqual({ kind: 'resend', reports: [kept] });
    const job = { caseId: 'c', stepId: 's', run: 1, instance: 4 } as StepJob;
    expect(workerLostEvent(job, 3, 2, now)).toMatchObject({ type: 'stepFailed', stepId: 's', attempt: 3, run: 1, instance: 4, error: { code: 'WORKER_LOST', retryable: false } });
  });
});
