import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { systemClock } from '../lib/ports/clock.js';
import { ensureFerretDB, startFerretDB } from '../lib/local-servers/ferretdb.js';
import { cpuMs, postgresCpuMs, postgresCpuSince } from './counters.js';
import { waitQuiet } from './harness.js';
import { preloadCases } from './preload.js';
import { measured, withFleet, type BenchContext } from './workfleet.js';
import { WORKFLOWS } from './workloads.js';

/**
 * The store as cases pile up, on FerretDB: the 1-step workload on an empty database and again
 * on one holding `preload` finished cases, and the server CPU (FerretDB plus its PostgreSQL
 * backends) of one `updateOne({_id})` and one `findOne({_id})` on `cases` at 1,000 and at
 * `preload` stored cases, on the PostgreSQL backend and, optionally, on SQLite. The database is
 * prepared as a fleet's is (MongoStore's own `init()`, then FerretDB's backend indexes) and the
 * finds go through `getCase`, so the figures follow the adapter's and the runtime's fixes.
 * Measured once per bench run (the preload is the slow part).
 */

export interface OpCost {
  at1k: number;
  at100k: number;
}

export interface BackendCost {
  updateById: OpCost;
  findById: OpCost;
  /** Inserting one history entry shaped like a step's end (the commit of a transition). */
  insertHistory: OpCost;
  /** One plain `findOne({_id})` on cases (getCase is this and the query that folds history). */
  findOneById: OpCost;
  /** Seconds the preload took (insertMany of 1,000 cases and their history at a time). */
  preloadSeconds: number;
}

export interface ScaleFigures {
  preloadedCases: number;
  case1PerSecondEmpty: number;
  case1PerSecondPreloaded: number;
  storeOpCostMs: { updateById: OpCost; findById: OpCost; insertHistory: OpCost; findOneById: OpCost };
  storeOpCostMsByBackend: Partial<Record<'postgresql' | 'sqlite', BackendCost>>;
}

const SMALL = 1_000;
/** Ops timed per operation and size: until this much time has passed, within the bounds below. */
const OP_BUDGET_MS = 3_000;
const OP_MIN = 8;
const OP_MAX = 1_600;
/**
 * Operations in flight at once, as a fleet's processes send them (group commits, 50 jobs per
 * worker): one at a time, FerretDB's fixed cost per request (its own connection handling, a
 * PostgreSQL transaction) weighs on every operation, and a unit cost measured so is about twice
 * what a busy fleet pays per operation.
 */
const OPS_AT_ONCE = 8;

interface Server {
  pid: number | undefined;
  postgresDb?: string | undefined;
}

const serverCpu = (server: Server) => {
  const ferret = cpuMs(server.pid);
  const postgres = postgresCpuMs(server.postgresDb);
  return () => cpuMs(server.pid) - ferret + postgresCpuSince(postgres, server.postgresDb);
};

/** Server CPU ms per operation, over operations on random ids, OPS_AT_ONCE at a time. */
async function perOp(server: Server, ids: readonly string[], op: (id: string) => Promise<unknown>): Promise<number> {
  const pick = () => ids[Math.floor(Math.random() * ids.length)] ?? '';
  await op(pick());
  const used = serverCpu(server);
  const started = performance.now();
  let count = 0;
  const loop = async () => {
    while (count < OP_MIN || (count < OP_MAX && performance.now() - started < OP_BUDGET_MS)) {
      count += 1;
      await op(pick());
    }
  };
  await Promise.all(Array.from({ length: OPS_AT_ONCE }, loop));
  return used() / count;
}

/**
 * Preloads `url` to SMALL and then `preload` cases, timing the two operations at each size. The
 * database is made as a fleet's is: the store's `init`, then FerretDB's backend indexes (`index`).
 */
