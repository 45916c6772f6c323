import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { stopManagedChildrenOnExit } from '../lib/local-servers/child.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { flowThroughput, rawLatency, rawQueuedBytes, rawThroughput } from './baselines.js';
import { assertNoFleet } from './fleet.js';
import { startBenchServers, waitQuiet, type BenchServers } from './harness.js';
import { aggregate, perCaseSummary, ratios, table, TARGETS, type BaselineFigures, type RunFigures, type StoreRunFigures } from './report.js';
import { costModel } from './model.js';
import { scaleRun, type ScaleFigures } from './scale.js';
import { storeRun, type BenchContext } from './workfleet.js';
import { STORES } from './workloads.js';

/**
 * `npm run bench`: workfleet side by side with raw BullMQ and BullMQ flows, on one private
 * redis-server and FerretDB, in one run, so the machine's speed cancels out of the ratios.
 *
 * Each run measures, in this order: the baselines (raw no-op jobs, FlowProducer 3-chains and
 * parent + 10, each over at least 20,000 jobs, enqueue-while-draining and pre-filled drain)
 * while no fleet process exists and the servers are idle; then every workfleet workload on the
 * memory store (the engine's own ceiling: scheduler and worker in one process, as one raw
 * worker process is BullMQ's) and on FerretDB (a scheduler and a worker process), each with its
 * raw enqueue-to-start latency at the same job rate, measured after that store's fleets are
 * gone. After the runs, once: the scale rows (the 1-step workload on an empty store and on
 * `--preload` finished cases, and the server CPU of an update and a find by `_id` at 1,000 and
 * at that many cases, on PostgreSQL and on SQLite). See bench/workfleet.ts,
 * bench/baselines.ts and bench/scale.ts for what each figure is.
 *
 * Options: `--preload N` (default 100,000; 0 skips the scale rows), `--no-sqlite` (skips the
 * SQLite operation costs, for which a second FerretDB is preloaded with N cases), `--profile DIR` (V8 CPU
 * profiles of the 1-step fleet's processes in the last run; `node dist/bench/profile-summary.js DIR`).
 *
 * Environment: BENCH_STORES (default `memory,ferretdb`), BENCH_RUNS (default 2), BENCH_SECONDS (default 5: how long each throughput
 * measurement aims to last; case counts are sized from a warm-up to fit it). Chosen to keep the
 * whole bench under 15 minutes on a 2-core machine: a run took two to two and a half minutes
 * there and the scale rows (100,000 cases, both backends) three and a half, eight minutes in
 * all; a third run, or the six seconds the bench used before, would bring it too near the limit
 * on a shared machine.
 */

const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
/** BENCH_STORES=memory measures the engine's own ceiling alone (a quick look while working on it). */
const MEASURED_STORES = STORES.filter((store) => (process.env.BENCH_STORES ?? STORES.join(',')).split(',').includes(store));
const option = (name: string) => {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1] : undefined;
};
const PROFILE_DIR = option('--profile');
const PRELOAD = Number(option('--preload') ?? 100_000);
const SQLITE = !process.argv.includes('--no-sqlite');

const benchStarted = Date.now();
/** Progress lines carry the seconds since the bench started, to see where the time goes. */
const log = (message: string) => process.stdout.write(`[${String(Math.round((Date.now() - benchStarted) / 1000)).padStart(4)} s] ${message}\n`);

async function baselines(servers: BenchServers, redis: Redis): Promise<BaselineFigures> {
  assertNoFleet('the baselines');
  const serversIdleCpuMsPerSecond = await waitQuiet(servers);
  log(`baselines (servers at ${serversIdleCpuMsPerSecond.toFixed(0)} ms/s of CPU): raw BullMQ …`);
  const raw = await rawThroughput(servers, redis, 'draining');
  const rawPrefilled = await rawThroughput(servers, redis, 'prefilled');
  log('baselines: flows …');
  const chain = await flowThroughput(servers, redis, 'chain3', 'draining');
  const chainPrefilled = await flowThroughput(servers, redis, 'chain3', 'prefilled');
  const split = await flowThroughput(servers, redis, 'split10', 'draining');
  const splitPrefilled = await flowThroughput(servers, redis, 'split10', 'prefilled');
  const missing = { bullmqJobs: 0, redisCommands: 0, redisScripts: 0, cpuMs: {} };
  return {
    rawPerSecond: raw.perSecond,
    rawPrefilledPerSecond: rawPrefilled.perSecond,
    flowChain3PerSecond: chain.perSecond,
    flowChain3PrefilledPerSecond: chainPrefilled.perSecond,
    flowSplit10PerSecond: split.perSecond,
    flowSplit10PrefilledPerSecond: splitPrefilled.perSecond,
    rawPerJob: raw.perUnit ?? missing,
    flowChain3PerFlow: chain.perUnit ?? missing,
    flowSplit10PerFlow: split.perUnit ?? missing,
    redisBytesPerRawJob: await rawQueuedBytes(servers, redis),
    redisBytesPerRawJobSamePayload: 0,
    serversIdleCpuMsPerSecond,
  };
}

