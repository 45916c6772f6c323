import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BullConsumers } from '../../lib/adapters/bullmq/queues.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { INTAKE_QUEUE, type Consumer } from '../../lib/ports/queues.js';
import { intakeProcessor } from '../../scheduler/intake.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Key-less `start` jobs on the intake queue, consumed by the scheduler's real intake processor on
 * BullMQ against a private redis-server, cases in FerretDB. BullMQ numbers jobs from 1 in each
 * Redis: after a wipe (or a restore, or an AOF rollback) the numbers come again, and a job must
 * still get a case of its own, never an older job's.
 */

let servers: TestServers;
let api: TestApi;
let consumer: Consumer;
let queue: Queue;
let redis: Redis;

const logger = createLogger({ level: 'silent', name: 'intake-test' });

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers);
  const consumers = new BullConsumers({ redisUrl: servers.redis.url, prefix: api.prefix, retention: api.config.jobs });
  consumer = consumers.consume(INTAKE_QUEUE, intakeProcessor({ cases: api.engine.cases, clock: api.engine.clock, logger, metrics: new Metrics('scheduler') }), { concurrency: 4 });
  queue = new Queue(INTAKE_QUEUE, { connection: { url: servers.redis.url }, prefix: api.prefix });
  redis = new Redis(servers.redis.url);
});

afterAll(async () => {
  await consumer?.close(1_000);
  await queue?.close();
  redis?.disconnect();
  await api?.close();
  await servers?.stop();
});

interface Settled {
  id: string;
  state: string;
  failedReason?: string;
}

/** Adds key-less start jobs and waits until each has completed or failed. */
async function addAndSettle(bodies: unknown[]): Promise<Settled[]> {
  const jobs = await queue.addBulk(bodies.map((data) => ({ name: 'start', data })));
  return waitFor(
    'every job completed or failed',
    async () => {
      const settled = await Promise.all(
        jobs.map(async ({ id }) => {
          const job = await queue.getJob(id ?? '');
          const state = job ? await job.getState() : 'missing';
          return { id: id ?? '', state, ...(job?.failedReason ? { failedReason: job.failedReason } : {}) };
        }),
      );
      return settled.every((job) => job.state === 'completed' || job.state === 'failed') ? settled : undefined;
    },
    { timeoutMs: 30_000 },
  );
}

const casesOf = async (workflow: string) => (await api.engine.store.listCases({ workflow, limit: 200 })).cases.length;

describe('key-less intake jobs', () => {
  it('each get a case of their own after Redis is wiped and job ids start again at 1', async () => {
    await api.engine.workflows.apply({ name: 'wiped', steps: [{ id: 'a', task: 'demo.echo' }] });
    const body = (n: number) => ({ workflow: 'wiped', input: { n } });
    const before = await addAndSettle(Array.from({ length: 10 }, (_, n) => body(n)));
    expect(before.filter((job) => job.state !== 'completed')).toEqual([]);
    expect(await casesOf('wiped')).toBe(10);

    await redis.flushall();
    // The same ids again: five jobs with the bodies of old ones, five with new bodies.
    const after = await addAndSettle([...Array.from({ length: 5 }, (_, n) => body(n)), ...Array.from({ length: 5 }, (_, n) => body(100 + n))]);
    expect(after.map((job) => job.id)).toEqual(before.map((job) => job.id));
    expect(after.filter((job) => job.state !== 'completed')).toEqual([]);
    expect(await casesOf('wiped')).toBe(20);
  });

  it('cannot be claimed in advance by an HTTP producer guessing their key', async () => {
    await api.engine.workflows.apply({ name: 'claimed', steps: [{ id: 'a', task: 'demo.echo' }] });
    const next = Number((await redis.get(`${api.prefix}:${INTAKE_QUEUE}:id`)) ?? '0') + 1;
    for (const [offset, n] of [
      [0, 1],
      [1, 99],
    ] as const) {
      const claim = await api.call('POST', '/v1/cases', { payload: { workflow: 'claimed', input: { n }, idempotencyKey: `intake:${next + offset}` } });
      expect(claim.status).toBe(201);
    }
    const jobs = await addAndSettle([
      { workflow: 'claimed', input: { n: 1 } },
      { workflow: 'claimed', input: { n: 2 } },
    ]);
    expect(jobs.map((job) => job.id)).toEqual([String(next), String(next + 1)]);
    expect(jobs.filter((job) => job.state !== 'completed')).toEqual([]);
    expect(await casesOf('claimed')).toBe(4);
  });

  it('fails a job whose key or business key has a lone surrogate, once, naming the path', async () => {
    await api.engine.workflows.apply({ name: 'surrogate', steps: [{ id: 'a', task: 'demo.echo' }] });
    const jobs = await addAndSettle([
      { workflow: 'surrogate', idempotencyKey: 'k-\ud800' },
      { workflow: 'surrogate', businessKeys: { orderId: '\udc00' } },
    ]);
    expect(jobs.map((job) => [job.state, job.failedReason])).toEqual([
      ['failed', expect.stringMatching(/^INPUT_INVALID: .*idempotencyKey: is not well-formed UTF-16/)],
      ['failed', expect.stringMatching(/^INPUT_INVALID: .*businessKeys\.orderId: is not well-formed UTF-16/)],
    ]);
    expect(await casesOf('surrogate')).toBe(0);
  });

  it('finds its own case when the same job is delivered again', async () => {
    await api.engine.workflows.apply({ name: 'redelivered', steps: [{ id: 'a', task: 'demo.echo' }] });
    const [job] = await addAndSettle([{ workflow: 'redelivered', input: {} }]);
    const stored = await queue.getJob(job?.id ?? '');
    if (!stored) throw new Error('job expected');
    // Back in the queue as if its first run had died after making the case.
    await stored.retry('completed');
    await waitFor('the job completed again', async () => ((await stored.getState()) === 'completed' && (await queue.getJob(stored.id ?? ''))?.attemptsStarted === 2 ? true : undefined), { timeoutMs: 20_000 });
    expect(await casesOf('redelivered')).toBe(1);
  });
});
