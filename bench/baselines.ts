import { randomBytes } from 'node:crypto';
import { FlowProducer, Queue, type FlowJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { openWindow, perUnit, usedMemory } from './counters.js';
import { offerAtRate, sleep, spawnRawWorker, type BenchServers } from './harness.js';
import { percentile } from './stats.js';

/**
 * The baselines: raw BullMQ no-op jobs and FlowProducer flows through one raw worker process
 * (concurrency 50), each measured two ways over at least 20,000 jobs: enqueue while draining
 * (the worker runs, the bench adds; from the first add to the last completion) and pre-filled
 * drain (the bench adds everything, then starts the worker; from its first job to its last).
 * The bench calls them only while no fleet process runs and the store is idle.
 */

const RAW_JOBS = 20_000;
/** 3-job chains and parents with 10 children: 21,000 and 22,000 jobs. */
const FLOWS = { chain3: 7_000, split10: 2_000 } as const;
/** Queued items per step of the Redis bytes measurement. */
const PARKED = 1_000;

export type Way = 'draining' | 'prefilled';

export interface Throughput {
  perSecond: number;
  /** Per job (raw) or per flow, in the draining measurement. */
  perUnit?: ReturnType<typeof perUnit>;
}

const id = () => randomBytes(4).toString('hex');

async function obliterate(redisUrl: string, prefix: string, name: string): Promise<void> {
  const queue = new Queue(name, { connection: { url: redisUrl }, prefix });
  await queue.obliterate({ force: true });
  await queue.close();
}

/**
 * Adds work with `add`, through one raw worker that counts `target` jobs named `countName`;
 * `way` says whether the worker runs before the adds or starts after them.
 */
async function drain(
  servers: BenchServers,
  redis: Redis,
  options: { prefix: string; queue: string; target: number; countName?: string; way: Way; units: number },
  add: () => Promise<void>,
): Promise<Throughput> {
  const { prefix, queue, target, way } = options;
  const args = { mode: 'noop' as const, redisUrl: servers.redis.url, prefix, queue, target, ...(options.countName ? { countName: options.countName } : {}) };
  if (way === 'prefilled') await add();
  const { child, lines } = await spawnRawWorker(args);
  try {
    if (way === 'prefilled') {
      const [, last = 0, first = 0] = (await lines.next(/^done /, 300_000, `${queue} drain`)).split(' ').map(Number);
      return { perSecond: options.units / ((last - first) / 1000) };
    }
    const close = await openWindow({ redis, pids: { worker: child.process.pid, redis: servers.redis.child.process.pid }, prefix });
    const started = Date.now();
    await add();
    const [, last = 0] = (await lines.next(/^done /, 300_000, `${queue} drain`)).split(' ').map(Number);
    const cost = await close();
    return { perSecond: options.units / ((last - started) / 1000), perUnit: perUnit(cost, options.units) };
  } finally {
    await child.stop('SIGTERM', 10_000);
    await obliterate(servers.redis.url, prefix, queue);
  }
}

/** No-op jobs/s through one raw worker process. */
export async function rawThroughput(servers: BenchServers, redis: Redis, way: Way): Promise<Throughput> {
  const prefix = `raw-${id()}`;
  const queue = new Queue('raw', { connection: { url: servers.redis.url }, prefix });
  try {
    return await drain(servers, redis, { prefix, queue: 'raw', target: RAW_JOBS, way, units: RAW_JOBS }, async () => {
      for (let i = 0; i < RAW_JOBS; i += 1_000) {
        await queue.addBulk(Array.from({ length: Math.min(1_000, RAW_JOBS - i) }, (_, j) => ({ name: 'noop', data: { n: i + j }, opts: { removeOnComplete: true } })));
      }
    });
  } finally {
    await queue.close();
  }
}

/** FlowProducer flows/s through one raw worker process: a flow is done when its top job completes. */
export async function flowThroughput(servers: BenchServers, redis: Redis, kind: keyof typeof FLOWS, way: Way): Promise<Throughput> {
  const prefix = `flow-${id()}`;
  const count = FLOWS[kind];
  const producer = new FlowProducer({ connection: { url: servers.redis.url }, prefix });
  const opts = { removeOnComplete: true };
  const job = (name: string, n: number, children?: FlowJob[]): FlowJob => ({ name, queueName: 'flow', data: { n }, opts, ...(children ? { children } : {}) });
  const flow = (n: number): FlowJob =>
    kind === 'chain3'
      ? job('top', n, [job('mid', n, [job('leaf', n)])])
      : job(
          'top',
          n,
          Array.from({ length: 10 }, () => job('leaf', n)),
        );
  try {
    return await drain(servers, redis, { prefix, queue: 'flow', target: count, countName: 'top', way, units: count }, async () => {
      for (let i = 0; i < count; i += 100) await producer.addBulk(Array.from({ length: Math.min(100, count - i) }, (_, j) => flow(i + j)));
    });
  } finally {
    await producer.close();
  }
}

/** Enqueue-to-start delay of no-op jobs offered at `rate` jobs/s for `seconds`. */
export async function rawLatency(servers: BenchServers, rate: number, seconds: number): Promise<{ p50: number; p99: number }> {
  const prefix = `lat-${id()}`;
  const queue = new Queue('raw', { connection: { url: servers.redis.url }, prefix });
  const total = Math.max(1, Math.round(rate * seconds));
  const { child, lines } = await spawnRawWorker({ mode: 'latency', redisUrl: servers.redis.url, prefix, queue: 'raw', target: total });
  try {
    await offerAtRate(rate, seconds, async (count) => {
      const t = Date.now();
      await queue.addBulk(Array.from({ length: count }, () => ({ name: 'noop', data: { t }, opts: { removeOnComplete: true } })));
    });
    const delays = JSON.parse((await lines.next(/^latency /, 120_000, 'raw latency')).slice('latency '.length)) as number[];
    return { p50: percentile(delays, 50), p99: percentile(delays, 99) };
  } finally {
    await child.stop('SIGTERM', 10_000);
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/**
 * Redis bytes per queued item, measured as the growth from PARKED to 2 x PARKED queued items:
 * what each further queued item costs. Completed jobs that are kept for Bull Board (at most
 * JOBS_KEEP_COMPLETED_COUNT per queue) and stream entries (capped) are a fixed amount, not a
 * cost per item; `onAverage` gets the plain average over the first PARKED for comparison.
 */
export async function queuedBytes(redis: Redis, enqueue: (count: number, from: number) => Promise<void>, onAverage?: (bytes: number) => void): Promise<number> {
  const base = await usedMemory(redis);
  await enqueue(PARKED, 0);
  await sleep(200);
  const first = await usedMemory(redis);
  onAverage?.((first - base) / PARKED);
  await enqueue(PARKED, PARKED);
  await sleep(200);
  return ((await usedMemory(redis)) - first) / PARKED;
}

/** Redis bytes per queued raw job carrying `data` (default a no-op's `{ n }`). */
export async function rawQueuedBytes(servers: BenchServers, redis: Redis, data?: unknown): Promise<number> {
  const prefix = `park-${id()}`;
  const queue = new Queue('parked', { connection: { url: servers.redis.url }, prefix });
  try {
    return await queuedBytes(redis, async (count, from) => {
      for (let i = 0; i < count; i += 500) {
        await queue.addBulk(Array.from({ length: 500 }, (_, j) => ({ name: 'noop', data: data ?? { n: from + i + j }, opts: { removeOnComplete: true } })));
      }
    });
  } finally {
    await queue.obliterate({ force: true });
    await queue.close();
  }
}
