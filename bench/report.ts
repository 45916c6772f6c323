import type { Throughput } from './baselines.js';
import type { ScaleFigures } from './scale.js';
import { spread, type Spread } from './stats.js';
import type { StoreFigures } from './workfleet.js';
import { STORES, type StoreKind } from './workloads.js';

/** How the figures of several runs become bench/results/latest.json and the printed table. */

export interface BaselineFigures {
  rawPerSecond: number;
  rawPrefilledPerSecond: number;
  flowChain3PerSecond: number;
  flowChain3PrefilledPerSecond: number;
  flowSplit10PerSecond: number;
  flowSplit10PrefilledPerSecond: number;
  rawPerJob: NonNullable<Throughput['perUnit']>;
  flowChain3PerFlow: NonNullable<Throughput['perUnit']>;
  flowSplit10PerFlow: NonNullable<Throughput['perUnit']>;
  redisBytesPerRawJob: number;
  redisBytesPerRawJobSamePayload: number;
  /** CPU ms per second of FerretDB, its PostgreSQL backends and Redis just before the baselines. */
  serversIdleCpuMsPerSecond: number;
}

export type StoreRunFigures = Omit<StoreFigures, 'stepPayload'> & { rawLatencyJobsPerSecond: number; rawLatencyP50Ms: number; rawLatencyP99Ms: number };

export interface RunFigures {
  baselines: BaselineFigures;
  stores: Record<StoreKind, StoreRunFigures>;
}

type SpreadTree = { [key: string]: SpreadTree | Spread };

function flatten(value: unknown, prefix: string, into: Map<string, number[]>): void {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) into.set(prefix, [...(into.get(prefix) ?? []), value]);
    return;
  }
  if (!value || typeof value !== 'object') return;
  for (const [key, child] of Object.entries(value)) flatten(child, prefix ? `${prefix}.${key}` : key, into);
}

/** Every number of the runs as median (min–max) under the same path. */
export function aggregate(runs: readonly RunFigures[]): SpreadTree {
  const values = new Map<string, number[]>();
  for (const run of runs) flatten(run, '', values);
  const tree: SpreadTree = {};
  for (const [path, list] of values) {
    const keys = path.split('.');
    let node = tree;
    for (const key of keys.slice(0, -1)) node = (node[key] ??= {}) as SpreadTree;
    node[keys.at(-1) ?? ''] = spread(list);
  }
  return tree;
}

const isSpread = (node: SpreadTree | Spread | undefined): node is Spread => node !== undefined && 'median' in node;

/** The figure at `path`, if any run had it. */
function lookup(tree: SpreadTree, path: string): Spread | undefined {
  let node: SpreadTree | Spread | undefined = tree;
  for (const key of path.split('.')) node = node === undefined || isSpread(node) ? undefined : node[key];
  return isSpread(node) ? node : undefined;
}

/** The median at `path` (NaN when no run had it). */
export function median(tree: SpreadTree, path: string): number {
  return lookup(tree, path)?.median ?? Number.NaN;
}

export const TARGETS = {
  seq3VsFlow: { target: '>= 1.0', met: (value: number) => value >= 1 },
  split10VsFlow: { target: '>= 1.0', met: (value: number) => value >= 1 },
  case1VsRaw: { target: '>= 0.5', met: (value: number) => value >= 0.5 },
  handoffP99VsRaw: { target: '<= 2.0', met: (value: number) => value <= 2 },
  redisBytesVsRaw: { target: '<= 2.0', met: (value: number) => value <= 2 },
} as const;
export type RatioName = keyof typeof TARGETS;

/** The five ratios of a store, from medians; `prefilled` compares the pre-filled drains instead. */
export function ratios(tree: SpreadTree, store: StoreKind, prefilled = false): Record<RatioName, number> {
  const s = (name: string) => median(tree, `stores.${store}.${name}`);
  const b = (name: string) => median(tree, `baselines.${name}`);
  const way = prefilled ? 'Prefilled' : '';
  return {
    seq3VsFlow: s(`seq3${way}PerSecond`) / b(`flowChain3${way}PerSecond`),
    split10VsFlow: s(`split10${way}PerSecond`) / b(`flowSplit10${way}PerSecond`),
    case1VsRaw: s(`case1${way}PerSecond`) / b(`raw${way}PerSecond`),
    handoffP99VsRaw: s('handoff.totalP99Ms') / s('rawLatencyP99Ms'),
    redisBytesVsRaw: s('redisBytesPerQueuedCase') / b('redisBytesPerRawJob'),
  };
}

