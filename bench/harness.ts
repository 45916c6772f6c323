import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnManaged, waitForOutput, type ManagedChild } from '../lib/local-servers/child.js';
import { ensureFerretDB, startFerretDB, type FerretDB } from '../lib/local-servers/ferretdb.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { createDatabase, dropDatabase, postgresAnswers } from '../lib/local-servers/postgres.js';
import { startRedisServer, type RedisServer } from '../lib/local-servers/redis-server.js';
import { cpuMs, postgresCpuMs, postgresCpuSince } from './counters.js';

/** Private servers for a benchmark run: a redis-server and FerretDB (on PostgreSQL when it answers). */
export interface BenchServers {
  redis: RedisServer;
  mongoBase: string;
  store: string;
  /** FerretDB's process id, to read the CPU time it spent. */
  ferretPid: number | undefined;
  /** FerretDB's PostgreSQL database, when on PostgreSQL: its backends' CPU time is the store's too. */
  postgresDb: string | undefined;
  /** The backend indexes FerretDB needs (lib/local-servers/ferretdb-indexes.ts), once the store's `init` made the database's collections. */
  indexDatabase(database: string): Promise<void>;
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
    ferretPid: ferret.child.process.pid,
    postgresDb,
    store: postgresDb ? 'FerretDB 1.24 on PostgreSQL' : 'FerretDB 1.24 on SQLite',
    indexDatabase: (database) => ferret.indexDatabase(database),
    async stop() {
      await ferret.stop();
      await redis.stop();
      if (postgresDb) dropDatabase(postgresDb);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Spawns workfleet processes (`scheduler`, `worker`, …) from dist/ with the example handlers.
 * With `profileDir`, each writes a V8 CPU profile there when it exits (SIGTERM).
 */
export async function spawnProcesses(roles: readonly string[], env: Record<string, string>, options: { profileDir?: string } = {}): Promise<ManagedChild[]> {
  const cli = join(packageRoot(), 'dist', 'cli', 'workfleet.js');
  const profile = options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : [];
  const children = roles.map((role) =>
    spawnManaged(process.execPath, [...profile, cli, role], {
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
  try {
    await Promise.all(children.map((child) => waitForOutput(child, /(scheduler|worker) started|api listening/, 30_000, 'workfleet process')));
  } catch (error) {
    // None is left running when one did not start.
    await Promise.all(children.map((child) => child.stop('SIGKILL', 5_000).catch(() => undefined)));
    throw error;
  }
  // Keep reading (and dropping) their output, so that a full pipe never blocks them.
  for (const child of children) {
    child.process.stdout?.resume();
    child.process.stderr?.resume();
  }
  return children;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the servers are idle (FerretDB, its PostgreSQL backends and redis-server together
 * under 5% of a core over half a second, e.g. once PostgreSQL's autovacuum is done after a
 * workload), at most `timeoutMs`. Returns their CPU ms per second in the last half second.
 */
export async function waitQuiet(servers: BenchServers, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = [servers.ferretPid, servers.redis.child.process.pid];
    const before = pids.map(cpuMs);
    const postgres = postgresCpuMs(servers.postgresDb);
    await sleep(500);
    const used = pids.reduce<number>((sum, pid, index) => sum + cpuMs(pid) - (before[index] ?? 0), 0) + postgresCpuSince(postgres, servers.postgresDb);
    if (used <= 25 || Date.now() > deadline) return used * 2;
  }
}

/** A child's stdout as lines, for benchmark helpers that report over it. */
export class LineReader {
  private buffer = '';
  private readonly lines: string[] = [];
  private readonly waiters: Array<{ pattern: RegExp; resolve: (line: string) => void }> = [];

  constructor(child: ManagedChild) {
    child.process.stdout?.setEncoding('utf8');
    child.process.stdout?.on('data', (chunk: string) => {
      this.buffer += chunk;
      let newline = this.buffer.indexOf('\n');
      while (newline >= 0) {
        this.push(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
        newline = this.buffer.indexOf('\n');
      }
    });
    child.process.stderr?.resume();
  }

  private push(line: string): void {
    const waiter = this.waiters.find((candidate) => candidate.pattern.test(line));
    if (waiter) {
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve(line);
    } else {
      this.lines.push(line);
    }
  }

  /** The first line (already read or still to come) matching `pattern`; rejects after `timeoutMs`. */
  next(pattern: RegExp, timeoutMs: number, what: string): Promise<string> {
    const index = this.lines.findIndex((line) => pattern.test(line));
    if (index >= 0) return Promise.resolve(this.lines.splice(index, 1)[0] ?? '');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(
          this.waiters.findIndex((waiter) => waiter.resolve === settle),
          1,
        );
        reject(new Error(`${what}: no line matching ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle = (line: string) => {
        clearTimeout(timer);
        resolve(line);
      };
      this.waiters.push({ pattern, resolve: settle });
    });
  }
}

/** Starts a raw BullMQ worker process (bench/raw-worker.ts) and waits until it takes jobs. */
export async function spawnRawWorker(args: {
  mode: 'noop' | 'latency';
  redisUrl: string;
  prefix: string;
  queue: string;
  target: number;
  countName?: string;
  profileDir?: string;
}): Promise<{ child: ManagedChild; lines: LineReader }> {
  const script = join(packageRoot(), 'dist', 'bench', 'raw-worker.js');
  const profile = args.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${args.profileDir}`] : [];
  const child = spawnManaged(process.execPath, [...profile, script, args.mode, args.redisUrl, args.prefix, args.queue, String(args.target), ...(args.countName ? [args.countName] : [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines = new LineReader(child);
  await lines.next(/^ready$/, 20_000, 'raw worker');
  return { child, lines };
}

/** Calls `add(count)` so that `rate` items per second go out for `seconds`, in 10 ms slices. */
export async function offerAtRate(rate: number, seconds: number, add: (count: number) => Promise<void>): Promise<number> {
  const total = Math.max(1, Math.round(rate * seconds));
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate) + 1);
    if (due > sent) {
      const count = due - sent;
      sent = due;
      await add(count);
    }
    await sleep(10);
  }
  return total;
}
