import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisLimits } from '../lib/adapters/redis/limits.js';
import { stopManagedChildrenOnExit } from '../lib/local-servers/child.js';
import { freePort } from '../lib/local-servers/free-port.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { sleep, spawnProcesses, startBenchServers, waitQuiet, type BenchServers } from './harness.js';
import { median } from './stats.js';
import { measured, withFleet, type BenchContext, type PerCase } from './workfleet.js';
import { KEYS, STORES, type StoreKind } from './workloads.js';

/**
 * `npm run bench:limits [-- --only keys,fairness,rate-foreach] [--units N]`: what concurrency keys cost and
 * what they buy, on the bench's private redis-server and FerretDB.
 *
 * `keys`: the 1-step workload with its cases spread over 1,000 concurrency keys (limit 1, so a
 * key's second case waits in its line for the first) against the same workload without keys, on
 * each store (BENCH_STORES, as `npm run bench`), measured as the bench measures it
 * (bench/workfleet.ts `measured`, about BENCH_SECONDS of cases after a warm-up), BENCH_RUNS times
 * (default 2, the two workloads in turn, their order alternating): cases/s, and per step (one step
 * a case) the CPU ms of each process, Redis commands and scripts, BullMQ jobs; medians.
 *
 * `fairness`: a fleet of real processes (API, scheduler, two workers of 10) on FerretDB; the start
 * latency of a small key's two units (from the case's creation to their handlers' start) on the
 * idle fleet, then behind one key with `--units` (default 100,000) units offered under a limit of
 * 5: 100 cases of a 1,000-item forEach, each item holding its slot 3 s, so that the gate holds
 * nearly all of them in its line. Prints the medians and their ratio.
 *
 * `rate-foreach`: on such a fleet, a forEach of 320 items under a rate limit of 5 a second (see
 * `rateForEach`): how many of a minute's 300 starts it makes in its first minute.
 */