/** What latest.json asks for per case (FerretDB's figures). */
export function perCaseSummary(tree: SpreadTree, store: StoreKind) {
  const pick = (workload: string) => {
    const at = (name: string) => median(tree, `stores.${store}.perCase.${workload}.${name}`);
    return { bullmqJobs: at('bullmqJobs'), redisCommands: at('redisCommands'), storeOps: at('storeOps'), storeDocs: at('storeDocs') };
  };
  return { case1: pick('case1'), seq3: pick('seq3'), split10: pick('split10') };
}

export interface Header {
  store: string;
  cpus: number;
  runs: number;
  seconds: number;
  durationSeconds: number;
}

const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
function cell(tree: SpreadTree, path: string, digits: number, runs: number): string {
  const stats = lookup(tree, path);
  if (!stats) return '–';
  return runs > 1 ? `${fmt(stats.median, digits)} (${fmt(stats.min, digits)}–${fmt(stats.max, digits)})` : fmt(stats.median, digits);
}

const row = (label: string, unit: string, ...cells: string[]) => `${label.padEnd(42)} ${unit.padEnd(8)} ${cells.map((text) => text.padEnd(26)).join(' ')}`.trimEnd();

/** The printed table: baselines both ways, both stores side by side, ratios, the scale rows. */
export function table(tree: SpreadTree, scale: ScaleFigures | undefined, header: Header): string {
  const c = (path: string, digits: number) => cell(tree, path, digits, header.runs);
  const both = (label: string, unit: string, path: string, digits: number) => row(label, unit, ...STORES.map((store) => c(`stores.${store}.${path}`, digits)));
  const perCase = (workload: string, title: string) => [
    both(`${title}: BullMQ jobs`, '', `perCase.${workload}.bullmqJobs`, 2),
    both(`${title}: Redis commands`, '', `perCase.${workload}.redisCommands`, 1),
    both(`${title}: Redis Lua script calls`, '', `perCase.${workload}.redisScripts`, 1),
    both(`${title}: store ops`, '', `perCase.${workload}.storeOps`, 1),
    both(`${title}: store docs written`, '', `perCase.${workload}.storeDocs`, 1),
    both(`${title}: commits that conflicted`, '', `perCase.${workload}.conflictRate`, 3),
  ];
  const cpu = (process: string) => row(`CPU per 1-step case: ${process}`, 'ms', c(`stores.memory.perCase.case1.cpuMs.${process}`, 2), c(`stores.ferretdb.perCase.case1.cpuMs.${process}`, 2));
  const ratioRows = Object.entries(TARGETS).map(([name, { target, met }]) => {
    const values = STORES.map((store) => ratios(tree, store)[name as RatioName]);
    return `ratio ${name.padEnd(16)}${''.padEnd(26)}${values.map((value) => `${fmt(value, 3).padStart(8)} ${met(value) ? 'met    ' : 'NOT met'}`).join('   ')}   target ${target}`;
  });
  const lines = [
    '',
    `${header.cpus} CPUs; ${header.runs} run(s) of ${header.seconds} s measurements, median (min–max)`,
    `memory: MemoryStore, scheduler and worker in ONE process; ferretdb: ${header.store}, a scheduler and a worker process; raw BullMQ and flows: one worker process; every worker concurrency 50; workers advance cases (WORKER_ADVANCES_CASES=true)`,
    '',
    row('baselines (nothing else running)', '', 'enqueue while draining', 'pre-filled drain'),
    row('raw BullMQ no-op jobs (20,000)', 'jobs/s', c('baselines.rawPerSecond', 0), c('baselines.rawPrefilledPerSecond', 0)),
    row('FlowProducer 3-job chains (7,000)', 'flows/s', c('baselines.flowChain3PerSecond', 0), c('baselines.flowChain3PrefilledPerSecond', 0)),
    row('FlowProducer parent + 10 children (2,000)', 'flows/s', c('baselines.flowSplit10PerSecond', 0), c('baselines.flowSplit10PrefilledPerSecond', 0)),
    row('per raw job: Redis commands', '', c('baselines.rawPerJob.redisCommands', 1)),
    row('per raw job: CPU of worker + redis-server', 'ms', `${c('baselines.rawPerJob.cpuMs.worker', 3)} + ${c('baselines.rawPerJob.cpuMs.redis', 3)}`),
    row('per 3-chain flow: Redis commands', '', c('baselines.flowChain3PerFlow.redisCommands', 1)),
    row('servers idle before the baselines', 'ms/s', c('baselines.serversIdleCpuMsPerSecond', 0)),
    '',
    row('workfleet', '', 'memory (1 process)', 'ferretdb'),
    both('1-step cases, submitted while running', 'cases/s', 'case1PerSecond', 1),
    both('1-step cases, pre-filled intake', 'cases/s', 'case1PrefilledPerSecond', 1),
    both('3-step sequential cases', 'cases/s', 'seq3PerSecond', 1),
    both('3-step sequential, pre-filled', 'cases/s', 'seq3PrefilledPerSecond', 1),
    both('10-way split + join cases', 'cases/s', 'split10PerSecond', 1),
    both('10-way split + join, pre-filled', 'cases/s', 'split10PrefilledPerSecond', 1),
    both('hand-off load (half max seq3)', 'cases/s', 'handoffCasesPerSecond', 1),
    both('hand-offs measured', '', 'handoff.samples', 0),
    both('step hand-off p50', 'ms', 'handoff.totalP50Ms', 1),
    both('step hand-off p99', 'ms', 'handoff.totalP99Ms', 1),
    both('  report hop p50', 'ms', 'handoff.reportHopP50Ms', 1),
    both('  report hop p99', 'ms', 'handoff.reportHopP99Ms', 1),
    both('  commit p50', 'ms', 'handoff.commitP50Ms', 1),
    both('  commit p99', 'ms', 'handoff.commitP99Ms', 1),
    both('  step hop p50', 'ms', 'handoff.stepHopP50Ms', 1),
    both('  step hop p99', 'ms', 'handoff.stepHopP99Ms', 1),
    both('raw latency load (3x hand-off load)', 'jobs/s', 'rawLatencyJobsPerSecond', 1),
    both('raw BullMQ enqueue-to-start p50', 'ms', 'rawLatencyP50Ms', 1),
    both('raw BullMQ enqueue-to-start p99', 'ms', 'rawLatencyP99Ms', 1),
    both('Redis bytes per queued case', 'B', 'redisBytesPerQueuedCase', 0),
    both('  same, average of first 1,000', 'B', 'redisBytesPerQueuedCaseAverage', 0),
    row('Redis bytes per queued raw job', 'B', c('baselines.redisBytesPerRawJob', 0)),
    row('Redis bytes per raw job, step payload', 'B', c('baselines.redisBytesPerRawJobSamePayload', 0)),
    both('Redis bytes per finished 1-step case', 'B', 'redisBytesPerFinishedCase', 0),
    row('MongoDB bytes per 1-step / 3-step case', 'B', '', `${c('stores.ferretdb.mongoBytesPerCase1', 0)} / ${c('stores.ferretdb.mongoBytesPerSeq3', 0)}`),
    ...perCase('case1', 'per 1-step case'),
    ...perCase('seq3', 'per 3-step case'),
    ...perCase('split10', 'per split10 case'),
    row('split10, two worker processes', 'cases/s', '', c('stores.ferretdb.split10TwoWorkers.perSecond', 1)),
    row('  commits that conflicted (join races)', '', '', c('stores.ferretdb.split10TwoWorkers.conflictRate', 3)),
    cpu('fleet'),
    cpu('scheduler'),
    cpu('worker'),
    cpu('redis'),
    cpu('ferretdb'),
    cpu('postgres'),
    '',
    `ratio ${''.padEnd(16)}${''.padEnd(26)}${'memory'.padStart(8)}            ${'ferretdb'.padStart(8)}`,
    ...ratioRows,
  ];
  if (scale) {
    const opRow = (label: string, cost: { at1k: number; at100k: number } | undefined) =>
      row(label, 'ms', cost ? `${fmt(cost.at1k, 2)} → ${fmt(cost.at100k, 2)}` : '–', cost ? `x${fmt(cost.at100k / cost.at1k, 2)} (target <= 1.5)` : '');
    const { postgresql, sqlite } = scale.storeOpCostMsByBackend;
    lines.push(
      '',
      `scale (FerretDB on PostgreSQL; one run; ${scale.preloadedCases} finished 1-step cases preloaded)`,
      row('1-step cases, empty store', 'cases/s', fmt(scale.case1PerSecondEmpty, 1)),
      row('1-step cases, preloaded store', 'cases/s', fmt(scale.case1PerSecondPreloaded, 1), `empty/preloaded x${fmt(scale.case1PerSecondEmpty / scale.case1PerSecondPreloaded, 2)} (target <= 1.5)`),
      `server CPU per operation on cases, 1,000 → ${scale.preloadedCases} stored`,
      opRow('  updateOne({_id}), PostgreSQL', postgresql?.updateById),
      opRow('  getCase (findOne + history fold), PostgreSQL', postgresql?.findById),
      opRow('  history insertOne, PostgreSQL', postgresql?.insertHistory),
      opRow('  findOne({_id}) alone, PostgreSQL', postgresql?.findOneById),
      opRow('  updateOne({_id}), SQLite', sqlite?.updateById),
      opRow('  getCase (findOne + history fold), SQLite', sqlite?.findById),
      opRow('  history insertOne, SQLite', sqlite?.insertHistory),
      opRow('  findOne({_id}) alone, SQLite', sqlite?.findOneById),
    );
  }
  lines.push(`(${header.durationSeconds} s)`, '');
  return lines.join('\n');
}
