import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { createCase } from '../lib/core/transition.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { systemClock } from '../lib/ports/clock.js';
import { stopManagedChildrenOnExit } from '../lib/local-servers/child.js';
import { ensureFerretDB, startFerretDB, type FerretDB } from '../lib/local-servers/ferretdb.js';
import { uuidv7 } from '../lib/runtime/ids.js';
import { createDatabase, dropDatabase, postgresAnswers } from '../lib/local-servers/postgres.js';
import { cpuMs, postgresCpuMs, postgresCpuSince } from './counters.js';
import { preloadCases } from './preload.js';
import { median } from './stats.js';

/**
 * `npm run bench:periodic`: what one run of each periodic duty of the scheduler costs as
 * finished cases pile up, on FerretDB (PostgreSQL when it answers, and SQLite, as `npm start`
 * uses): the deadline check, one reconciler page, the stuck count (a metric, every scrape) and
 * sample (GET /v1/status), and a retention run with nothing due. Each is measured on a database
 * holding `OPEN` open cases and 1,000, then `--cases N` (default 100,000) finished ones; the
 * figure is the median over RUNS of the server's CPU (FerretDB and its PostgreSQL backends) and
 * of the wall time. The database is prepared as its owner would: the store's `init`, then the
 * backend indexes (ferretdb-indexes.ts).
 */

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const CASES = Number(argument('cases', '100000'));
const OPEN = 200;
const RUNS = 7;
const HOUR = 3_600_000;
const WORKFLOW = { name: 'periodic-one', steps: [{ id: 'a', task: 'demo.echo', input: { n: '${input.n}' } }] };

const log = (message: string) => process.stdout.write(`${message}\n`);

type Duty = [name: string, run: (store: MongoStore, now: number) => Promise<unknown>];
const DUTIES: Duty[] = [
  ['deadline check', (store, now) => store.findExpiredCases(now, 500)],
  ['reconciler page (stale cases)', (store, now) => store.findStaleCases(now - 60_000, 200)],
  ['stuck count (metric)', (store) => store.findStuckCases(0)],
  ['stuck sample (status)', (store) => store.findStuckCases(20)],
  ['retention, nothing due', (store, now) => store.deleteFinishedCases(now - 30 * 24 * HOUR, 500)],
];

async function measure(store: MongoStore, serverCpu: () => () => number): Promise<Map<string, { cpu: number; wall: number }>> {
  const figures = new Map<string, { cpu: number; wall: number }>();
  for (const [name, run] of DUTIES) {
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const used = serverCpu();
      const started = performance.now();
      await run(store, Date.now());
      wall.push(performance.now() - started);
      cpu.push(used());
    }
    figures.set(name, { cpu: median(cpu), wall: median(wall) });
  }
  return figures;
}

async function onBackend(bin: string, backend: 'postgresql' | 'sqlite'): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'workfleet-periodic-'));
  const postgresDb = backend === 'postgresql' ? `workfleet_periodic_${randomBytes(4).toString('hex')}` : undefined;
  const ferret: FerretDB = await startFerretDB({ bin, backend: postgresDb ? { postgresUrl: createDatabase(postgresDb) } : { sqliteDir: dir } });
  const store = new MongoStore({ url: `${ferret.baseUrl}periodic` });
  const client = new MongoClient(`${ferret.baseUrl}periodic`);
  try {
    await store.init();
    await client.connect();
    const registry = new WorkflowRegistry(store, systemClock);
    await registry.apply(WORKFLOW);
    const workflow = await registry.compiled(WORKFLOW.name);
    // Open cases created two hours ago, so that the reconciler's page has candidates to check.
    const createdAt = Date.now() - 2 * HOUR;
    for (let n = 0; n < OPEN; n++) {
      const started = createCase(workflow, { id: uuidv7(createdAt + n), input: { n }, now: createdAt + n });
      await store.createCase(started.state, started.events);
    }
    await ferret.indexDatabase('periodic');
    const serverCpu = () => {
      const ferretBefore = cpuMs(ferret.child.process.pid);
      const postgresBefore = postgresCpuMs(postgresDb);
      return () => cpuMs(ferret.child.process.pid) - ferretBefore + postgresCpuSince(postgresBefore, postgresDb);
    };
    let stored = 0;
    const results: Array<[number, Map<string, { cpu: number; wall: number }>]> = [];
    for (const size of [1_000, CASES]) {
      log(`  ${backend}: ${size} finished cases …`);
      await preloadCases(client.db(), workflow, size - stored, stored, Date.now());
      stored = size;
      results.push([size, await measure(store, serverCpu)]);
    }
    log(`FerretDB on ${backend}, ${OPEN} open cases; server CPU / wall ms per run, median of ${RUNS}`);
    log(`${'duty'.padEnd(32)} ${results.map(([size]) => `${size} finished`.padStart(22)).join('')}`);
    for (const [name] of DUTIES) {
      const cells = results.map(([, figures]) => {
        const figure = figures.get(name);
        return `${figure?.cpu.toFixed(0)} / ${figure?.wall.toFixed(1)} ms`.padStart(22);
      });
      log(`${name.padEnd(32)} ${cells.join('')}`);
    }
  } finally {
    await client.close();
    await store.close();
    await ferret.stop();
    if (postgresDb) dropDatabase(postgresDb);
    rmSync(dir, { recursive: true, force: true });
  }
}

// An interrupted run leaves no FerretDB behind.
stopManagedChildrenOnExit();
const bin = await ensureFerretDB({ onBuild: log });
for (const backend of postgresAnswers() ? (['postgresql', 'sqlite'] as const) : (['sqlite'] as const)) await onBackend(bin, backend);