async function backendCost(url: string, server: Server, index: () => Promise<void>, preload: number, log: (line: string) => void): Promise<BackendCost> {
  const store = new MongoStore({ url });
  const client = new MongoClient(url);
  try {
    await store.init();
    await index();
    const registry = new WorkflowRegistry(store, systemClock);
    await registry.apply({ name: 'one', ...WORKFLOWS.one });
    const workflow = await registry.compiled('one');
    await client.connect();
    const db = client.db();
    const cases = db.collection<{ _id: string }>('cases');
    const now = Date.now();
    const history = db.collection<{ _id: string }>('history');
    let revision = 1_000;
    // A step end's entry: two trace events and the step's new state, as the store writes it.
    const entry = (id: string) => {
      revision += 1;
      const at = new Date();
      return {
        _id: `${id}:${revision}`,
        caseId: id,
        revision,
        at,
        events: [{ seq: revision, type: 'step.completed', stepId: 'a', at, data: '{"attempt":1,"durationMs":1}' }],
        changes: [
          { path: 'steps.a', value: { status: 'completed', attempts: 1, attemptsDone: 1, startedAt: at.getTime(), finishedAt: at.getTime(), output: '{"n":1}' } },
          { path: 'updatedAt', value: at },
          { path: 'revision', value: revision },
        ],
      };
    };
    const time = async (ids: readonly string[]) => ({
      update: await perOp(server, ids, (id) => cases.updateOne({ _id: id }, { $set: { updatedAt: new Date() } })),
      find: await perOp(server, ids, (id) => store.getCase(id)),
      insert: await perOp(server, ids, (id) => history.insertOne(entry(id))),
      findOne: await perOp(server, ids, (id) => cases.findOne({ _id: id })),
    });
    let loading = performance.now();
    const ids = await preloadCases(db, workflow, SMALL, 0, now);
    let loadMs = performance.now() - loading;
    const small = await time(ids);
    log(`    ${SMALL} cases: updateOne ${small.update.toFixed(2)} ms, getCase ${small.find.toFixed(2)} ms, history insertOne ${small.insert.toFixed(2)} ms of server CPU; preloading ${preload} …`);
    loading = performance.now();
    ids.push(...(await preloadCases(db, workflow, Math.max(0, preload - SMALL), SMALL, now)));
    loadMs += performance.now() - loading;
    const preloadSeconds = loadMs / 1000;
    const large = await time(ids);
    log(`    ${preload} cases: updateOne ${large.update.toFixed(2)} ms, getCase ${large.find.toFixed(2)} ms, history insertOne ${large.insert.toFixed(2)} ms (preload ${preloadSeconds.toFixed(0)} s)`);
    return {
      updateById: { at1k: small.update, at100k: large.update },
      findById: { at1k: small.find, at100k: large.find },
      insertHistory: { at1k: small.insert, at100k: large.insert },
      findOneById: { at1k: small.findOne, at100k: large.findOne },
      preloadSeconds,
    };
  } finally {
    await client.close();
    await store.close();
  }
}

/** FerretDB on SQLite, for the same operation costs (what `npm start` runs on). */
async function sqliteCost(preload: number, log: (line: string) => void): Promise<BackendCost> {
  const dir = mkdtempSync(join(tmpdir(), 'workfleet-bench-sqlite-'));
  const ferret = await startFerretDB({ bin: await ensureFerretDB(), backend: { sqliteDir: dir } });
  try {
    return await backendCost(`${ferret.baseUrl}scale`, { pid: ferret.child.process.pid }, () => ferret.indexDatabase('scale'), preload, log);
  } finally {
    await ferret.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function scaleRun(ctx: BenchContext, preload: number, withSqlite: boolean, log: (line: string) => void): Promise<ScaleFigures> {
  const sizes = { warmup: 50, min: 100 };
  log('scale: 1-step on an empty store …');
  const empty = await withFleet(ctx, 'ferretdb', {}, (fleet) => measured(ctx, fleet, 'one', sizes.warmup, sizes.min));
  await waitQuiet(ctx.servers);
  log('scale: store operation costs, PostgreSQL backend …');
  const dbName = `bench_scale_${randomBytes(4).toString('hex')}`;
  const server = { pid: ctx.servers.ferretPid, postgresDb: ctx.servers.postgresDb };
  const postgresql = await backendCost(`${ctx.servers.mongoBase}${dbName}`, server, () => ctx.servers.indexDatabase(dbName), preload, log);
  await waitQuiet(ctx.servers, 60_000);
  log(`scale: 1-step on ${preload} stored cases …`);
  // A store that slows down with its size may not finish a measurement sized on its warm-up: each part ends after a minute.
  const preloaded = await withFleet(ctx, 'ferretdb', { dbName }, (fleet) => measured(ctx, fleet, 'one', sizes.warmup, sizes.min, { timeoutMs: 60_000 }));
  if (preloaded.done < preloaded.count) log(`  only ${preloaded.done} of ${preloaded.count} cases finished within the minute; the rate is theirs`);
  const byBackend: ScaleFigures['storeOpCostMsByBackend'] = { postgresql };
  if (withSqlite) {
    log('scale: store operation costs, SQLite backend …');
    // Optional: a failure here (say, a Node without node:sqlite for its backend indexes) costs only these rows.
    const sqlite = await sqliteCost(preload, log).catch((error: unknown) => void log(`  SQLite operation costs failed: ${String(error)}`));
    if (sqlite) byBackend.sqlite = sqlite;
  }
  return {
    preloadedCases: preload,
    case1PerSecondEmpty: empty.rate,
    case1PerSecondPreloaded: preloaded.rate,
    storeOpCostMs: { updateById: postgresql.updateById, findById: postgresql.findById, insertHistory: postgresql.insertHistory, findOneById: postgresql.findOneById },
    storeOpCostMsByBackend: byBackend,
  };
}
