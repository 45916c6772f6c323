import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlowProducer, Queue, type FlowJob } from 'bullmq';
import { Redis } from 'ioredis';
import { BSON, MongoClient, type Db } from 'mongodb';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { systemClock } from '../lib/ports/clock.js';
import type { ManagedChild } from '../lib/runtime/child.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { LOCAL_POSTGRES } from '../lib/runtime/postgres.js';
import { offerAtRate, sleep, spawnProcesses, spawnRawWorker, startBenchServers, type BenchServers } from './harness.js';
import { percentile, spread, type Spread } from './stats.js';

/**
 * `npm run bench`: workfleet side by side with raw BullMQ and BullMQ flows, on the same private
 * redis-server and FerretDB, in the same run, so the machine's speed cancels out of the ratios.
 * Every figure is measured `BENCH_RUNS` times (default 3) and reported as median (min–max).
 *
 * Options: `--profile DIR` writes V8 CPU profiles of the fleet's processes in the last run to
 * DIR (summarize them with `node dist/bench/profile-summary.js DIR`).
 *
 * Environment: BENCH_RUNS (default 3), BENCH_SECONDS (default 6: how long each throughput
 * measurement aims to last; case counts are sized from a warm-up to fit it).
 */

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const RAW_JOBS = 10_000;
const FLOW_CHAINS = 2_000;
const FLOW_SPLITS = 600;
/** Queued items per step of the Redis bytes measurement. */
const PARKED = 1_000;
const CONCURRENCY = '50';
const profileFlag = process.argv.indexOf('--profile');
const PROFILE_DIR = profileFlag >= 0 ? process.argv[profileFlag + 1] : undefined;

const ECHO = { task: 'demo.echo', input: { n: '${input.n}' } };
const WORKFLOWS = {
  one: { steps: [{ id: 'a', ...ECHO }] },
  seq3: {
    steps: [
      { id: 'a', ...ECHO },
      { id: 'b', ...ECHO, after: ['a'] },
      { id: 'c', ...ECHO, after: ['b'] },
    ],
  },
  split10: {
    steps: [
      ...Array.from({ length: 10 }, (_, i) => ({ id: `p${i}`, ...ECHO })),
      { id: 'join', task: 'demo.echo', input: { n: '${input.n}' }, after: Array.from({ length: 10 }, (_, i) => `p${i}`) },
    ],
  },
  // Its step waits on a queue no worker serves: what Redis holds for a case waiting for a worker.
  parked: { steps: [{ id: 'a', ...ECHO, queue: 'parked' }] },
} as const;

interface RunFigures {
  rawJobsPerSecond: number;
  rawLatencyP50Ms: number;
  rawLatencyP99Ms: number;
  rawLatencyJobsPerSecond: number;
  flowChain3PerSecond: number;
  flowSplit10PerSecond: number;
  case1PerSecond: number;
  seq3PerSecond: number;
  split10PerSecond: number;
  case1TwoWorkersPerSecond: number;
  handoffP50Ms: number;
  handoffP99Ms: number;
  handoffCasesPerSecond: number;
  redisBytesPerRawJob: number;
  redisBytesPerRawJobSamePayload: number;
  redisBytesPerQueuedCase: number;
  redisBytesPerQueuedCaseAverage: number;
  cpuMsPerCase1Ferretdb: number;
  cpuMsPerCase1Postgres: number;
  cpuMsPerCase1Redis: number;
  cpuMsPerCase1Scheduler: number;
  cpuMsPerCase1Worker: number;
  redisBytesPerFinishedCase: number;
  mongoBytesPerCase1: number;
  mongoBytesPerSeq3: number;
}

const log = (message: string) => process.stdout.write(`${message}\n`);
const id = () => randomBytes(4).toString('hex');

/** CPU milliseconds a process has used so far (Linux /proc; 0 where unavailable). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100/s).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU ms so far of each PostgreSQL backend serving `database` (FerretDB's pool), not of other
 * users' backends. Compare two readings per pid: a backend opened in between counts in full.
 */
