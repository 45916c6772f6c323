import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { BSON, MongoClient } from 'mongodb';
import { queuedBytes } from './baselines.js';
import { openWindow, perUnit, usedMemory } from './counters.js';
import { Fleet, type FleetOptions } from './fleet.js';
import { handoffSplit, type HandoffSplit } from './handoff.js';
import { offerAtRate, sleep, type BenchServers } from './harness.js';
import type { StoreKind, WorkflowName } from './workloads.js';

/**
 * The workfleet workloads on one store: 1-step, 3-step sequential and 10-way split + join
 * cases/s, each measured while submitting to a running fleet (after a warm-up that sizes the
 * measurement to about `seconds`) and as a pre-filled drain (a new fleet started on an intake
 * queue already holding as many cases); per-case costs from the running measurement; the
 * hand-off split at half the 3-step maximum; Redis bytes of queued and finished cases.
 * Every fleet has a prefix and, on FerretDB, a database of its own, dropped afterwards.
 */

export interface BenchContext {
  servers: BenchServers;
  redis: Redis;
  seconds: number;
  profileDir?: string | undefined;
}

export interface PerCase {
  bullmqJobs: number;
  redisCommands: number;
  redisScripts: number;
  /** Store operations: database commands on FerretDB, port calls on the memory store. */
  storeOps: number;
  storeOpsByType: Record<string, number>;
  storeDocs: number;
  /** Of the commits tried, the share that lost their revision to another writer. */
  conflictRate: number;
  /** CPU ms per case by process. */
  cpuMs: Record<string, number>;
}

export interface StoreFigures {
  case1PerSecond: number;
  case1PrefilledPerSecond: number;
  seq3PerSecond: number;
  seq3PrefilledPerSecond: number;
  split10PerSecond: number;
  split10PrefilledPerSecond: number;
  handoffCasesPerSecond: number;
  handoff: HandoffSplit;
  redisBytesPerQueuedCase: number;
  redisBytesPerQueuedCaseAverage: number;
  /** Over the first 200 1-step cases of a fresh fleet: the completed jobs kept for Bull Board, per case (see `measured`). */
  redisBytesPerFinishedCase: number;
  /** Logical BSON bytes of a finished case and its history (FerretDB only). */
  mongoBytesPerCase1?: number;
  mongoBytesPerSeq3?: number;
  perCase: Record<'case1' | 'seq3' | 'split10', PerCase>;
  /**
   * FerretDB only: the 10-way split with two worker processes, whose branches end in different
   * processes and race for the join's revision: cases/s and the share of commits that conflicted.
   */
  split10TwoWorkers?: { perSecond: number; conflictRate: number };
  /** One queued step job's data, for the raw "same payload" bytes. */
  stepPayload: unknown;
}

/**
 * Cases/s of `count` cases submitted to a running fleet, from the first add to the last finish.
 * With `partial`, a run that outlasts `timeoutMs` counts the cases finished by then.
 */
async function liveThroughput(fleet: Fleet, workflow: WorkflowName, count: number, timeoutMs: number, partial = false) {
  const before = fleet.completed(await fleet.stats(), workflow);
  const started = Date.now();
  await fleet.submit(workflow, count, before);
  const stats = await fleet.waitFinished(workflow, before + count, timeoutMs, partial);
  const done = fleet.completed(stats, workflow) - before;
  return { rate: done / (((stats.finished[workflow]?.lastFinishedAt ?? Date.now()) - started) / 1000), stats, done };
}

/** Cases of a fresh fleet over which Redis's growth per finished case is taken, the same on every store. */
const BYTES_SAMPLE = 200;

/**
 * Warm-up of `warmup` cases, then `rate × seconds` (at least `min`) cases measured with their
 * costs; `bounded`: each of the two ends after `timeoutMs`, with the cases finished by then
 * (for a store too slow to size by). `freshRedisBytes`: Redis's growth per case over the first
 * BYTES_SAMPLE cases of the warm-up, where every finished case still adds the jobs kept for Bull
 * Board (until JOBS_KEEP_COMPLETED_COUNT per queue, after which a finished case adds nothing)
 * and the fleet's queues are still filling their capped event streams.
 */
