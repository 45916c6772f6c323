import { ensureFerretDB } from '../../lib/local-servers/ferretdb.js';
import { postgresAnswers } from '../../lib/local-servers/postgres.js';

/**
 * Runs once before the suites: builds FerretDB (a no-op when cached, or when MONGO_URL names a
 * real MongoDB) and picks its backend. FerretDB on PostgreSQL is preferred when the machine's
 * PostgreSQL answers: FerretDB v1's SQLite backend scans a whole collection for every lookup by
 * _id (its query expression does not match its index), so its cost grows with the data.
 */
export default async function setup(): Promise<void> {
  if (process.env.MONGO_URL) return;
  process.env.WORKFLEET_TEST_FERRETDB_BIN = await ensureFerretDB({
    ...(process.env.FERRETDB_BIN ? { explicit: process.env.FERRETDB_BIN } : {}),
    onBuild: (message) => process.stderr.write(`${message}\n`),
  });
  const wanted = process.env.WORKFLEET_TEST_FERRET_BACKEND;
  process.env.WORKFLEET_TEST_FERRET_BACKEND = wanted ?? (postgresAnswers() ? 'postgresql' : 'sqlite');
}