function postgresCpuMs(database: string | undefined): Map<number, number> {
  const readings = new Map<number, number>();
  if (database === undefined) return readings;
  const pids = execFileSync('psql', [`${LOCAL_POSTGRES}/postgres`, '-Atc', `select pid from pg_stat_activity where datname = '${database}'`], { encoding: 'utf8' });
  for (const line of pids.split('\n')) if (/^\d+$/.test(line)) readings.set(Number(line), cpuMs(Number(line)));
  return readings;
}

function postgresCpuSince(before: Map<number, number>, database: string | undefined): number {
  let total = 0;
  for (const [pid, ms] of postgresCpuMs(database)) total += ms - (before.get(pid) ?? 0);
  return total;
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
}

/**
 * Redis bytes per queued item, measured as the growth from PARKED to 2 x PARKED queued items:
 * what each further queued item costs. Completed jobs that are kept for Bull Board (at most
 * JOBS_KEEP_COMPLETED_COUNT per queue) and stream entries (capped) are a fixed amount, not a
 * cost per item; `onAverage` gets the plain average over the first PARKED for comparison.
 */
async function queuedBytes(redis: Redis, enqueue: (count: number, from: number) => Promise<void>, onAverage?: (bytes: number) => void): Promise<number> {
  const base = await usedMemory(redis);
  await enqueue(PARKED, 0);
  await sleep(200);
  const first = await usedMemory(redis);
  onAverage?.((first - base) / PARKED);
  await enqueue(PARKED, PARKED);
  await sleep(200);
  return ((await usedMemory(redis)) - first) / PARKED;
}

async function obliterate(redisUrl: string, prefix: string, name: string): Promise<void> {
  const queue = new Queue(name, { connection: { url: redisUrl }, prefix });
  await queue.obliterate({ force: true });
  await queue.close();
}

// --- raw BullMQ and flows ---

/** No-op jobs through one raw worker process (concurrency 50): jobs/s from the first add to the last completion. */
async function rawThroughput(redisUrl: string): Promise<number> {
  const prefix = `raw-${id()}`;
  const queue = new Queue('raw', { connection: { url: redisUrl }, prefix });
  const { child, lines } = await spawnRawWorker({ mode: 'noop', redisUrl, prefix, queue: 'raw', target: RAW_JOBS });
  const started = Date.now();
  for (let i = 0; i < RAW_JOBS; i += 1_000) {
    await queue.addBulk(Array.from({ length: Math.min(1_000, RAW_JOBS - i) }, (_, j) => ({ name: 'noop', data: { n: i + j }, opts: { removeOnComplete: true } })));
  }
  const done = Number((await lines.next(/^done /, 120_000, 'raw throughput')).split(' ')[1]);
  await child.stop('SIGTERM', 10_000);
  await queue.obliterate({ force: true });
  await queue.close();
  return RAW_JOBS / ((done - started) / 1000);
}

/** Enqueue-to-start delay of no-op jobs offered at `rate` jobs/s. */
async function rawLatency(redisUrl: string, rate: number): Promise<{ p50: number; p99: number }> {
  const prefix = `lat-${id()}`;
  const queue = new Queue('raw', { connection: { url: redisUrl }, prefix });
  const total = Math.max(1, Math.round(rate * SECONDS));
  const { child, lines } = await spawnRawWorker({ mode: 'latency', redisUrl, prefix, queue: 'raw', target: total });
  await offerAtRate(rate, SECONDS, async (count) => {
    const t = Date.now();
    await queue.addBulk(Array.from({ length: count }, () => ({ name: 'noop', data: { t }, opts: { removeOnComplete: true } })));
  });
  const delays = JSON.parse((await lines.next(/^latency /, 60_000, 'raw latency')).slice('latency '.length)) as number[];
  await child.stop('SIGTERM', 10_000);
  await queue.obliterate({ force: true });
  await queue.close();
  return { p50: percentile(delays, 50), p99: percentile(delays, 99) };
}