export async function measured(ctx: BenchContext, fleet: Fleet, workflow: WorkflowName, warmup: number, min: number, bounded?: { timeoutMs: number }) {
  const warm = (count: number) => liveThroughput(fleet, workflow, count, bounded?.timeoutMs ?? 300_000, bounded !== undefined);
  const memoryAtStart = await usedMemory(ctx.redis);
  let first = await warm(Math.min(warmup, BYTES_SAMPLE));
  const freshRedisBytes = ((await usedMemory(ctx.redis)) - memoryAtStart) / first.done;
  if (warmup > BYTES_SAMPLE) first = await warm(warmup - BYTES_SAMPLE);
  const count = Math.max(min, Math.round(first.rate * ctx.seconds));
  const ferret = fleet.kind === 'ferretdb';
  const pids = { ...fleet.pids(), redis: ctx.servers.redis.child.process.pid, ...(ferret ? { ferretdb: ctx.servers.ferretPid } : {}) };
  const close = await openWindow({ redis: ctx.redis, pids, postgresDb: ferret ? ctx.servers.postgresDb : undefined, prefix: fleet.prefix });
  const timeoutMs = bounded?.timeoutMs ?? Math.max(60_000, (6_000 * count) / first.rate);
  const { rate, stats, done } = await liveThroughput(fleet, workflow, count, timeoutMs, bounded !== undefined);
  const cost = await close();
  const costs = perUnit(cost, done);
  const ops: Record<string, number> = {};
  for (const [name, value] of Object.entries(stats.storeOps)) {
    const delta = value - (first.stats.storeOps[name] ?? 0);
    if (delta > 0) ops[name] = delta / done;
  }
  const perCase: PerCase = {
    bullmqJobs: costs.bullmqJobs,
    redisCommands: costs.redisCommands,
    redisScripts: costs.redisScripts,
    storeOps: Object.values(ops).reduce((sum, value) => sum + value, 0),
    storeOpsByType: ops,
    storeDocs: (stats.storeDocs - first.stats.storeDocs) / done,
    conflictRate: (stats.conflicts - first.stats.conflicts) / Math.max(1, (stats.portCalls.appendTransition ?? 0) - (first.stats.portCalls.appendTransition ?? 0)),
    cpuMs: costs.cpuMs,
  };
  return { rate, count, done, perCase, freshRedisBytes };
}

/**
 * Cases/s of a new fleet started on an intake queue already holding `count` cases: from the
 * first case created to the last finished. Like the raw worker of the pre-filled baseline, the
 * fleet starts cold (its code not yet optimised by V8); the bench gives it twice the running
 * measurement's cases, so that the warm-up weighs little.
 */
async function prefilled(ctx: BenchContext, kind: StoreKind, workflow: WorkflowName, count: number, timeoutMs: number): Promise<number> {
  return withFleet(
    ctx,
    kind,
    {},
    async (fleet) => {
      await fleet.submit(workflow, count);
      await fleet.start();
      const stats = await fleet.waitFinished(workflow, count, timeoutMs);
      return count / (((stats.finished[workflow]?.lastFinishedAt ?? 0) - (stats.firstCreatedAt ?? 0)) / 1000);
    },
    { started: false },
  );
}

/** Runs `use` on a new fleet (started unless told otherwise), then stops it and drops its database. */
export async function withFleet<T>(ctx: BenchContext, kind: StoreKind, options: FleetOptions, use: (fleet: Fleet) => Promise<T>, how: { started?: boolean; keepDatabase?: boolean } = {}): Promise<T> {
  const fleet = new Fleet(ctx.servers, kind, options);
  try {
    if (how.started ?? true) await fleet.start();
    return await use(fleet);
  } finally {
    await fleet.stop();
    if (kind === 'ferretdb' && !how.keepDatabase) await dropDatabase(fleet.mongoUrl);
  }
}

async function dropDatabase(url: string): Promise<void> {
  const client = new MongoClient(url);
  try {
    await client.db().dropDatabase();
  } finally {
    await client.close();
  }
}

/** Logical (BSON) bytes a finished case keeps in MongoDB: its document and its history, averaged over a sample. */
async function mongoBytesPerCase(url: string, workflow: string): Promise<number> {
  const client = new MongoClient(url);
  try {
    const db = client.db();
    const docs = await db.collection('cases').find({ workflow, status: 'completed' }).limit(50).toArray();
    let bytes = 0;
    for (const doc of docs) {
      bytes += BSON.calculateObjectSize(doc);
      for (const entry of await db.collection('history').find({ caseId: doc._id }).toArray()) bytes += BSON.calculateObjectSize(entry);
    }
    return bytes / Math.max(1, docs.length);
  } finally {
    await client.close();
  }
}

