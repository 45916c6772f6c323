import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Indexes in FerretDB's own backend that match the SQL FerretDB v1 generates, which its own
 * indexes do not. Created by whoever started FerretDB and so owns its backend (`workfleet dev`,
 * the tests, the benchmark), after the store's `init` has created the collections; FerretDB
 * does not list them and drops them with their tables. Without them FerretDB reads the whole
 * table for every lookup, and each operation costs more as cases pile up (docs/SCALING.md).
 *
 * - SQLite: FerretDB looks a lone `_id` up as `_ferretdb_sjson->'$._id' = ?`, while the unique
 *   index it creates is on `_ferretdb_sjson->"_id"`, an expression SQLite does not consider
 *   equal; an index on the very expression serves the lookup.
 * - PostgreSQL: FerretDB sends every equality as `_jsonb->$1 @> $2`, which its B-tree indexes on
 *   `_jsonb->'field'` cannot serve; a GIN index on the expression can (PostgreSQL plans each
 *   query with the field name filled in, see ferretdb.ts). Without GIN's pending list
 *   (`fastupdate = off`): each lookup would read the whole list of entries not yet merged,
 *   which grows with every insert until a vacuum merges it.
 */

export type FerretBackend = { sqliteDir: string } | { postgresUrl: string };

/** Fields looked up by equality, per collection; every collection is looked up by `_id`. */
const EQUALITY_FIELDS: Readonly<Record<string, readonly string[]>> = {
  cases: ['_id', 'status', 'workflow', 'finishedDay'],
  history: ['_id', 'caseId'],
};
const DEFAULT_FIELDS = ['_id'] as const;

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;
const quoteLiteral = (text: string) => `'${text.replaceAll("'", "''")}'`;
/** Index names: letters, digits and underscores only, within PostgreSQL's 63 bytes. */
const indexName = (table: string, field: string) => `${table}_wf_${field.replace(/[^a-z0-9]/gi, '')}`.slice(0, 63);

export async function indexFerretBackend(backend: FerretBackend, database: string): Promise<void> {
  if ('sqliteDir' in backend) await indexSqlite(join(backend.sqliteDir, `${database}.sqlite`));
  else indexPostgres(backend.postgresUrl, database);
}

async function indexSqlite(file: string): Promise<void> {
  if (!existsSync(file)) return;
  // node:sqlite ships with Node 22.13+; it is loaded only here, where FerretDB's files are ours.
  const { DatabaseSync } = await import('node:sqlite');
  const db = new DatabaseSync(file, { timeout: 10_000 });
  try {
    const tables = db.prepare('SELECT table_name FROM _ferretdb_collections').all() as Array<{ table_name: string }>;
    for (const { table_name: table } of tables) {
      db.exec(`CREATE INDEX IF NOT EXISTS ${quoteIdentifier(indexName(table, '_id'))} ON ${quoteIdentifier(table)} (_ferretdb_sjson->'$._id')`);
    }
  } finally {
    db.close();
  }
}

function indexPostgres(backendUrl: string, schema: string): void {
  // FerretDB's URL may carry pgx pool settings (pool_max_conns) that psql refuses.
  const url = new URL(backendUrl);
  url.search = '';
  const psql = (sql: string) => execFileSync('psql', [url.toString(), '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', stdio: 'pipe', timeout: 120_000 });
  const rows = psql(`SELECT _jsonb->>'_id', _jsonb->>'table' FROM ${quoteIdentifier(schema)}._ferretdb_database_metadata`);
  const statements: string[] = [];
  for (const line of rows.split('\n')) {
    const [collection, table] = line.split('|');
    if (!collection || !table) continue;
    for (const field of EQUALITY_FIELDS[collection] ?? DEFAULT_FIELDS) {
      statements.push(
        `CREATE INDEX IF NOT EXISTS ${quoteIdentifier(indexName(table, field))} ON ${quoteIdentifier(schema)}.${quoteIdentifier(table)} USING gin ((_jsonb->${quoteLiteral(field)}) jsonb_path_ops) WITH (fastupdate = off)`,
      );
    }
  }
  if (statements.length > 0) psql(statements.join('; '));
}
