import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { workflowNotFoundError, WorkfleetError } from '../../lib/core/errors.js';
import type { StepJob, StepReport } from '../../lib/core/state.js';
import { toStepPayload } from '../../lib/core/step-payload.js';
import { buildUnitJob } from '../../lib/core/machine/jobs.js';
import { createCase } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { createLogger } from '../../lib/obs/logger.js';
import type { Delivery, Outcome } from '../../lib/ports/queues.js';
import { expandingStepJobs } from '../../workers/step-jobs.js';
import { T0 } from './fixtures.js';

/** What a worker makes of what a step queue holds, before any handler runs. */

const workflow = compileWorkflow({ name: 'w', steps: [{ id: 'a', task: 't.a', timeout: '3s', input: { x: '${input.x}' } }] }, 2);
const state = createCase(workflow, { id: '01a2023c-80f9-7f9d-88eb-510cc1842ef8', input: { x: 5 }, now: T0 }).state;
const built = buildUnitJob(state, workflow.steps.get('a')!, {});
const logger = createLogger({ level: 'silent', name: 'test' });

function delivery(data: unknown, id = built.jobId): Delivery<unknown> {
  return { id, queue: 'default', name: 't.a', data, enqueuedAt: 1_700_000_000_000, attempt: 1, maxAttempts: 3, signal: new AbortController().signal, reportProgress: async () => undefined };
}

function expand(compiled: (name: string, version?: number) => Promise<typeof workflow>) {
  const ran: StepJob[] = [];
  const reported: StepReport[] = [];
  const reports = { report: async (sent: readonly StepReport[]) => void reported.push(...sent) };
  const processor = expandingStepJobs({ workflows: { compiled }, reports, clock: { now: () => T0 }, logger }, async (job): Promise<Outcome> => {
    ran.push(job.data);
    return { kind: 'complete' };
  });
  return { ran, reported, processor };
}

describe('expanding step jobs', () => {
  it('runs the job the core built, from its id and payload', async () => {
    const { ran, processor } = expand(async (name, version) => (name === 'w' && version === 2 ? workflow : Promise.reject(workflowNotFoundError(name, version))));
    expect(await processor(delivery(JSON.parse(JSON.stringify(toStepPayload(built.job)))))).toEqual({ kind: 'complete' });
    expect(ran).toEqual([built.job]);
  });

  it('runs a whole job enqueued before payloads were cut down as it is', async () => {
    const { ran, processor } = expand(async () => Promise.reject(new Error('not asked')));
    await processor(delivery(built.job));
    expect(ran).toEqual([built.job]);
  });

  it('defers without an attempt while the workflow cannot be read, and fails what fits no workflow', async () => {
    const away = expand(async () => Promise.reject(new WorkfleetError(ErrorCode.serviceUnavailable, 'down')));
    expect(await away.processor(delivery({ w: 'w', v: 2 }))).toMatchObject({ kind: 'defer', until: T0 + 1_000 });
    const gone = expand(async (name, version) => Promise.reject(workflowNotFoundError(name, version)));
    expect(await gone.processor(delivery({ w: 'w', v: 9 }))).toEqual({ kind: 'fail', reason: 'STEP_JOB_INVALID: workflow "w" has no version 9' });
    const known = expand(async () => workflow);
    expect(await known.processor(delivery({ w: 'w', v: 2 }, `${state.id}.zz`))).toEqual({ kind: 'fail', reason: 'STEP_JOB_INVALID: workflow w v2 has no step "zz"' });
    expect(await known.processor(delivery('junk'))).toMatchObject({ kind: 'fail', reason: expect.stringMatching(/^STEP_JOB_INVALID: /) });
    expect([...away.ran, ...gone.ran, ...known.ran]).toEqual([]);
    // The step of a job that fits no workflow fails too, so the reconciler does not put the job back for ever.
    expect(away.reported).toEqual([]);
    expect(gone.reported).toEqual([
      { caseId: state.id, event: { type: 'stepFailed', stepId: 'a', attempt: 1, at: T0, error: { code: 'STEP_JOB_INVALID', message: 'workflow "w" has no version 9', retryable: false } } },
    ]);
    expect(known.reported.map((report) => [report.caseId, report.event.type, 'stepId' in report.event ? report.event.stepId : ''])).toEqual([
      [state.id, 'stepFailed', 'zz'],
      [state.id, 'stepFailed', 'a'],
    ]);
  });
});