/** BullMQ flows through one raw worker process: flows/s from the first add to the last parent's completion. */
async function flowThroughput(redisUrl: string, kind: 'chain3' | 'split10'): Promise<number> {
  const prefix = `flow-${id()}`;
  const count = kind === 'chain3' ? FLOW_CHAINS : FLOW_SPLITS;
  const producer = new FlowProducer({ connection: { url: redisUrl }, prefix });
  const { child, lines } = await spawnRawWorker({ mode: 'noop', redisUrl, prefix, queue: 'flow', target: count, countName: 'top' });
  const opts = { removeOnComplete: true };
  const job = (name: string, n: number, children?: FlowJob[]): FlowJob => ({ name, queueName: 'flow', data: { n }, opts, ...(children ? { children } : {}) });
  const flow = (n: number): FlowJob =>
    kind === 'chain3' ? job('top', n, [job('mid', n, [job('leaf', n)])]) : job('top', n, Array.from({ length: 10 }, () => job('leaf', n)));
  const started = Date.now();
  for (let i = 0; i < count; i += 100) await producer.addBulk(Array.from({ length: Math.min(100, count - i) }, (_, j) => flow(i + j)));
  const done = Number((await lines.next(/^done /, 120_000, `flow ${kind}`)).split(' ')[1]);
  await child.stop('SIGTERM', 10_000);
  const queue = new Queue('flow', { connection: { url: redisUrl }, prefix });
  await queue.obliterate({ force: true });
  await Promise.all([queue.close(), producer.close()]);
  return count / ((done - started) / 1000);
}

// --- workfleet ---

/** One workfleet fleet (scheduler + workers) on a database and prefix of its own. */
class Fleet {
  readonly prefix = `wf-${id()}`;
  readonly dbName = `bench_${id()}`;
  readonly children: ManagedChild[] = [];
  private client: MongoClient | undefined;
  db!: Db;
  readonly intake: Queue;

  constructor(
    private readonly servers: BenchServers,
    private readonly profileDir: string | undefined,
  ) {
    this.intake = new Queue('cases', { connection: { url: servers.redis.url }, prefix: this.prefix });
  }

  get env(): Record<string, string> {
    return { REDIS_URL: this.servers.redis.url, MONGO_URL: `${this.servers.mongoBase}${this.dbName}`, BULLMQ_PREFIX: this.prefix, WORKER_CONCURRENCY: CONCURRENCY };
  }

  async start(workers: number): Promise<void> {
    const store = new MongoStore({ url: this.env.MONGO_URL ?? '' });
    await store.init();
    const registry = new WorkflowRegistry(store, systemClock);
    for (const [name, definition] of Object.entries(WORKFLOWS)) await registry.apply({ name, ...definition });
    await store.close();
    this.client = new MongoClient(this.env.MONGO_URL ?? '');
    await this.client.connect();
    this.db = this.client.db();
    await this.add(['scheduler', ...Array.from({ length: workers }, () => 'worker')]);
  }

  async add(roles: string[]): Promise<void> {
    this.children.push(...(await spawnProcesses(roles, this.env, this.profileDir ? { profileDir: this.profileDir } : {})));
    await sleep(300);
  }

  async submit(workflow: string, count: number, from = 0): Promise<void> {
    for (let i = 0; i < count; i += 500) {
      await this.intake.addBulk(Array.from({ length: Math.min(500, count - i) }, (_, j) => ({ name: 'start', data: { workflow, input: { n: from + i + j } } })));
    }
  }

  /** Counting is slow on FerretDB (it cannot pass a count down to its backend): only between measurements. */
  finished(workflow: string): Promise<number> {
    return this.db.collection('cases').countDocuments({ workflow, status: 'completed' });
  }

  /**
   * Waits until every case submitted so far has finished: the intake queue is empty (so every
   * case exists) and none of the workflow's cases is open. Both checks are cheap on every store
   * (a queue count, equality queries returning at most one document), so polling them does not
   * slow down what is being measured.
   */
  async waitFinished(workflow: string, count: number, timeoutMs = 240_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const cases = this.db.collection('cases');
    for (;;) {
      const intake = await this.intake.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
      if (Object.values(intake).every((value) => value === 0)) {
        let open = false;
        for (const status of ['running', 'pending', 'waiting']) {
          open = (await cases.findOne({ workflow, status }, { projection: { _id: 1 } })) !== null;
          if (open) break;
        }
        if (!open) break;
      }
      if (Date.now() > deadline) throw new Error(`${workflow}: cases still open after ${timeoutMs} ms`);
      await sleep(250);
    }
    const completed = await this.finished(workflow);
    if (completed < count) {
      const failed = await cases.countDocuments({ workflow, status: 'failed' });
      throw new Error(`${workflow}: ${completed} of ${count} cases completed (${failed} failed)`);
    }
  }