/** Redis bytes of a queued case (accepted, its step job waiting for a worker), and one step job's data. */
async function queuedCaseBytes(ctx: BenchContext, fleet: Fleet): Promise<{ marginal: number; average: number; stepPayload: unknown }> {
  const parked = new Queue('parked', { connection: { url: ctx.servers.redis.url }, prefix: fleet.prefix });
  try {
    let average = 0;
    const marginal = await queuedBytes(
      ctx.redis,
      async (count, from) => {
        await fleet.submit('parked', count, from);
        const deadline = Date.now() + 120_000;
        while ((await parked.getWaitingCount()) < from + count && Date.now() < deadline) await sleep(100);
      },
      (bytes) => (average = bytes),
    );
    const stepPayload = (await parked.getWaiting(0, 0))[0]?.data as unknown;
    await parked.obliterate({ force: true });
    return { marginal, average, stepPayload };
  } finally {
    await parked.close();
  }
}

/** Every workfleet workload on `kind`, once. */
export async function storeRun(ctx: BenchContext, kind: StoreKind, log: (line: string) => void): Promise<StoreFigures> {
  const ferret = kind === 'ferretdb';
  const scale = ferret ? 1 : 5;
  log(`${kind}: 1-step …`);
  const one = await withFleet(ctx, kind, { profileDir: ctx.profileDir }, async (fleet) => {
    // A short warm-up on FerretDB: every case stored makes its lookups slower.
    const result = await measured(ctx, fleet, 'one', 200 * scale, 300);
    const bytes = await queuedCaseBytes(ctx, fleet);
    const mongoBytes = ferret ? await mongoBytesPerCase(fleet.mongoUrl, 'one') : undefined;
    return { ...result, bytes, mongoBytes };
  });
  const onePrefilled = await prefilled(ctx, kind, 'one', 2 * one.count, Math.max(60_000, (12_000 * one.count) / one.rate));

  log(`${kind}: 3-step and hand-off …`);
  // The hand-off legs are read from the queues' event streams afterwards: keep all their entries.
  const seq3 = await withFleet(ctx, kind, { settings: { JOBS_EVENTS_MAX_LENGTH: '10000000' } }, async (fleet) => {
    const result = await measured(ctx, fleet, 'seq3', 100 * scale, 150);
    const mongoBytes = ferret ? await mongoBytesPerCase(fleet.mongoUrl, 'seq3') : undefined;
    const handoffRate = result.rate / 2;
    const before = fleet.completed(await fleet.stats(), 'seq3');
    const since = Date.now();
    let next = before;
    const offered = await offerAtRate(handoffRate, ctx.seconds, async (count) => {
      await fleet.submit('seq3', count, next);
      next += count;
    });
    await fleet.waitFinished('seq3', before + offered, 120_000);
    return { ...result, mongoBytes, handoffRate, handoff: await handoffSplit(ctx.redis, fleet.prefix, ['a', 'b', 'c'], since) };
  });
  const seq3Prefilled = await prefilled(ctx, kind, 'seq3', 2 * seq3.count, Math.max(60_000, (12_000 * seq3.count) / seq3.rate));

  log(`${kind}: 10-way split …`);
  const split = await withFleet(ctx, kind, {}, (fleet) => measured(ctx, fleet, 'split10', 30 * scale, 40));
  const splitPrefilled = await prefilled(ctx, kind, 'split10', 2 * split.count, Math.max(60_000, (12_000 * split.count) / split.rate));
  // The join's design is judged by how often branches ending in different processes collide.
  const splitTwoWorkers = ferret ? await withFleet(ctx, kind, { workers: 2 }, (fleet) => measured(ctx, fleet, 'split10', 30, 40)) : undefined;

  return {
    case1PerSecond: one.rate,
    case1PrefilledPerSecond: onePrefilled,
    seq3PerSecond: seq3.rate,
    seq3PrefilledPerSecond: seq3Prefilled,
    split10PerSecond: split.rate,
    split10PrefilledPerSecond: splitPrefilled,
    handoffCasesPerSecond: seq3.handoffRate,
    handoff: seq3.handoff,
    redisBytesPerQueuedCase: one.bytes.marginal,
    redisBytesPerQueuedCaseAverage: one.bytes.average,
    redisBytesPerFinishedCase: one.freshRedisBytes,
    ...(one.mongoBytes === undefined ? {} : { mongoBytesPerCase1: one.mongoBytes }),
    ...(seq3.mongoBytes === undefined ? {} : { mongoBytesPerSeq3: seq3.mongoBytes }),
    perCase: { case1: one.perCase, seq3: seq3.perCase, split10: split.perCase },
    ...(splitTwoWorkers ? { split10TwoWorkers: { perSecond: splitTwoWorkers.rate, conflictRate: splitTwoWorkers.perCase.conflictRate } } : {}),
    stepPayload: one.bytes.stepPayload,
  };
}
