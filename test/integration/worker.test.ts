import { sampleStepJob } from '../helpers/samples.js';
import { Writable } from 'node:stream';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullQueues } from '../../lib/adapters/bullmq/queues.js';
import type { CaseEvent, StepJob } from '../../lib/core/state.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { systemClock } from '../../lib/ports/clock.js';
import { SHUTDOWN_REASON, type Delivery, type Outcome } from '../../lib/ports/queues.js';
import { NonRetryableError, TaskError, type Handler, type TaskContext } from '../../lib/sdk/index.js';
import { Breakers } from '../../workers/breakers.js';
import { taskProcessor } from '../../workers/run-task.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The worker's task processor: handler in, Outcome and reports out. Reports really go to the
 * results queue on a private redis-server and are read back from it.
 */

let servers: TestServers;
const closers: Array<() => Promise<unknown>> = [];

const stepJob = (overrides: Partial<StepJob> = {}): StepJob => sampleStepJob({ timeoutMs: 2_000, ...overrides });

function delivery(job: StepJob, attempt = 1, controller = new AbortController()): Delivery<StepJob> {
  return {
    id: `${job.caseId}.${job.stepId}`,
    queue: 'default',
    name: job.task,
    data: job,
    enqueuedAt: 1_700_000_000_000,
    attempt,
    maxAttempts: job.maxAttempts,
    signal: controller.signal,
    reportProgress: async () => undefined,
  };
}

/** A logger whose JSON lines are kept, to read what an operator would see. */
function capturedLogger(level: string) {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level, name: 'worker-test', destination }), lines };
}

function rig(handlers: Record<string, Handler>, options: { breaker?: Partial<ConstructorParameters<typeof Breakers>[0]>; startReportDelayMs?: number; logger?: ReturnType<typeof createLogger> } = {}) {
  const { prefix } = servers.namespace();
  const queues = new BullQueues({ redisUrl: servers.redis.url, prefix, retention: { keepCompletedSeconds: 60, keepCompletedCount: 10, keepFailedSeconds: 60 } });
  const results = new Queue('results', { connection: { url: servers.redis.url }, prefix });
  closers.push(
    () => queues.close(),
    () => results.close(),
  );
  const breakers = new Breakers({ errorThresholdPercent: 50, volumeThreshold: 100, resetTimeoutMs: 30_000, rollingWindowMs: 10_000, ...options.breaker });
  closers.push(async () => breakers.shutdown());
  const run = taskProcessor({
    handlers: new Map(Object.entries(handlers)),
    breakers,
    queues,
    clock: systemClock,
    logger: options.logger ?? createLogger({ level: 'silent', name: 'worker-test' }),
    metrics: new Metrics('worker'),
    workerId: 'test-worker',
    startReportDelayMs: options.startReportDelayMs ?? 200,
    random: () => 0,
  });
  /** The events reported so far, oldest first. */
  const reported = async (): Promise<CaseEvent[]> => {
    const jobs = await results.getJobs(['waiting'], 0, -1, true);
    return jobs.map((item) => (item.data as { event: CaseEvent }).event);
  };
  return { run, reported, breakers };
}

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
  await servers?.stop();
});