  /** Cases/s of `count` cases from the first add to the last case's finish. */
  async throughput(workflow: string, count: number): Promise<number> {
    const before = await this.finished(workflow);
    const started = Date.now();
    await this.submit(workflow, count, before);
    await this.waitFinished(workflow, before + count);
    const last = await this.db.collection('cases').find({ workflow }, { projection: { finishedAt: 1 } }).sort({ finishedAt: -1 }).limit(1).next();
    const finishedAt = (last?.finishedAt as Date | undefined)?.getTime() ?? Date.now();
    return count / ((finishedAt - started) / 1000);
  }

  /** A warm-up that also tells how many cases fill about SECONDS of measurement. */
  async sized(workflow: string, warmup: number, min: number): Promise<number> {
    const rate = await this.throughput(workflow, warmup);
    return Math.max(min, Math.round(rate * SECONDS));
  }

  async stop(): Promise<void> {
    await this.intake.close();
    await Promise.all(this.children.map((child) => child.stop('SIGTERM', 30_000)));
    await this.client?.close();
  }
}

/** Runs `measure` on a fresh fleet (a scheduler and `workers` worker processes) and stops it. */
async function withFleet<T>(servers: BenchServers, workers: number, profileDir: string | undefined, measure: (fleet: Fleet) => Promise<T>): Promise<T> {
  const fleet = new Fleet(servers, profileDir);
  try {
    await fleet.start(workers);
    return await measure(fleet);
  } finally {
    await fleet.stop();
  }
}

/** Logical (BSON) bytes a finished case keeps in MongoDB: its document and its history, averaged over a sample. */
async function mongoBytesPerCase(db: Db, workflow: string): Promise<number> {
  const docs = await db.collection('cases').find({ workflow, status: 'completed' }).limit(50).toArray();
  let bytes = 0;
  for (const doc of docs) {
    bytes += BSON.calculateObjectSize(doc);
    for (const entry of await db.collection('history').find({ caseId: doc._id }).toArray()) bytes += BSON.calculateObjectSize(entry);
  }
  return bytes / Math.max(1, docs.length);
}

