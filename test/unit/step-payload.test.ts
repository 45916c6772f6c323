import { describe, expect, it } from 'vitest';
import type { CaseState, StepJob, UnitAddress } from '../../lib/core/state.js';
import { isStepPayload, isWholeStepJob, parseUnitJobId, stepJobFromPayload, toStepPayload } from '../../lib/core/step-payload.js';
import { buildUnitJob } from '../../lib/core/machine/jobs.js';
import { createCase } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { T0 } from './fixtures.js';

/** A step job goes into its queue as ids and input only, and comes out as the job the core built. */

const CASE = '01a2023c-80f9-7f9d-88eb-510cc1842ef8';

const workflow = compileWorkflow(
  {
    name: 'shapes',
    defaults: { timeout: '7s', retry: { maxAttempts: 4, backoff: { type: 'exponential', delay: '100ms', maxDelay: '2s' } } },
    steps: [
      { id: 'plain', task: 'a.plain', input: { sku: '${input.sku}' }, breaker: 'shop' },
      { id: 'each', task: 'a.each', forEach: { items: '${input.items}' }, input: { item: '${item}', at: '${index}' } },
      { id: 'again', task: 'a.again', repeat: { while: 'false', maxIterations: 3 }, input: { n: 1 } },
      { id: 'saga', task: 'a.book', queue: 'bookings', input: null, compensate: { task: 'a.unbook', timeout: '3s', input: { undo: true } } },
    ],
  },
  3,
);

function roundTrip(state: CaseState, stepId: string, address: UnitAddress): { built: StepJob; back: StepJob | string } {
  const step = workflow.steps.get(stepId);
  if (!step) throw new Error(stepId);
  const { job, jobId } = buildUnitJob(state, step, address);
  // Through the queue as JSON, as Redis keeps it.
  const queued = JSON.parse(JSON.stringify(toStepPayload(job))) as unknown;
  if (!isStepPayload(queued)) throw new Error('not a payload');
  return { built: job, back: stepJobFromPayload(jobId, queued, workflow) };
}

describe('step payloads', () => {
  const state: CaseState = { ...createCase(workflow, { id: CASE, input: { sku: 'b-1', items: ['x', 'y'] }, now: T0 }).state, requestId: 'req-7' };

  it.each<[string, UnitAddress]>([
    ['plain', {}],
    ['plain', { run: 2 }],
    ['each', { instance: 1 }],
    ['again', { iteration: 1 }],
    ['again', { iteration: 3, run: 1 }],
    ['saga', {}],
    ['saga', { compensation: true }],
  ])('gives back the job of %s %o', (stepId, address) => {
    const { built, back } = roundTrip(state, stepId, address);
    expect(back).toEqual(built);
  });

  it('carries ids and input only: a plain step of a short input fits in 64 bytes', () => {
    const { job } = buildUnitJob(state, workflow.steps.get('plain')!, {});
    expect(JSON.stringify(toStepPayload(job))).toBe('{"w":"shapes","v":3,"in":{"sku":"b-1"},"rq":"req-7"}');
  });

  it('refuses job ids it never makes and payloads that do not fit the workflow', () => {
    expect(parseUnitJobId(`${CASE}.plain`)).toEqual({ caseId: CASE, stepId: 'plain', address: {} });
    for (const bad of ['nope', `${CASE}`, `${CASE}.pl ain`, `${CASE}.plain.x1`, `${CASE}.plain.n1`, `${CASE}.plain.r0`, `${CASE}.plain.i01`, 'not-a-uuid.plain']) {
      expect(parseUnitJobId(bad), bad).toBeUndefined();
    }
    expect(stepJobFromPayload(`${CASE}.missing`, { w: 'shapes', v: 3 }, workflow)).toMatch(/has no step "missing"/);
    expect(stepJobFromPayload(`${CASE}.plain.undo`, { w: 'shapes', v: 3 }, workflow)).toMatch(/has no compensation/);
    expect(isStepPayload({ w: 'shapes', v: '3' })).toBe(false);
    expect(isWholeStepJob({ caseId: CASE, stepId: 'plain', task: 'a.plain' })).toBe(true);
    expect(isWholeStepJob({ w: 'shapes', v: 3 })).toBe(false);
  });
});