describe('taskProcessor', () => {
  it('calls the handler with its input and a context, and reports start and completion together when fast', async () => {
    let seen: TaskContext | undefined;
    const { run, reported } = rig({ task: async (input: { n: number }, ctx) => ((seen = ctx), { doubled: input.n * 2 }) });
    const outcome = await run(delivery(stepJob(), 2));
    // The job keeps what it reported, for the reconciler to send again should the report be lost.
    expect(outcome).toEqual({ kind: 'complete', result: { reports: [expect.objectContaining({ event: expect.objectContaining({ type: 'stepCompleted', output: { doubled: 14 } }) })] } });
    expect(seen).toMatchObject({ caseId: 'case-1', stepId: 'step', workflow: 'w', version: 1, attempt: 2, maxAttempts: 3, idempotencyKey: 'case-1:step' });
    expect(seen?.signal.aborted).toBe(false);
    expect(await reported()).toEqual([{ type: 'stepCompleted', stepId: 'step', attempt: 2, at: expect.any(Number), startedAt: expect.any(Number), output: { doubled: 14 } }]);
  });

  it('reports the start of a handler that runs longer than the start report delay', async () => {
    const { run, reported } = rig({ task: async () => new Promise((resolve) => setTimeout(() => resolve('done'), 300)) }, { startReportDelayMs: 50 });
    await run(delivery(stepJob()));
    const events = await waitFor('two reports', async () => {
      const all = await reported();
      return all.length === 2 ? all : undefined;
    });
    expect(events.map((event) => event.type).sort()).toEqual(['stepCompleted', 'stepStarted']);
    expect(events.find((event) => event.type === 'stepStarted')).toMatchObject({ worker: 'test-worker', attempt: 1 });
  });

  it('retries a failed attempt with the step backoff and reports the error', async () => {
    const { run, reported } = rig({ task: async () => Promise.reject(new TaskError('UPSTREAM_DOWN', 'upstream said 503')) });
    const outcome = await run(delivery(stepJob(), 1));
    expect(outcome).toEqual({ kind: 'retry', delayMs: 500, reason: 'UPSTREAM_DOWN: upstream said 503' });
    const [event] = await reported();
    expect(event).toMatchObject({ type: 'stepRetrying', attempt: 1, error: { code: 'UPSTREAM_DOWN', message: 'upstream said 503', retryable: true } });
    expect(event?.type === 'stepRetrying' && event.retryAt - event.at).toBe(500);
  });

  it('logs an expected retry as one warn line with its code and attempt, its stack only at debug', async () => {
    const failing = { task: async () => Promise.reject(new TaskError('UPSTREAM_DOWN', 'upstream said 503')) };
    const info = capturedLogger('info');
    await run(rig(failing, { logger: info.logger }).run, 1);
    expect(info.lines).toHaveLength(1);
    expect(info.lines[0]).toMatchObject({
      level: 40,
      msg: 'attempt 1 of 3 failed (UPSTREAM_DOWN: upstream said 503); retrying in 500 ms',
      code: 'UPSTREAM_DOWN',
      attempt: 1,
      maxAttempts: 3,
      retryInMs: 500,
    });
    expect(JSON.stringify(info.lines)).not.toMatch(/\bat .*run-task|stack/);

    const debug = capturedLogger('debug');
    await run(rig(failing, { logger: debug.logger }).run, 1);
    const retried = debug.lines.find((line) => line.code === 'UPSTREAM_DOWN');
    expect((retried?.err as { stack?: string } | undefined)?.stack).toMatch(/upstream said 503\n\s+at /);

    // The step's end keeps its stack at any level: that is what someone will investigate.
    const last = capturedLogger('info');
    await run(rig({ task: async () => Promise.reject(new Error('still broken')) }, { logger: last.logger }).run, 3);
    expect(last.lines).toEqual([expect.objectContaining({ level: 40, msg: 'step failed after 3 attempts (HANDLER_FAILED: still broken); no attempts left', code: 'HANDLER_FAILED' })]);
    expect((last.lines[0]?.err as { stack?: string } | undefined)?.stack).toMatch(/still broken\n\s+at /);

    async function run(processor: ReturnType<typeof taskProcessor>, attempt: number) {
      await processor(delivery(stepJob(), attempt));
    }
  });

  it('fails the step when the last attempt fails', async () => {
    const { run, reported } = rig({ task: async () => Promise.reject(new Error('still broken')) });
    expect(await run(delivery(stepJob(), 3))).toEqual({ kind: 'fail', reason: 'HANDLER_FAILED: still broken' });
    expect(await reported()).toEqual([expect.objectContaining({ type: 'stepFailed', attempt: 3, error: { code: 'HANDLER_FAILED', message: 'still broken', retryable: true } })]);
  });

  it('fails at once on a non-retryable error, keeping its code and details', async () => {
    const { run, reported } = rig({ task: async () => Promise.reject(new NonRetryableError('card declined', { code: 'CARD_DECLINED', details: { bank: 'x' } })) });
    expect(await run(delivery(stepJob(), 1))).toEqual({ kind: 'fail', reason: 'CARD_DECLINED: card declined' });
    expect((await reported())[0]).toMatchObject({ type: 'stepFailed', error: { code: 'CARD_DECLINED', retryable: false, details: { bank: 'x' } } });
  });

  it('aborts the handler signal at the timeout and retries', async () => {
    let aborted = false;
    const { run, reported } = rig({
      task: async (_input, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => ((aborted = true), reject(ctx.signal.reason as Error)))),
    });
    const started = Date.now();
    const outcome = await run(delivery(stepJob({ timeoutMs: 150 })));
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(aborted).toBe(true);
    expect(outcome).toMatchObject({ kind: 'retry' });
    expect((await reported()).at(-1)).toMatchObject({ type: 'stepRetrying', error: { code: 'STEP_TIMEOUT' } });
  });

  it('times out a handler that ignores its signal', async () => {
    const { run } = rig({ task: async () => new Promise(() => undefined) });
    expect(await run(delivery(stepJob({ timeoutMs: 100, maxAttempts: 1 })))).toEqual({
      kind: 'fail',
      reason: 'STEP_TIMEOUT: attempt took longer than its timeout of 100 ms and was aborted',
    });
  });

  it('refuses an output that is not JSON, without retrying', async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const { run, reported } = rig({ task: async () => circular });
    expect(await run(delivery(stepJob()))).toMatchObject({ kind: 'fail', reason: expect.stringMatching(/^OUTPUT_INVALID: /) });
    expect((await reported())[0]).toMatchObject({ type: 'stepFailed', error: { code: 'OUTPUT_INVALID' } });
  });

  it('retries a task whose handler this worker lacks (another version may have it)', async () => {
    const { run, reported } = rig({});
    expect(await run(delivery(stepJob()))).toMatchObject({ kind: 'retry' });
    expect((await reported())[0]).toMatchObject({ type: 'stepRetrying', error: { code: 'HANDLER_NOT_FOUND' } });
  });

  it('opens the breaker after failures, defers tasks while it is open, and closes it after a good probe', async () => {
    let healthy = false;
    const { run, reported, breakers } = rig({ task: async () => (healthy ? { ok: true } : Promise.reject(new Error('dependency down'))) }, { breaker: { volumeThreshold: 2, resetTimeoutMs: 300 } });
    const job = (stepId: string) => stepJob({ stepId, caseId: `case-${stepId}`, breaker: 'dependency' });
    await run(delivery(job('a')));
    await run(delivery(job('b')));
    expect(breakers.state('dependency')).toBe('open');
    const opened = (await reported()).filter((event) => event.type === 'breakerOpened');
    expect(opened).toEqual([expect.objectContaining({ breaker: 'dependency' })]);

    const deferred: Outcome = await run(delivery(job('c')));
    expect(deferred).toMatchObject({ kind: 'defer', reason: 'breaker "dependency" is open' });
    expect((await reported()).at(-1)).toMatchObject({ type: 'stepDeferred', stepId: 'c', attempt: 1, breaker: 'dependency' });

    healthy = true;
    await waitFor('the breaker to half-open', () => (breakers.state('dependency') === 'halfOpen' ? true : undefined));
    expect(await run(delivery(job('d')))).toMatchObject({ kind: 'complete' });
    expect(breakers.state('dependency')).toBe('closed');
    expect((await reported()).some((event) => event.type === 'breakerClosed' && event.stepId === 'd')).toBe(true);
  });

  it('does not let non-retryable errors open the breaker', async () => {
    const { run, breakers } = rig({ task: async () => Promise.reject(new NonRetryableError('bad input')) }, { breaker: { volumeThreshold: 2 } });
    for (const stepId of ['a', 'b', 'c', 'd']) await run(delivery(stepJob({ stepId, breaker: 'strict' })));
    expect(breakers.state('strict')).toBe('closed');
  });

  it('hands the job back, reporting nothing, when the worker shuts down', async () => {
    const controller = new AbortController();
    const { run, reported } = rig({ task: async (_input, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(new Error('aborted')))) });
    const pending = run(delivery(stepJob(), 1, controller));
    setTimeout(() => controller.abort(SHUTDOWN_REASON), 50);
    expect(await pending).toEqual({ kind: 'handBack' });
    expect(await reported()).toEqual([]);
  });
});