async function oneRun(servers: BenchServers, redis: Redis, profileDir: string | undefined): Promise<RunFigures> {
  const ctx: BenchContext = { servers, redis, seconds: SECONDS, profileDir };
  const base = await baselines(servers, redis);
  const stores = {} as RunFigures['stores'];
  for (const kind of MEASURED_STORES) {
    const { stepPayload, ...figures } = await storeRun(ctx, kind, log);
    // The raw job carrying a step's payload, once: the payload is the same on every store.
    if (kind === 'memory') base.redisBytesPerRawJobSamePayload = await rawQueuedBytes(servers, redis, stepPayload);
    // Raw BullMQ at the same load as the hand-off measurement (as many jobs/s as its step jobs), with no fleet left.
    assertNoFleet('the raw latency');
    await waitQuiet(servers);
    const rawLatencyJobsPerSecond = figures.handoffCasesPerSecond * 3;
    log(`${kind}: raw BullMQ latency at ${rawLatencyJobsPerSecond.toFixed(0)} jobs/s …`);
    const latency = await rawLatency(servers, rawLatencyJobsPerSecond, SECONDS);
    const run: StoreRunFigures = { ...figures, rawLatencyJobsPerSecond, rawLatencyP50Ms: latency.p50, rawLatencyP99Ms: latency.p99 };
    stores[kind] = run;
  }
  return { baselines: base, stores };
}

async function main(): Promise<void> {
  // An interrupted benchmark leaves no Redis, FerretDB or fleet process running.
  stopManagedChildrenOnExit();
  const servers = await startBenchServers();
  const redis = new Redis(servers.redis.url);
  const runs: RunFigures[] = [];
  let scale: ScaleFigures | undefined;
  let scaleError: string | undefined;
  const failedRuns: string[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      log(`run ${run + 1}/${RUNS}`);
      try {
        runs.push(await oneRun(servers, redis, run === RUNS - 1 ? PROFILE_DIR : undefined));
      } catch (error) {
        // A run that fails (a fleet past its timeout on a busy machine) is reported, and the others still count.
        failedRuns.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
        log(`run ${run + 1} failed: ${failedRuns.at(-1)}`);
      }
    }
    if (PRELOAD > 0) {
      // Ten minutes of runs are not lost to a failure here: the table is printed without the scale rows.
      scale = await scaleRun({ servers, redis, seconds: SECONDS }, PRELOAD, SQLITE, log).catch((error: unknown) => {
        scaleError = error instanceof Error ? (error.stack ?? error.message) : String(error);
        log(`scale rows failed: ${scaleError}`);
        return undefined;
      });
    }
  } finally {
    redis.disconnect();
    await servers.stop();
  }
  const figures = aggregate(runs);
  const byStore = Object.fromEntries(
    STORES.map((store) => {
      const values = ratios(figures, store);
      return [
        store,
        {
          ratios: values,
          ratiosPrefilled: ratios(figures, store, true),
          targets: Object.fromEntries(Object.entries(TARGETS).map(([name, { target, met }]) => [name, { target, met: met(values[name as keyof typeof values]) }])),
        },
      ];
    }),
  );
  const durationSeconds = Math.round((Date.now() - benchStarted) / 1000);
  const results = {
    at: new Date().toISOString(),
    store: servers.store,
    machine: { cpus: cpus().length, node: process.version },
    runs: runs.length,
    secondsPerMeasurement: SECONDS,
    durationSeconds,
    layout: {
      memory: 'MemoryStore; scheduler and worker in one process',
      ferretdb: `${servers.store}; a scheduler process and a worker process`,
      baselines: 'one raw BullMQ worker process',
      concurrency: 50,
    },
    figures,
    stores: byStore,
    // As before this bench measured two stores: FerretDB's.
    ratios: byStore.ferretdb?.ratios,
    targets: byStore.ferretdb?.targets,
    perCase: perCaseSummary(figures, 'ferretdb'),
    ...(scale
      ? {
          scale: { preloadedCases: scale.preloadedCases, case1PerSecondEmpty: scale.case1PerSecondEmpty, case1PerSecondPreloaded: scale.case1PerSecondPreloaded },
          storeOpCostMs: scale.storeOpCostMs,
          storeOpCostMsByBackend: scale.storeOpCostMsByBackend,
        }
      : {}),
    ...(failedRuns.length > 0 ? { failedRuns } : {}),
    ...(scaleError ? { scaleError } : {}),
  };
  process.stdout.write(table(figures, scale, { store: servers.store, cpus: cpus().length, runs: runs.length, seconds: SECONDS, durationSeconds }));
  process.stdout.write(`${costModel(figures, scale).join('\n')}\n`);
  mkdirSync(join(packageRoot(), 'bench', 'results'), { recursive: true });
  writeFileSync(join(packageRoot(), 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
}

await main();