async function oneRun(servers: BenchServers, profileDir: string | undefined): Promise<RunFigures> {
  const redisUrl = servers.redis.url;
  const redis = new Redis(redisUrl);
  const parkedRawPrefix = `park-${id()}`;
  try {
    log('  raw BullMQ …');
    const rawJobsPerSecond = await rawThroughput(redisUrl);
    log('  flows …');
    const flowChain3PerSecond = await flowThroughput(redisUrl, 'chain3');
    const flowSplit10PerSecond = await flowThroughput(redisUrl, 'split10');

    const redisBytesPerRawJob = await queuedBytes(redis, async (count, from) => {
      const queue = new Queue('parked', { connection: { url: redisUrl }, prefix: parkedRawPrefix });
      for (let i = 0; i < count; i += 500) await queue.addBulk(Array.from({ length: 500 }, (_, j) => ({ name: 'noop', data: { n: from + i + j }, opts: { removeOnComplete: true } })));
      await queue.close();
    });
    await obliterate(redisUrl, parkedRawPrefix, 'parked');

    // Each workload gets a fleet and a database of its own: FerretDB v1 scans a collection for
    // every lookup by _id, so a workload measured on the leftovers of another would pay for them.
    log('  workfleet 1-step …');
    let n1 = 0;
    let redisBytesPerFinishedCase = 0;
    let mongoBytesPerCase1 = 0;
    const cpuPerCase: Record<string, number> = {};
    const case1PerSecond = await withFleet(servers, 1, profileDir, async (fleet) => {
      n1 = await fleet.sized('one', 200, 300);
      const before = await usedMemory(redis);
      const [scheduler, worker] = fleet.children.map((child) => child.process.pid);
      const pids = { ferretdb: servers.ferretPid, redis: servers.redis.child.process.pid, scheduler, worker };
      const postgresBefore = postgresCpuMs(servers.postgresDb);
      const cpuBefore = { ...Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid)])), postgres: 0 };
      const rate = await fleet.throughput('one', n1);
      const cpuAfter = { ...Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid)])), postgres: postgresCpuSince(postgresBefore, servers.postgresDb) };
      for (const name of Object.keys(cpuAfter) as Array<keyof typeof cpuAfter>) cpuPerCase[name] = ((cpuAfter[name] ?? 0) - (cpuBefore[name] ?? 0)) / n1;
      redisBytesPerFinishedCase = ((await usedMemory(redis)) - before) / n1;
      mongoBytesPerCase1 = await mongoBytesPerCase(fleet.db, 'one');
      return rate;
    });

    log('  workfleet 3-step and hand-off …');
    let mongoBytesPerSeq3 = 0;
    const handoffs: number[] = [];
    let handoffCasesPerSecond = 0;
    const seq3PerSecond = await withFleet(servers, 1, undefined, async (fleet) => {
      const n3 = await fleet.sized('seq3', 100, 150);
      const rate = await fleet.throughput('seq3', n3);
      mongoBytesPerSeq3 = await mongoBytesPerCase(fleet.db, 'seq3');
      // Hand-off latency at half the measured maximum rate of 3-step cases.
      handoffCasesPerSecond = rate / 2;
      const before = await fleet.finished('seq3');
      const offeredAt = new Date();
      let next = before;
      const offered = await offerAtRate(handoffCasesPerSecond, SECONDS, async (count) => {
        await fleet.submit('seq3', count, next);
        next += count;
      });
      await fleet.waitFinished('seq3', before + offered);
      const cases = await fleet.db.collection('cases').find({ workflow: 'seq3', createdAt: { $gte: offeredAt } }, { projection: { steps: 1 } }).toArray();
      for (const doc of cases) {
        const steps = doc.steps as Record<string, { startedAt?: number; finishedAt?: number }>;
        for (const [from, to] of [['a', 'b'], ['b', 'c']] as const) {
          const finished = steps[from]?.finishedAt;
          const started = steps[to]?.startedAt;
          if (finished !== undefined && started !== undefined) handoffs.push(started - finished);
        }
      }
      return rate;
    });

    log('  workfleet 10-way split …');
    const split10PerSecond = await withFleet(servers, 1, undefined, async (fleet) => fleet.throughput('split10', await fleet.sized('split10', 30, 40)));

    log('  workfleet, 2 worker processes …');
    let redisBytesPerQueuedCase = 0;
    let redisBytesPerQueuedCaseAverage = 0;
    let redisBytesPerRawJobSamePayload = 0;
    const case1TwoWorkersPerSecond = await withFleet(servers, 2, undefined, async (fleet) => {
      const rate = await fleet.throughput('one', Math.max(n1, await fleet.sized('one', 200, 300)));
      // Redis bytes of a queued case: accepted, its step job waiting for a worker.
      const parked = new Queue('parked', { connection: { url: redisUrl }, prefix: fleet.prefix });
      let average = 0;
      redisBytesPerQueuedCase = await queuedBytes(
        redis,
        async (count, from) => {
          await fleet.submit('parked', count, from);
          while ((await parked.getWaitingCount()) < from + count) await sleep(100);
        },
        (bytes) => (average = bytes),
      );
      redisBytesPerQueuedCaseAverage = average;
      // The same, for raw jobs carrying what a step job carries: Redis keeps small hashes compact.
      const sample = (await parked.getWaiting(0, 0))[0]?.data as unknown;
      await parked.obliterate({ force: true });
      await parked.close();
      const samePrefix = `same-${id()}`;
      redisBytesPerRawJobSamePayload = await queuedBytes(redis, async (count) => {
        const queue = new Queue('parked', { connection: { url: redisUrl }, prefix: samePrefix });
        for (let i = 0; i < count; i += 500) await queue.addBulk(Array.from({ length: 500 }, () => ({ name: 'noop', data: sample, opts: { removeOnComplete: true } })));
        await queue.close();
      });
      await obliterate(redisUrl, samePrefix, 'parked');
      return rate;
    });

    // Raw BullMQ at the same load as the hand-off measurement: as many jobs/s as its step jobs.
    log('  raw BullMQ latency …');
    const rawLatencyJobsPerSecond = handoffCasesPerSecond * 3;
    const raw = await rawLatency(redisUrl, rawLatencyJobsPerSecond);
    return {
      rawJobsPerSecond,
      rawLatencyP50Ms: raw.p50,
      rawLatencyP99Ms: raw.p99,
      rawLatencyJobsPerSecond,
      flowChain3PerSecond,
      flowSplit10PerSecond,
      case1PerSecond,
      seq3PerSecond,
      split10PerSecond,
      case1TwoWorkersPerSecond,
      handoffP50Ms: percentile(handoffs, 50),
      handoffP99Ms: percentile(handoffs, 99),
      handoffCasesPerSecond,
      redisBytesPerRawJob,
      redisBytesPerRawJobSamePayload,
      redisBytesPerQueuedCase,
      redisBytesPerQueuedCaseAverage,
      cpuMsPerCase1Ferretdb: cpuPerCase.ferretdb ?? 0,
      cpuMsPerCase1Postgres: cpuPerCase.postgres ?? 0,
      cpuMsPerCase1Redis: cpuPerCase.redis ?? 0,
      cpuMsPerCase1Scheduler: cpuPerCase.scheduler ?? 0,
      cpuMsPerCase1Worker: cpuPerCase.worker ?? 0,
      redisBytesPerFinishedCase,
      mongoBytesPerCase1,
      mongoBytesPerSeq3,
    };
  } finally {
    redis.disconnect();
  }
}

