import { execFileSync } from 'node:child_process';

/**
 * The machine's PostgreSQL (trust auth on 127.0.0.1), used by tests and the benchmark as
 * FerretDB's backend, each run in a database of its own. Driven through `psql`.
 */
export const LOCAL_POSTGRES = 'postgres://postgres@127.0.0.1:5432';

function psql(sql: string): void {
  execFileSync('psql', [`${LOCAL_POSTGRES}/postgres`, '-qAtc', sql], { stdio: 'pipe', timeout: 15_000 });
}

export function postgresAnswers(): boolean {
  try {
    psql('select 1');
    return true;
  } catch {
    return false;
  }
}

/** Creates a database and returns its URL. */
export function createDatabase(name: string): string {
  psql(`create database ${name}`);
  return `${LOCAL_POSTGRES}/${name}`;
}

export function dropDatabase(name: string): void {
  psql(`drop database if exists ${name} with (force)`);
}
