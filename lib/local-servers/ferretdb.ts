import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnManaged, waitForOutput, type ManagedChild } from './child.js';
import { indexFerretBackend } from './ferretdb-indexes.js';
import { packageRoot } from '../runtime/package-root.js';

const run = promisify(execFile);

/**
 * FerretDB v1 stands in for MongoDB in dev mode and tests (no mongod can be installed here). It
 * is built once from the Go module proxy (tools/ferretdb pins v1.24.0 in go.mod/go.sum) and
 * cached under ~/.cache/workfleet, keyed by the hash of those files. Telemetry is off twice
 * over: the wrapper refuses any other setting, and DO_NOT_TRACK=1 is set.
 */

function sourceHash(): string {
  const dir = join(packageRoot(), 'tools', 'ferretdb');
  const hash = createHash('sha256');
  for (const file of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(dir, file)));
  return hash.digest('hex').slice(0, 16);
}

/** Where built tools are kept between runs. */
function cacheDir(): string {
  return join(homedir(), '.cache', 'workfleet');
}

/** The usual install location, the toolchain CI fetches into the cache, or `go` from PATH. */
function goBinary(): string {
  for (const candidate of ['/usr/local/go/bin/go', join(cacheDir(), 'go', 'bin', 'go')]) if (existsSync(candidate)) return candidate;
  return 'go';
}

/** The path of a FerretDB binary: `explicit` if given, else the cached build, building it first if needed. */
export async function ensureFerretDB(options: { explicit?: string; onBuild?: (message: string) => void } = {}): Promise<string> {
  if (options.explicit) {
    if (!existsSync(options.explicit)) throw new Error(`FERRETDB_BIN=${options.explicit} does not exist`);
    return options.explicit;
  }
  const target = join(cacheDir(), `ferretdb-v1.24.0-${sourceHash()}`, 'ferretdb');
  if (existsSync(target)) return target;
  options.onBuild?.('building FerretDB v1.24.0 from the Go module proxy (first run only, about two minutes)');
  mkdirSync(join(target, '..'), { recursive: true });
  // Build to a private name and rename: concurrent builds never expose a half-written binary.
  const partial = `${target}.${process.pid}.partial`;
  try {
    await run(goBinary(), ['build', '-o', partial, '.'], {
      cwd: join(packageRoot(), 'tools', 'ferretdb'),
      env: { ...process.env, GOTOOLCHAIN: 'local', GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? String(error);
    throw new Error(`could not build FerretDB (needs Go 1.22+ and the Go module proxy): ${detail.trim().slice(-2_000)}`);
  }
  renameSync(partial, target);
  return target;
}

export interface FerretDB {
  /** mongodb://127.0.0.1:PORT/ (no database name). */
  baseUrl: string;
  child: ManagedChild;
  /**
   * Creates the backend indexes FerretDB needs for lookups that stay fast as data grows (see
   * ferretdb-indexes.ts). Call after the store's `init` has created the database's collections.
   */
  indexDatabase(database: string): Promise<void>;
  stop(): Promise<void>;
}

export interface FerretOptions {
  bin: string;
  /**
   * Where FerretDB keeps data: a directory of SQLite files (one per database, created if
   * missing), or a PostgreSQL database URL (the database must exist).
   */
  backend: { sqliteDir: string } | { postgresUrl: string };
  /** A fixed port; default: the kernel picks one. */
  port?: number;
  /** Run in a process group of its own, out of reach of a terminal's Ctrl-C (see RedisServerOptions). */
  ownProcessGroup?: boolean;
}

/**
 * FerretDB's PostgreSQL URL with `plan_cache_mode=force_custom_plan` (pgx passes unknown URL
 * parameters to PostgreSQL as session settings). FerretDB names the field of every filter as a
 * parameter (`_jsonb->$1 @> $2`); only a plan made with the parameters filled in matches the
 * backend indexes on `_jsonb->'field'`. With the default plan cache, a statement run five times
 * while its table was small keeps a generic plan, a sequential scan, however large the table
 * grows (measured: the deadline check went from 2.5 ms to 220 ms a query at 100,000 cases).
 */
function withCustomPlans(postgresUrl: string): string {
  const url = new URL(postgresUrl);
  url.searchParams.set('plan_cache_mode', 'force_custom_plan');
  return url.toString();
}

export async function startFerretDB(options: FerretOptions): Promise<FerretDB> {
  const backendArgs =
    'sqliteDir' in options.backend ? ['--handler=sqlite', `--sqlite-url=file:${options.backend.sqliteDir}/`] : ['--handler=postgresql', `--postgresql-url=${withCustomPlans(options.backend.postgresUrl)}`];
  if ('sqliteDir' in options.backend) mkdirSync(options.backend.sqliteDir, { recursive: true });
  const child = spawnManaged(options.bin, [`--listen-addr=127.0.0.1:${options.port ?? 0}`, ...backendArgs, '--telemetry=disable', '--log-level=error'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DO_NOT_TRACK: '1' },
    detached: options.ownProcessGroup ?? false,
  });
  const match = await waitForOutput(child, /ferretdb listening on (mongodb:\/\/[0-9.]+:[0-9]+\/)/, 30_000, 'FerretDB').catch(async (error: unknown) => {
    await child.stop('SIGKILL');
    throw error;
  });
  child.process.stdout?.resume();
  child.process.stderr?.resume();
  return {
    baseUrl: match[1] ?? '',
    child,
    indexDatabase: (database) => indexFerretBackend(options.backend, database),
    stop: async () => void (await child.stop('SIGTERM', 10_000)),
  };
}
