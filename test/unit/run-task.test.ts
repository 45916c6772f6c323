import { sampleStepJob } from '../helpers/samples.js';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepJob } from '../../lib/core/state.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { CANCEL_REASON, type Delivery } from '../../lib/ports/queues.js';
import type { Handler } from '../../lib/sdk/index.js';
import { Breakers } from '../../workers/breakers.js';
import { describeError, taskProcessor } from '../../workers/run-task.js';
import { ManualClock } from '../helpers/memory-engine.js';
import { RecordingQueues } from '../helpers/recording-queues.js';
import { T0 } from './fixtures.js';

/**
 * The worker's task processor with its reports kept in memory: what the integration suite
 * (test/integration/worker.test.ts, reports on a real Redis) does not cover — a cancelled case,
 * the unit a job stands for, progress, and how a handler's error is described.
 */

const breakers: Breakers[] = [];

afterAll(() => {
  for (const each of breakers) each.shutdown();
});

const stepJob = sampleStepJob;

function rig(handlers: Record<string, Handler>) {
  const queues = new RecordingQueues();
  const breaker = new Breakers({ errorThresholdPercent: 50, volumeThreshold: 100, resetTimeoutMs: 30_000, rollingWindowMs: 10_000 });
  breakers.push(breaker);
  const progress: unknown[] = [];
  const run = taskProcessor({
    handlers: new Map(Object.entries(handlers)),
    breakers: breaker,
    queues,
    clock: new ManualClock(T0),
    logger: createLogger({ level: 'silent', name: 'run-task-unit' }),
    metrics: new Metrics('worker'),
    workerId: 'worker-1',
    // Longer than any test: no start report races the ones asserted.
    startReportDelayMs: 60_000,
    random: () => 0,
  });
  const deliver = (job: StepJob, controller = new AbortController()): Promise<ReturnType<typeof run> extends Promise<infer O> ? O : never> => {
    const delivery: Delivery<StepJob> = {
      id: `${job.caseId}.${job.stepId}`,
      queue: 'default',
      name: job.task,
      data: job,
      enqueuedAt: T0,
      attempt: 1,
      maxAttempts: job.maxAttempts,
      signal: controller.signal,
      reportProgress: async (value) => void progress.push(value),
    };
    return run(delivery);
  };
  return { queues, deliver, progress };
}

describe('taskProcessor', () => {
  it('stops the handler when its case is cancelled: the job fails as cancelled and reports nothing', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let seen: unknown;
    const { deliver, queues } = rig({
      task: (_input, ctx) =>
        new Promise((_, reject) => {
          ctx.signal.addEventListener('abort', () => {
            seen = ctx.signal.reason;
            reject(new Error('aborted'));
          });
          started();
        }),
    });
    const controller = new AbortController();
    const outcome = deliver(stepJob(), controller);
    await running;
    controller.abort(CANCEL_REASON);
    expect(await outcome).toEqual({ kind: 'fail', reason: 'STEP_CANCELLED: the case was cancelled' });
    expect(seen).toBe(CANCEL_REASON);
    expect(queues.reports).toEqual([]);
  });

  it('says with every step event which unit of the step the job is, and keeps the reports it sent', async () => {
    const { deliver, queues } = rig({ 'undo.task': async (input) => ({ undone: input }) });
    const outcome = await deliver(stepJob({ task: 'undo.task', run: 2, instance: 3, compensation: true }));
    expect(queues.reports).toEqual([
      { caseId: 'case-1', event: { type: 'stepCompleted', stepId: 'step', attempt: 1, at: T0, startedAt: T0, output: { undone: { n: 7 } }, run: 2, instance: 3, compensation: true } },
    ]);
    expect(outcome).toEqual({ kind: 'complete', result: { reports: queues.reports } });
  });

  it("hands the handler's progress to the queue", async () => {
    const { deliver, progress } = rig({
      task: async (_input, ctx) => {
        await ctx.progress(40);
        await ctx.progress({ done: 4, of: 10 });
        return null;
      },
    });
    expect(await deliver(stepJob())).toMatchObject({ kind: 'complete' });
    expect(progress).toEqual([40, { done: 4, of: 10 }]);
  });
});

describe('describeError', () => {
  it('keeps a well-formed code and JSON details, and names anything else by whether it may be retried', () => {
    expect(describeError(Object.assign(new Error('card declined'), { code: 'DECLINED', details: { last4: '4242' } }))).toEqual({
      code: 'DECLINED',
      message: 'card declined',
      retryable: true,
      details: { last4: '4242' },
    });
    expect(describeError(Object.assign(new Error('x'), { code: 'not a code' }))).toMatchObject({ code: 'HANDLER_FAILED', retryable: true });
    expect(describeError(Object.assign(new Error('x'), { nonRetryable: true }))).toMatchObject({ code: 'NON_RETRYABLE', retryable: false });
    expect(describeError('a bare string')).toMatchObject({ code: 'HANDLER_FAILED', message: 'a bare string' });
  });

  it('cuts a long message and drops details too large to keep', () => {
    const described = describeError(Object.assign(new Error('m'.repeat(5_000)), { details: { big: 'x'.repeat(20_000) } }));
    expect(described.message).toHaveLength(2_000);
    expect(described).not.toHaveProperty('details');
  });
});