const ROWS: Array<{ key: keyof RunFigures; label: string; unit: string; digits: number }> = [
  { key: 'rawJobsPerSecond', label: 'raw BullMQ no-op jobs (1 proc, c=50)', unit: 'jobs/s', digits: 0 },
  { key: 'flowChain3PerSecond', label: 'FlowProducer 3-job chains', unit: 'flows/s', digits: 0 },
  { key: 'flowSplit10PerSecond', label: 'FlowProducer parent + 10 children', unit: 'flows/s', digits: 0 },
  { key: 'case1PerSecond', label: 'workfleet 1-step cases', unit: 'cases/s', digits: 1 },
  { key: 'case1TwoWorkersPerSecond', label: 'workfleet 1-step cases, 2 workers', unit: 'cases/s', digits: 1 },
  { key: 'seq3PerSecond', label: 'workfleet 3-step sequential cases', unit: 'cases/s', digits: 1 },
  { key: 'split10PerSecond', label: 'workfleet 10-way split + join cases', unit: 'cases/s', digits: 1 },
  { key: 'handoffCasesPerSecond', label: 'hand-off load (half max seq3)', unit: 'cases/s', digits: 1 },
  { key: 'handoffP50Ms', label: 'workfleet step hand-off p50', unit: 'ms', digits: 1 },
  { key: 'handoffP99Ms', label: 'workfleet step hand-off p99', unit: 'ms', digits: 1 },
  { key: 'rawLatencyJobsPerSecond', label: 'raw latency load (3x hand-off load)', unit: 'jobs/s', digits: 1 },
  { key: 'rawLatencyP50Ms', label: 'raw BullMQ enqueue-to-start p50', unit: 'ms', digits: 1 },
  { key: 'rawLatencyP99Ms', label: 'raw BullMQ enqueue-to-start p99', unit: 'ms', digits: 1 },
  { key: 'redisBytesPerRawJob', label: 'Redis bytes per queued raw job', unit: 'B', digits: 0 },
  { key: 'redisBytesPerQueuedCase', label: 'Redis bytes per queued case', unit: 'B', digits: 0 },
  { key: 'redisBytesPerQueuedCaseAverage', label: '  same, average of first 1,000', unit: 'B', digits: 0 },
  { key: 'redisBytesPerRawJobSamePayload', label: 'Redis bytes per raw job, step payload', unit: 'B', digits: 0 },
  { key: 'redisBytesPerFinishedCase', label: 'Redis bytes per finished 1-step case', unit: 'B', digits: 0 },
  { key: 'mongoBytesPerCase1', label: 'MongoDB bytes per 1-step case', unit: 'B', digits: 0 },
  { key: 'mongoBytesPerSeq3', label: 'MongoDB bytes per 3-step case', unit: 'B', digits: 0 },
  { key: 'cpuMsPerCase1Ferretdb', label: 'CPU per 1-step case: FerretDB', unit: 'ms', digits: 2 },
  { key: 'cpuMsPerCase1Postgres', label: 'CPU per 1-step case: PostgreSQL', unit: 'ms', digits: 2 },
  { key: 'cpuMsPerCase1Redis', label: 'CPU per 1-step case: redis-server', unit: 'ms', digits: 2 },
  { key: 'cpuMsPerCase1Scheduler', label: 'CPU per 1-step case: scheduler', unit: 'ms', digits: 2 },
  { key: 'cpuMsPerCase1Worker', label: 'CPU per 1-step case: worker', unit: 'ms', digits: 2 },
];