const option = (name: string, fallback: string) => {
  const at = process.argv.indexOf(name);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const ONLY = option('--only', 'keys,fairness,rate-foreach').split(',');
const UNITS = Number(option('--units', '100000'));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const MEASURED_STORES = STORES.filter((store) => (process.env.BENCH_STORES ?? STORES.join(',')).split(',').includes(store));

const started = Date.now();
const log = (message: string) => process.stdout.write(`[${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s] ${message}\n`);

interface KeysRow {
  store: StoreKind;
  workload: 'one' | 'keyed';
  perSecond: number;
  perStep: PerCase;
}

const cpuOf = (row: KeysRow) => Object.values(row.perStep.cpuMs).reduce((sum, ms) => sum + ms, 0);

/** The median of each figure over the runs of one workload on one store. */
function medians(rows: readonly KeysRow[]) {
  const of = (pick: (row: KeysRow) => number) => median(rows.map(pick));
  const processes = [...new Set(rows.flatMap((row) => Object.keys(row.perStep.cpuMs)))];
  return {
    perSecond: of((row) => row.perSecond),
    cpuMs: of(cpuOf),
    cpuMsByProcess: Object.fromEntries(processes.map((name) => [name, of((row) => row.perStep.cpuMs[name] ?? 0)])),
    redisCommands: of((row) => row.perStep.redisCommands),
    redisScripts: of((row) => row.perStep.redisScripts),
    bullmqJobs: of((row) => row.perStep.bullmqJobs),
  };
}

async function keysCost(ctx: BenchContext): Promise<Record<string, unknown>> {
  const rows: KeysRow[] = [];
  for (let run = 0; run < RUNS; run++) {
    for (const store of MEASURED_STORES) {
      const scale = store === 'memory' ? 5 : 1;
      // ABBA: the order alternates between runs, so that a machine getting busier or quieter favours neither.
      for (const workload of run % 2 === 0 ? (['one', 'keyed'] as const) : (['keyed', 'one'] as const)) {
        await waitQuiet(ctx.servers);
        log(`keys: run ${run + 1}/${RUNS}, ${workload} on ${store} …`);
        const result = await withFleet(ctx, store, {}, (fleet) => measured(ctx, fleet, workload, 200 * scale, 300));
        rows.push({ store, workload, perSecond: result.rate, perStep: result.perCase });
      }
    }
  }
  for (const row of rows) log(`  ${row.store} ${row.workload}: ${row.perSecond.toFixed(0)} cases/s, ${cpuOf(row).toFixed(2)} CPU ms and ${row.perStep.redisCommands.toFixed(1)} Redis commands per step`);
  log(`1-step cases, without keys and over ${KEYS} concurrency keys (limit 1); per step, median of ${RUNS} run(s) (of two: the lower):`);
  log(`${'store'.padEnd(9)}${'workload'.padEnd(10)}${'cases/s'.padStart(9)}${'CPU ms'.padStart(9)}  ${'by process'.padEnd(48)}${'Redis cmds'.padStart(11)}${'scripts'.padStart(9)}${'jobs'.padStart(6)}`);
  const figures: Record<string, Record<string, ReturnType<typeof medians>>> = {};
  for (const store of MEASURED_STORES) {
    for (const workload of ['one', 'keyed'] as const) {
      const row = medians(rows.filter((entry) => entry.store === store && entry.workload === workload));
      (figures[store] ??= {})[workload] = row;
      const byProcess = Object.entries(row.cpuMsByProcess)
        .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
        .join(', ');
      log(
        `${store.padEnd(9)}${workload.padEnd(10)}${row.perSecond.toFixed(0).padStart(9)}${row.cpuMs.toFixed(2).padStart(9)}  ${byProcess.padEnd(48)}${row.redisCommands.toFixed(1).padStart(11)}${row.redisScripts.toFixed(1).padStart(9)}${row.bullmqJobs.toFixed(2).padStart(6)}`,
      );
    }
    const plain = figures[store]?.one;
    const keyed = figures[store]?.keyed;
    if (!plain || !keyed) continue;
    log(
      `${store}: with keys ${(keyed.cpuMs / plain.cpuMs).toFixed(2)}x the CPU per step (${keyed.cpuMs - plain.cpuMs >= 0 ? '+' : ''}${(keyed.cpuMs - plain.cpuMs).toFixed(2)} ms), ` +
        `${(keyed.redisCommands / plain.redisCommands).toFixed(2)}x the Redis commands (+${(keyed.redisCommands - plain.redisCommands).toFixed(1)}), ` +
        `${(keyed.redisScripts / plain.redisScripts).toFixed(2)}x the scripts, ${(keyed.perSecond / plain.perSecond).toFixed(2)}x the cases/s`,
    );
  }
  return { runs: rows, medians: figures };
}

type Http = <T>(method: string, path: string, body?: unknown) => Promise<T>;

/** Runs `use` on a fleet of workfleet processes (API, scheduler, two workers of 10) on FerretDB, then stops it. */
async function withProcessFleet<T>(servers: BenchServers, use: (fleet: { http: Http; prefix: string }) => Promise<T>): Promise<T> {
  const prefix = `wf-lim-${Date.now().toString(36)}`;
  const database = prefix.replace(/-/g, '_');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = {
    REDIS_URL: servers.redis.url,
    MONGO_URL: `${servers.mongoBase}${database}`,
    BULLMQ_PREFIX: prefix,
    API_PORT: String(port),
    API_RATE_LIMIT_PER_MINUTE: '0',
    WORKER_CONCURRENCY: '10',
    NODE_ENV: 'test',
  };
  const children = await spawnProcesses(['api', 'scheduler', 'worker', 'worker'], env);
  const http: Http = async <R>(method: string, path: string, body?: unknown): Promise<R> => {
    const response = await fetch(`${url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return (await response.json()) as R;
  };
  try {
    await servers.indexDatabase(database);
    return await use({ http, prefix });
  } finally {
    await Promise.all(children.map((child) => child.stop('SIGTERM', 30_000)));
  }
}

/** The case once it has finished. */
async function finished<T extends { status: string }>(http: Http, id: string, timeoutMs: number): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    const record = await http<T>('GET', `/v1/cases/${id}`);
    if (record.status !== 'running') return record;
  }
  throw new Error(`case ${id} not finished in ${timeoutMs} ms`);
}

async function fairness(servers: BenchServers, redis: Redis): Promise<Record<string, unknown>> {
  return withProcessFleet(servers, async ({ http, prefix }) => {
    await http('POST', '/v1/workflows', {
      name: 'fair',
      steps: [
        {
          id: 'each',
          task: 'demo.hold',
          forEach: { items: '${input.items}', concurrency: 1000 },
          input: { ms: '${input.ms}' },
          concurrency: { key: '${input.customer}', limit: 5, group: 'fair' },
          timeout: '60s',
        },
      ],
    });
    const start = (customer: string, items: number, ms: number) => http<{ id: string }>('POST', '/v1/cases', { workflow: 'fair', input: { customer, items: Array.from({ length: items }, (_, i) => i), ms } });
    /** Case creation to the later handler start of a small case's two units (ms). */
    const smallLatency = async (): Promise<number> => {
      const { id } = await start('small', 2, 50);
      for (const deadline = Date.now() + 120_000; Date.now() < deadline; await sleep(50)) {
        const record = await http<{ status: string; createdAt: string; steps: { each?: { output?: { items: Array<{ startedAt: number }> } } } }>('GET', `/v1/cases/${id}`);
        if (record.status === 'completed') return Math.max(...(record.steps.each?.output?.items ?? []).map((held) => held.startedAt)) - Date.parse(record.createdAt);
        if (record.status !== 'running') throw new Error(`small case ${record.status}`);
      }
      throw new Error('small case not done in 120 s');
    };
    const runs = async (count: number) => {
      const figures: number[] = [];
      for (let run = 0; run < count; run++) figures.push(await smallLatency());
      return figures;
    };
    await runs(1);
    const idle = await runs(7);
    log(`fairness: idle fleet, small key's units start ${median(idle)} ms after the case is created (${idle.join(', ')})`);

    const limits = new RedisLimits(redis, { prefix });
    const cases = Math.ceil(UNITS / 1000);
    const offering = Date.now();
    for (let made = 0; made < cases; made += 5) await Promise.all(Array.from({ length: Math.min(5, cases - made) }, () => start('big', Math.min(1000, UNITS - made * 1000), 3_000)));
    const madeAt = Date.now();
    // Until the gate's line stops growing (the big key's units run meanwhile, 5 at a time, so it never quite reaches UNITS).
    let big = (await limits.stats(1)).topKeys[0];
    for (let last = -1, deadline = Date.now() + 600_000; (big?.waiting ?? 0) > last && Date.now() < deadline;) {
      last = big?.waiting ?? 0;
      await sleep(2_000);
      big = (await limits.stats(1)).topKeys[0];
    }
    log(
      `fairness: ${UNITS} units of key "big" offered (${cases} cases made in ${((madeAt - offering) / 1000).toFixed(1)} s, the line full ${((Date.now() - offering) / 1000).toFixed(1)} s after the first); the gate: ${big?.inUse} in use, ${big?.waiting} waiting; Redis ${(Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]) / 1048576).toFixed(0)} MiB`,
    );
    const behind = await runs(7);
    const after = (await limits.stats(1)).topKeys[0];
    const ratio = median(behind) / median(idle);
    log(`fairness: behind ${after?.waiting} waiting units of one key, small key's units start ${median(behind)} ms after the case is created (${behind.join(', ')}): ${ratio.toFixed(2)}x idle`);
    return { idleMs: idle, behindMs: behind, units: UNITS, waitingAfter: after?.waiting, ratio };
  });
}

/**
 * A forEach of 320 items under a rate limit of 5 a second, in one case: every item but the first
 * five is deferred to its reserved second, and each deferral is a transition of that one case.
 * Prints the starts in the first minute (the allowance is 300), the longest pause between two
 * starts, and the items that came back more than a second after their reserved time (so reserved
 * again, at the back of the line).
 */
async function rateForEach(servers: BenchServers): Promise<Record<string, unknown>> {
  return withProcessFleet(servers, async ({ http }) => {
    await http('POST', '/v1/workflows', {
      name: 'rated',
      steps: [{ id: 'each', task: 'demo.hold', forEach: { items: '${input.items}', concurrency: 1000 }, input: { ms: 10 }, rateLimit: { key: '${input.partner}', max: 5, per: '1s' }, timeout: '20s' }],
    });
    const { id } = await http<{ id: string }>('POST', '/v1/cases', { workflow: 'rated', input: { partner: 'initech', items: Array.from({ length: 320 }, (_, i) => i) } });
    const record = await finished<{ status: string; steps: { each?: { output?: { items: Array<{ startedAt: number }> } } } }>(http, id, 300_000);
    const starts = (record.steps.each?.output?.items ?? []).map((held) => held.startedAt).sort((a, b) => a - b);
    const first = starts[0] ?? 0;
    const inMinute = starts.filter((at) => at < first + 60_000).length;
    const gap = Math.max(...starts.slice(1).map((at, index) => at - (starts[index] ?? at)));
    const { events } = await http<{ events: Array<{ type: string; at: string; data: { instance?: number } }> }>('GET', `/v1/cases/${id}/trace`);
    const deferrals = new Map<number, number>();
    let firstPassEnd = 0;
    for (const event of events.filter((entry) => entry.type === 'step.deferred')) {
      const instance = event.data.instance ?? -1;
      if (!deferrals.has(instance)) firstPassEnd = Math.max(firstPassEnd, Date.parse(event.at) - first);
      deferrals.set(instance, (deferrals.get(instance) ?? 0) + 1);
    }
    const again = [...deferrals.values()].filter((count) => count > 1).length;
    log(
      `rate in a forEach: ${record.status}; ${inMinute} of 320 items started in the first 60 s (allowance 300); the first deferral of every item made by ${(firstPassEnd / 1000).toFixed(1)} s; ` +
        `longest pause between starts ${(gap / 1000).toFixed(1)} s; ${again} items deferred again (back more than 1 s after their reserved time)`,
    );
    return { inMinute, firstPassSeconds: firstPassEnd / 1000, longestPauseSeconds: gap / 1000, deferredAgain: again };
  });
}

// An interrupted benchmark leaves no Redis, FerretDB or fleet process running.
stopManagedChildrenOnExit();
const servers = await startBenchServers();
const redis = new Redis(servers.redis.url);
const results: Record<string, unknown> = { at: new Date().toISOString(), store: servers.store, seconds: SECONDS };
try {
  if (ONLY.includes('keys')) results.keys = await keysCost({ servers, redis, seconds: SECONDS });
  if (ONLY.includes('fairness')) results.fairness = await fairness(servers, redis);
  if (ONLY.includes('rate-foreach')) results.rateForEach = await rateForEach(servers);
} finally {
  redis.disconnect();
  await servers.stop();
}
mkdirSync(join(packageRoot(), 'bench', 'results'), { recursive: true });
writeFileSync(join(packageRoot(), 'bench', 'results', 'limits-latest.json'), `${JSON.stringify(results, null, 2)}\n`);
