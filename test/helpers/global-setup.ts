import { execFileSync } from 'node:child_process';
import { ensureFerretDB } from '../../lib/runtime/ferretdb.js';

/** The PostgreSQL the machine runs (trust auth on 127.0.0.1); suites create databases of their own in it. */
export const LOCAL_POSTGRES = 'postgres://postgres@127.0.0.1:5432';

function postgresAnswers(): boolean {
  try {
    execFileSync('psql', [`${LOCAL_POSTGRES}/postgres`, '-qAtc', 'select 1'], { stdio: 'pipe', timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

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