async function main(): Promise<void> {
  const benchStarted = Date.now();
  const servers = await startBenchServers();
  const runs: RunFigures[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      log(`run ${run + 1}/${RUNS}`);
      runs.push(await oneRun(servers, run === RUNS - 1 ? PROFILE_DIR : undefined));
    }
  } finally {
    await servers.stop();
  }
  const figures = Object.fromEntries(ROWS.map(({ key }) => [key, spread(runs.map((figures) => figures[key]))])) as Record<keyof RunFigures, Spread>;
  const m = (key: keyof RunFigures) => figures[key].median;
  const ratios = {
    seq3VsFlow: m('seq3PerSecond') / m('flowChain3PerSecond'),
    split10VsFlow: m('split10PerSecond') / m('flowSplit10PerSecond'),
    case1VsRaw: m('case1PerSecond') / m('rawJobsPerSecond'),
    handoffP99VsRaw: m('handoffP99Ms') / m('rawLatencyP99Ms'),
    redisBytesVsRaw: m('redisBytesPerQueuedCase') / m('redisBytesPerRawJob'),
    twoWorkersVsOne: m('case1TwoWorkersPerSecond') / m('case1PerSecond'),
  };
  const targets = {
    seq3VsFlow: { target: '>= 1.0', met: ratios.seq3VsFlow >= 1 },
    split10VsFlow: { target: '>= 1.0', met: ratios.split10VsFlow >= 1 },
    case1VsRaw: { target: '>= 0.5', met: ratios.case1VsRaw >= 0.5 },
    handoffP99VsRaw: { target: '<= 2.0', met: ratios.handoffP99VsRaw <= 2 },
    redisBytesVsRaw: { target: '<= 2.0', met: ratios.redisBytesVsRaw <= 2 },
  };
  const results = {
    at: new Date().toISOString(),
    store: servers.store,
    machine: { cpus: cpus().length, node: process.version },
    runs: RUNS,
    secondsPerMeasurement: SECONDS,
    durationSeconds: Math.round((Date.now() - benchStarted) / 1000),
    figures,
    ratios,
    targets,
  };
  const format = (value: number, digits: number) => value.toFixed(digits);
  const table = [
    '',
    `store: ${results.store}; ${cpus().length} CPUs; ${RUNS} runs each, median (min–max)`,
    ...ROWS.map(({ key, label, unit, digits }) => {
      const stats = figures[key];
      return `${label.padEnd(40)} ${format(stats.median, digits).padStart(9)} ${unit.padEnd(8)} (${format(stats.min, digits)}–${format(stats.max, digits)})`;
    }),
    '',
    ...Object.entries(targets).map(
      ([name, { target, met }]) => `ratio ${name.padEnd(16)} ${ratios[name as keyof typeof ratios].toFixed(3).padStart(8)}   target ${target}   ${met ? 'met' : 'NOT met'}`,
    ),
    `ratio ${'twoWorkersVsOne'.padEnd(16)} ${ratios.twoWorkersVsOne.toFixed(3).padStart(8)}`,
    `(${results.durationSeconds} s)`,
    '',
  ];
  log(table.join('\n'));
  mkdirSync(join(packageRoot(), 'bench', 'results'), { recursive: true });
  writeFileSync(join(packageRoot(), 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
}

await main();
