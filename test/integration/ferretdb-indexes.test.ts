import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, describe, expect, it } from 'vitest';
import { MongoClient } from 'mongodb';
import { MongoStore } from '../../lib/adapters/mongo/store.js';
import { createCase } from '../../lib/core/transition.js';
import { startFerretDB, type FerretDB } from '../../lib/local-servers/ferretdb.js';
import { createDatabase, dropDatabase, postgresAnswers } from '../../lib/local-servers/postgres.js';
import { order, T0 } from '../unit/fixtures.js';

/**
 * FerretDB v1 reads a whole table for lookups its own indexes do not match; the backend indexes
 * workfleet creates when it owns FerretDB's backend must be the ones its SQL uses. On PostgreSQL
 * FerretDB's `explain` carries the backend's own plan. On SQLite it does not (it explains a scan
 * even for queries its backend answers from an index), so the plan of the SQL FerretDB v1.24
 * sends for a lone `_id` is asked of SQLite itself. Also checked: the store's probe of what the
 * server filters, which decides how it queries.
 */

const bin = process.env.WORKFLEET_TEST_FERRETDB_BIN ?? '';
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** A store with one real case and enough filler documents that a planner prefers an index to a scan. */
async function seeded(ferret: FerretDB): Promise<{ store: MongoStore; client: MongoClient; id: string }> {
  const store = new MongoStore({ url: `${ferret.baseUrl}wf` });
  await store.init();
  cleanups.push(() => store.close());
  const started = createCase(order, { id: '01a00000-0000-7000-8000-0000000000a1', input: { sku: 'book', amount: 25 }, now: T0 });
  await store.createCase(started.state, started.events);
  const client = await new MongoClient(ferret.baseUrl).connect();
  cleanups.push(() => client.close());
  const filler = (collection: string, fields: (i: number) => object) =>
    client
      .db('wf')
      .collection(collection)
      .insertMany(Array.from({ length: 3_000 }, (_, i) => ({ _id: `filler-${i}` as never, ...fields(i) })));
  await filler('cases', (i) => ({ status: 'completed', workflow: `w${i}` }));
  await filler('history', (i) => ({ caseId: `filler-${i}`, revision: 1 }));
  await ferret.indexDatabase('wf');
  return { store, client, id: started.state.id };
}

const plan = async (client: MongoClient, collection: string, filter: object) => JSON.stringify(await client.db('wf').command({ explain: { find: collection, filter }, verbosity: 'queryPlanner' }));

describe('FerretDB backend indexes', () => {
  it('SQLite: a lookup by _id searches the index workfleet made, and the store looks cases up by _id only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wf-ferret-index-'));
    const ferret = await startFerretDB({ bin, backend: { sqliteDir: dir } });
    cleanups.push(
      () => rmSync(dir, { recursive: true, force: true }),
      () => ferret.stop(),
    );
    const { store, client, id } = await seeded(ferret);
    expect(store.serverFeatures).toEqual({ ferretdb: true, filtersBeyondId: false });
    const db = new DatabaseSync(join(dir, 'wf.sqlite'), { readOnly: true });
    cleanups.push(() => db.close());
    for (const collection of ['cases', 'history', 'open_cases']) {
      const { table_name: table } = db.prepare('SELECT table_name FROM _ferretdb_collections WHERE name = ?').get(collection) as { table_name: string };
      const steps = db.prepare(`EXPLAIN QUERY PLAN SELECT _ferretdb_sjson FROM "${table}" WHERE _ferretdb_sjson->'$._id' = ?`).all(JSON.stringify(id));
      expect(JSON.stringify(steps)).toMatch(/SEARCH \S+ USING INDEX \S+_wf_id/);
    }
    // A lookup FerretDB answers by itself still comes through (the probe said so).
    expect(await plan(client, 'cases', { _id: id })).toContain('"filterPushdown":true');
    // The registry of open cases holds the new case, so periodic checks need not read every case.
    expect(await client.db('wf').collection('open_cases').countDocuments({})).toBe(1);
  });

  it.runIf(postgresAnswers())('PostgreSQL: equalities on _id, status and caseId use the GIN indexes workfleet made', async () => {
    const database = `workfleet_test_idx_${randomBytes(4).toString('hex')}`;
    const ferret = await startFerretDB({ bin, backend: { postgresUrl: `${createDatabase(database)}?pool_max_conns=8` } });
    cleanups.push(
      () => dropDatabase(database),
      () => ferret.stop(),
    );
    const { store, client, id } = await seeded(ferret);
    expect(store.serverFeatures).toEqual({ ferretdb: true, filtersBeyondId: true });
    expect(await plan(client, 'cases', { _id: id })).toMatch(/cases_[0-9a-f]+_wf_id/);
    expect(await plan(client, 'cases', { status: 'running' })).toMatch(/cases_[0-9a-f]+_wf_status/);
    expect(await plan(client, 'history', { caseId: id })).toMatch(/history_[0-9a-f]+_wf_caseId/i);
  });
});

if (!postgresAnswers()) console.log('ferretdb-indexes: the PostgreSQL case is skipped: no PostgreSQL answers on 127.0.0.1:5432');
