import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnManaged, waitForOutput, type ManagedChild } from '../lib/runtime/child.js';
import { ensureFerretDB, startFerretDB, type FerretDB } from '../lib/runtime/ferretdb.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { createDatabase, dropDatabase, postgresAnswers } from '../lib/runtime/postgres.js';
import { startRedisServer, type RedisServer } from '../lib/runtime/redis-server.js';

/** Private servers for a benchmark run: a redis-server and FerretDB (on PostgreSQL when it answers). */
export interface BenchServers {
  redis: RedisServer;
  mongoBase: string;
  store: string;
  stop(): Promise<void>;
}

export async function startBenchServers(): Promise<BenchServers> {
  const dir = mkdtempSync(join(tmpdir(), 'workfleet-bench-'));
  const redis = await startRedisServer({ dir: join(dir, 'redis') });
  const bin = await ensureFerretDB({ onBuild: (message) => process.stdout.write(`${message}\n`) });
  let ferret: FerretDB;
  let postgresDb: string | undefined;
  if (postgresAnswers()) {
    postgresDb = `workfleet_bench_${randomBytes(4).toString('hex')}`;
    ferret = await startFerretDB({ bin, backend: { postgresUrl: createDatabase(postgresDb) } });
  } else {
    ferret = await startFerretDB({ bin, backend: { sqliteDir: join(dir, 'ferretdb') } });
  }
  return {
    redis,
    mongoBase: ferret.baseUrl,
    store: postgresDb ? 'FerretDB 1.24 on PostgreSQL' : 'FerretDB 1.24 on SQLite',
    async stop() {
      await ferret.stop();
      await redis.stop();
      if (postgresDb) dropDatabase(postgresDb);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Spawns workfleet processes (`scheduler`, `worker`, …) from dist/ with the example handlers. */
export async function spawnProcesses(roles: readonly string[], env: Record<string, string>): Promise<ManagedChild[]> {
  const cli = join(packageRoot(), 'dist', 'cli', 'workfleet.js');
  const children = roles.map((role) =>
    spawnManaged(process.execPath, [cli, role], {
      env: {
        ...process.env,
        LOG_LEVEL: 'info',
        METRICS_PORT: '0',
        WORKER_HANDLERS: join(packageRoot(), 'dist', 'examples', 'handlers', 'index.js'),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  await Promise.all(children.map((child) => waitForOutput(child, /(scheduler|worker) started|api listening/, 30_000, 'workfleet process')));
  // Keep reading (and dropping) their output, so that a full pipe never blocks them.
  for (const child of children) {
    child.process.stdout?.resume();
    child.process.stderr?.resume();
  }
  return children;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
