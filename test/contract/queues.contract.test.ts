import { sampleStepJob } from '../helpers/samples.js';
import { toStepPayload } from '../../lib/core/step-payload.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BullConsumers, BullQueues } from '../../lib/adapters/bullmq/queues.js';
import type { StepJob } from '../../lib/core/state.js';
import { SHUTDOWN_REASON, type Consumer, type Delivery, type Outcome, type QueueConsumers, type TaskQueues } from '../../lib/ports/queues.js';
import { producerQueue, startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The queue ports' contract on BullMQ with a private redis-server: what each processor Outcome
 * does to a job, and that enqueueing is idempotent. Every test has its own key prefix.
 */

let servers: TestServers;
const closers: Array<() => Promise<unknown>> = [];
const retention = { keepCompletedSeconds: 3600, keepCompletedCount: 1000, keepFailedSeconds: 3600 };

function ports(): { queues: BullQueues; consumers: QueueConsumers; prefix: string } {
  const { prefix } = servers.namespace();
  const options = { redisUrl: servers.redis.url, prefix, retention };
  const queues = new BullQueues(options);
  closers.push(() => queues.close());
  return { queues, consumers: new BullConsumers(options), prefix };
}

function consume<T>(consumers: QueueConsumers, queue: string, processor: (delivery: Delivery<T>) => Promise<Outcome>): Consumer {
  const consumer = consumers.consume(queue, processor, { concurrency: 5, lockDurationMs: 5_000 });
  closers.push(() => consumer.close(1_000));
  return consumer;
}

const job = (stepId: string, maxAttempts = 3): StepJob =>
  sampleStepJob({
    caseId: 'c1',
    stepId,
    task: 't',
    input: { n: 1 },
    idempotencyKey: `c1:${stepId}`,
    backoff: { type: 'fixed', delayMs: 10, maxDelayMs: 10, jitter: 0 },
    timeoutMs: 1_000,
    breaker: 't',
    maxAttempts,
  });

beforeAll(async () => {
  servers = await startServers();
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

afterAll(async () => {
  await servers?.stop();
});

describe('TaskQueues and QueueConsumers on BullMQ', () => {
  it('adds a step job once, however often it is enqueued', async () => {
    const { queues } = ports();
    const queues2: TaskQueues = queues;
    await queues2.enqueueSteps([{ queue: 'q', jobId: 'c1.a', job: job('a') }]);
    await queues2.enqueueSteps([
      { queue: 'q', jobId: 'c1.a', job: job('a') },
      { queue: 'q', jobId: 'c1.b', job: job('b') },
    ]);
    expect(await queues.queue('q').getJobCountByTypes('waiting')).toBe(2);
    expect(await queues2.stepJobState('q', 'c1.a')).toBe('waiting');
    expect(await queues2.stepJobState('q', 'c1.zzz')).toBe('missing');
  });

  it('delivers the data with attempt 1 and completes the job', async () => {
    const { queues, consumers } = ports();
    const seen: Array<Delivery<StepJob>> = [];
    consume<StepJob>(consumers, 'q', async (delivery) => {
      seen.push(delivery);
      return { kind: 'complete' };
    });
    await queues.enqueueSteps([{ queue: 'q', jobId: 'c1.a', job: job('a') }]);
    await waitFor('the job to complete', async () => ((await queues.stepJobState('q', 'c1.a')) === 'completed' ? true : undefined));
    expect(seen).toHaveLength(1);
    // Queued as ids and input only; the worker expands it with the workflow (workers/step-jobs.ts).
    expect(seen[0]).toMatchObject({ id: 'c1.a', name: 't', attempt: 1, maxAttempts: 3, data: toStepPayload(job('a')) });
  });

  it('retries after the given delay, counting attempts up to the limit', async () => {
    const { queues, consumers } = ports();
    const attempts: Array<[number, number]> = [];
    consume<StepJob>(consumers, 'q', async (delivery) => {
      attempts.push([delivery.attempt, Date.now()]);
      return { kind: 'retry', delayMs: 300, reason: 'BOOM: nope' };
    });
    await queues.enqueueSteps([{ queue: 'q', jobId: 'c1.a', job: job('a', 2) }]);
    await waitFor('the job to fail', async () => ((await queues.stepJobState('q', 'c1.a')) === 'failed' ? true : undefined));
    expect(attempts.map(([attempt]) => attempt)).toEqual([1, 2]);
    expect((attempts[1]?.[1] ?? 0) - (attempts[0]?.[1] ?? 0)).toBeGreaterThanOrEqual(290);
    expect((await queues.queue('q').getJob('c1.a'))?.failedReason).toBe('BOOM: nope');
  });

  it('fails a job at once, with its reason, when told to', async () => {
    const { queues, consumers } = ports();
    let calls = 0;
    consume<StepJob>(consumers, 'q', async () => {
      calls += 1;
      return { kind: 'fail', reason: 'INPUT_INVALID: bad' };
    });
    await queues.enqueueSteps([{ queue: 'q', jobId: 'c1.a', job: job('a', 5) }]);
    await waitFor('the job to fail', async () => ((await queues.stepJobState('q', 'c1.a')) === 'failed' ? true : undefined));
    const failed = await queues.queue('q').getJob('c1.a');
    expect([calls, failed?.attemptsMade, failed?.failedReason]).toEqual([1, 1, 'INPUT_INVALID: bad']);
  });

  it('defers a job to a later time without counting an attempt', async () => {
    const { queues, consumers } = ports();
    const deliveries: Array<[number, number]> = [];
    consume<StepJob>(consumers, 'q', async (delivery) => {
      deliveries.push([delivery.attempt, Date.now()]);
      if (deliveries.length < 3) return { kind: 'defer', until: Date.now() + 200, reason: 'breaker open' };
      return { kind: 'complete' };
    });
    await queues.enqueueSteps([{ queue: 'q', jobId: 'c1.a', job: job('a', 1) }]);
    await waitFor('the job to complete', async () => ((await queues.stepJobState('q', 'c1.a')) === 'completed' ? true : undefined));
    expect(deliveries.map(([attempt]) => attempt)).toEqual([1, 1, 1]);
    expect((deliveries[2]?.[1] ?? 0) - (deliveries[0]?.[1] ?? 0)).toBeGreaterThanOrEqual(380);
  });

  it('on close, lets active jobs finish within the grace period', async () => {
    const { queues, consumers } = ports();
    let finished = false;
    const consumer = consumers.consume<StepJob>(
      'q',
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 300));
        finished = true;
        return { kind: 'complete' };
      },
      { concurrency: 1 },
    );
    await queues.enqueueSteps([{ queue: 'q', jobId: 'c1.a', job: job('a') }]);
    await waitFor('the job to be active', async () => ((await queues.stepJobState('q', 'c1.a')) === 'active' ? true : undefined), { intervalMs: 10 });
    await consumer.close(5_000);
    expect(finished).toBe(true);
    expect(await queues.stepJobState('q', 'c1.a')).toBe('completed');
  });

  it('after the grace period, aborts active jobs and hands them back without counting an attempt', async () => {
    const { queues, consumers } = ports();
    let reason: unknown;
    const consumer = consumers.consume<StepJob>(
      'q',
      async (delivery) => {
        await new Promise((resolve) => delivery.signal.addEventListener('abort', resolve, { once: true }));
        reason = delivery.signal.reason;
        return { kind: 'handBack' };
      },
      { concurrency: 1 },
    );
    await queues.enqueueSteps([{ queue: 'q', jobId: 'c1.a', job: job('a') }]);
    await waitFor('the job to be active', async () => ((await queues.stepJobState('q', 'c1.a')) === 'active' ? true : undefined), { intervalMs: 10 });
    await consumer.close(200);
    expect(reason).toBe(SHUTDOWN_REASON);
    expect(await queues.stepJobState('q', 'c1.a')).toBe('waiting');
    expect((await queues.queue('q').getJob('c1.a'))?.attemptsMade).toBe(0);
  });

  it('removes finished jobs that producers added without removal options, beyond the kept count', async () => {
    const { prefix } = servers.namespace();
    const options = { redisUrl: servers.redis.url, prefix, retention: { keepCompletedSeconds: 3600, keepCompletedCount: 2, keepFailedSeconds: 3600 } };
    const queues = new BullQueues(options);
    closers.push(() => queues.close());
    let done = 0;
    consume(new BullConsumers(options), 'cases', async () => ((done += 1), { kind: 'complete' }));
    const producer = producerQueue(servers.redis.url, 'cases', prefix);
    closers.push(() => producer.close());
    for (let i = 0; i < 6; i++) await producer.add('start', { n: i });
    await waitFor('six jobs done', () => (done === 6 ? true : undefined));
    await waitFor('the completed set trimmed', async () => ((await producer.getJobCountByTypes('completed')) === 2 ? true : undefined));
  });

  it('queues step reports once per distinct report', async () => {
    const { queues, prefix } = ports();
    const report = { caseId: 'c1', event: { type: 'stepStarted' as const, stepId: 'a', attempt: 1, at: 5 } };
    await queues.report([report, report]);
    await queues.report([report, { ...report, event: { ...report.event, attempt: 2 } }]);
    const results = producerQueue(servers.redis.url, 'results', prefix);
    closers.push(() => results.close());
    const jobs = await results.getJobs(['waiting']);
    expect(jobs.map((item) => item.data as unknown).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([report, { ...report, event: { ...report.event, attempt: 2 } }]);
  });
});
