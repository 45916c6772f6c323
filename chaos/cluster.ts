import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Cluster as RedisClusterClient, Redis } from 'ioredis';
import { MongoClient, type Db } from 'mongodb';
import { spawnManaged, waitForOutput, type ManagedChild } from '../lib/local-servers/child.js';
import { ensureFerretDB, startFerretDB, type FerretDB } from '../lib/local-servers/ferretdb.js';
import { freePort } from '../lib/local-servers/free-port.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { startRedisServer, type RedisServer } from '../lib/local-servers/redis-server.js';
import { startRedisCluster, type RedisCluster } from '../lib/local-servers/redis-cluster.js';
import { queueOfMetaKey, queuePrefix } from '../lib/adapters/bullmq/queues.js';
import { redisConnection } from '../lib/adapters/redis/connection.js';
import { waitForReplicas } from '../lib/adapters/redis/wait-replicas.js';
import type { NetworkNamespace } from './netns.js';

export type Role = 'api' | 'scheduler' | 'worker';

/**
 * Settings that make faults visible within seconds instead of minutes: short job locks and
 * stall checks, a reconciler that looks at cases idle for 4 s. Production keeps the defaults;
 * the mechanisms are the same, only the clocks are faster.
 */
export const CHAOS_ENV: Readonly<Record<string, string>> = {
  WORKER_LOCK_DURATION_MS: '4000',
  WORKER_STALLED_CHECK_INTERVAL_MS: '2000',
  WORKER_MAX_STALLS: '2',
  WORKER_SHUTDOWN_GRACE_MS: '5000',
  WORKER_CONCURRENCY: '10',
  SCHEDULER_RECONCILE_INTERVAL_MS: '2000',
  SCHEDULER_STALE_AFTER_MS: '4000',
  SCHEDULER_LOCK_DURATION_MS: '4000',
  SCHEDULER_STUCK_AFTER_MS: '30000',
  BREAKER_RESET_TIMEOUT_MS: '2000',
  BREAKER_VOLUME_THRESHOLD: '3',
  BREAKER_ROLLING_WINDOW_MS: '5000',
  LOG_LEVEL: 'info',
  NODE_ENV: 'test',
  METRICS_PORT: '0',
};

interface Running {
  role: Role;
  child: ManagedChild;
  output: string[];
  env: Record<string, string>;
  /** The network namespace it runs in (partition scenarios); the host's when absent. */
  netns?: NetworkNamespace;
}

/** The database server shared by the scenarios of one run; each scenario takes a database of its own. */
export class SharedDatabase {
  private constructor(
    readonly ferret: FerretDB,
    private readonly dir: string,
  ) {}

  static async start(dir: string, explicitBin?: string): Promise<SharedDatabase> {
    // The suite is an operator's tool like `workfleet dev`: FERRETDB_BIN names a binary of one's own.
    const explicit = explicitBin ?? process.env.FERRETDB_BIN;
    const bin = await ensureFerretDB({ ...(explicit ? { explicit } : {}), onBuild: (message) => console.log(message) });
    const ferret = await startFerretDB({ bin, backend: { sqliteDir: join(dir, 'ferretdb') } });
    return new SharedDatabase(ferret, dir);
  }

  get pid(): number {
    return this.ferret.child.process.pid ?? 0;
  }

  async stop(): Promise<void> {
    await this.ferret.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One scenario's fleet: a private redis-server (restartable in place), a database on the shared
 * FerretDB, and the API, schedulers and workers as separate processes started from dist/ as an
 * operator would. Everything it starts, it stops.
 */
export class Cluster {
  readonly processes = new Map<string, Running>();
  readonly prefix = `chaos-${randomBytes(4).toString('hex')}`;
  apiUrl = '';
  /** The fleet's one Redis; not started on a fleet on a Redis Cluster (`redisCluster` instead). */
  redis!: RedisServer;
  /** The fleet's Redis Cluster (3 masters, a replica each) when started with `redisCluster: true`. */
  redisCluster?: RedisCluster;
  /** The suite's own connection to the Redis Cluster, shared by its queues (a producer's connection). */
  private clusterClient?: RedisClusterClient;
  /** The handlers' effects ledger: a server apart from the fleet's, like a partner's database. */
  ledger!: RedisServer;
  ledgerClient!: Redis;
  /** A connection to the one Redis (not on a Redis Cluster fleet: see `eachMaster`). */
  redisClient!: Redis;
  mongo!: MongoClient;
  db!: Db;
  private readonly queues = new Map<string, Queue>();
  private baseEnv: Record<string, string> = {};
  /** Run by `stop` once every process has exited: what a scenario made besides the fleet (a namespace). */
  private readonly cleanups: Array<() => Promise<void>> = [];

  private constructor(
    readonly name: string,
    private readonly database: SharedDatabase,
    private readonly dir: string,
    private readonly appendOnly: boolean,
  ) {}

  static async start(options: {
    name: string;
    database: SharedDatabase;
    dir: string;
    schedulers?: number;
    workers?: number;
    env?: Record<string, string>;
    /** Redis with an append-only file (fsync every second). Default false. */
    appendOnly?: boolean;
    /** The fleet on a Redis Cluster of 3 masters and 3 replicas (lib/local-servers/redis-cluster.ts) instead of one Redis. */
    redisCluster?: boolean;
  }): Promise<Cluster> {
    const cluster = new Cluster(options.name, options.database, join(options.dir, options.name), options.appendOnly ?? false);
    mkdirSync(cluster.dir, { recursive: true });
    if (options.redisCluster) {
      cluster.redisCluster = await startRedisCluster({ dir: join(cluster.dir, 'redis-cluster') });
      // A producer's connection fails a command after a few reconnections rather than holding it while a master is away.
      cluster.clusterClient = redisConnection(cluster.redisCluster.url, { maxRetriesPerRequest: 3 }) as RedisClusterClient;
    } else {
      cluster.redis = await startRedisServer({ dir: join(cluster.dir, 'redis'), appendOnly: cluster.appendOnly });
      cluster.redisClient = new Redis(cluster.redis.url, { maxRetriesPerRequest: null });
      cluster.redisClient.on('error', () => undefined);
    }
    cluster.ledger = await startRedisServer({});
    cluster.ledgerClient = new Redis(cluster.ledger.url, { maxRetriesPerRequest: null });
    const mongoUrl = `${options.database.ferret.baseUrl}${cluster.prefix.replace(/-/g, '_')}`;
    cluster.mongo = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 30_000 });
    await cluster.mongo.connect();
    cluster.db = cluster.mongo.db();
    const port = await freePort();
    cluster.apiUrl = `http://127.0.0.1:${port}`;
    cluster.baseEnv = {
      ...CHAOS_ENV,
      REDIS_URL: cluster.redisUrl,
      MONGO_URL: mongoUrl,
      BULLMQ_PREFIX: cluster.prefix,
      API_PORT: String(port),
      WORKER_HANDLERS: join(packageRoot(), 'dist', 'chaos', 'handlers.js'),
      CHAOS_LEDGER_URL: cluster.ledger.url,
      API_RATE_LIMIT_PER_MINUTE: '1000000',
      ...options.env,
    };
    await cluster.spawn('api', 'api');
    const schedulers = Array.from({ length: options.schedulers ?? 1 }, (_, i) => cluster.spawn(`scheduler-${i + 1}`, 'scheduler'));
    const workers = Array.from({ length: options.workers ?? 2 }, (_, i) => cluster.spawn(`worker-${i + 1}`, 'worker'));
    await Promise.all([...schedulers, ...workers]);
    return cluster;
  }

  /** The fleet's REDIS_URL: the one Redis's, or the cluster's `redis+cluster://` seed list. */
  get redisUrl(): string {
    return this.redisCluster?.url ?? this.redis.url;
  }

  /**
   * Asks each Redis master that serves slots now (the one Redis on a plain fleet) `question`:
   * what the keyspace and memory checks need, since a cluster node knows only its own keys.
   */
  async eachMaster<T>(question: (redis: Redis) => Promise<T>): Promise<T[]> {
    if (!this.redisCluster) return [await question(this.redisClient)];
    const answers: T[] = [];
    for (const { node } of await this.redisCluster.masters()) {
      const redis = new Redis(node.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      redis.on('error', () => undefined);
      try {
        answers.push(await question(redis));
      } finally {
        redis.disconnect();
      }
    }
    return answers;
  }

  /** The queue a BullMQ `meta` key belongs to (keys carry the queue as a hash tag on a cluster). */
  queueOfMetaKey(key: string): string | undefined {
    return queueOfMetaKey(this.prefix, key, this.redisCluster !== undefined);
  }

  /** The settings every process of the fleet starts with (REDIS_URL, MONGO_URL, …). */
  get fleetEnv(): Readonly<Record<string, string>> {
    return this.baseEnv;
  }

  /** Runs `cleanup` when the cluster stops, after its processes, whether the scenario passed or not. */
  onStop(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  async spawn(name: string, role: Role, env: Record<string, string> = {}, netns?: NetworkNamespace): Promise<void> {
    const merged = { ...this.baseEnv, ...env };
    const args = [join(packageRoot(), 'dist', 'cli', 'workfleet.js'), role];
    const [command, commandArgs] = netns ? netns.wrap(process.execPath, args) : [process.execPath, args];
    const child = spawnManaged(command, commandArgs, {
      env: { ...process.env, ...merged },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const previous = this.processes.get(name);
    const output = previous?.output ?? [];
    const keep = (chunk: Buffer) => output.push(chunk.toString('utf8'));
    child.process.stdout?.on('data', keep);
    child.process.stderr?.on('data', keep);
    this.processes.set(name, { role, child, output, env, ...(netns ? { netns } : {}) });
    const ready = { api: /api listening/, scheduler: /scheduler started/, worker: /worker started/ }[role];
    await waitForOutput(child, ready, 60_000, `${this.name}/${name}`);
  }

  /** Starts a stopped or killed process again under the same name and settings. */
  async respawn(name: string): Promise<void> {
    const running = this.must(name);
    await this.spawn(name, running.role, running.env, running.netns);
  }

  /** The pid of the shared database server, for pausing it. */
  databasePid(): number {
    return this.database.pid;
  }

  names(role?: Role): string[] {
    return [...this.processes].filter(([, running]) => role === undefined || running.role === role).map(([name]) => name);
  }

  alive(name: string): boolean {
    const child = this.must(name).child.process;
    return child.exitCode === null && child.signalCode === null;
  }

  pid(name: string): number {
    return this.must(name).child.process.pid ?? 0;
  }

  exited(name: string): Promise<number | NodeJS.Signals> {
    return this.must(name).child.exited;
  }

  kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<number | NodeJS.Signals> {
    return this.must(name).child.stop(signal, 60_000);
  }

  output(name: string): string {
    return this.must(name).output.join('');
  }

  /** Kilobytes of resident memory of each live process, from /proc. */
  rssKb(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of this.names()) {
      if (!this.alive(name)) continue;
      try {
        const status = readFileSync(`/proc/${this.pid(name)}/status`, 'utf8');
        out[name] = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      } catch {
        // the process exited between the two reads
      }
    }
    return out;
  }

  /** Stops redis-server the hard way and starts it again on the same port and directory. */
  async restartRedis(options: { wipe: boolean }): Promise<void> {
    await this.redis.child.stop('SIGKILL');
    if (options.wipe) rmSync(join(this.dir, 'redis'), { recursive: true, force: true });
    this.redis = await startRedisServer({ dir: join(this.dir, 'redis'), appendOnly: this.appendOnly, port: this.redis.port });
  }

  /** A BullMQ queue of the fleet, opened once and closed with the cluster. */
  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = this.clusterClient
        ? new Queue(name, { connection: this.clusterClient, prefix: queuePrefix(this.prefix, name, true) })
        : new Queue(name, { connection: { url: this.redis.url, maxRetriesPerRequest: null }, prefix: this.prefix });
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Adds a job to the intake queue as a BullMQ producer in another service would. With
   * `waitReplicas` (a fleet on a Redis Cluster), the add counts as done only once that many
   * replicas confirm it (WAIT on the master that took it; docs/PRODUCERS.md), else it throws.
   */
  async addIntake(data: unknown, options: { name?: string; jobId?: string; waitReplicas?: { replicas: number; timeoutMs: number } } = {}): Promise<string> {
    const job = await this.queue('cases').add(options.name ?? 'start', data, { ...(options.jobId ? { jobId: options.jobId } : {}), removeOnComplete: false });
    if (options.waitReplicas) {
      if (!this.clusterClient) throw new Error('waitReplicas needs a fleet on a Redis Cluster');
      await waitForReplicas(this.clusterClient, `${queuePrefix(this.prefix, 'cases', true)}:cases:meta`, options.waitReplicas.replicas, options.waitReplicas.timeoutMs);
    }
    return job.id ?? '';
  }

  async intakeJob(jobId: string): Promise<{ state: string; failedReason?: string } | undefined> {
    const job = await this.queue('cases').getJob(jobId);
    if (!job) return undefined;
    return { state: await job.getState(), ...(job.failedReason ? { failedReason: job.failedReason } : {}) };
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the suite reads answers freely
  async http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    const response = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text for the report
    }
    return { status: response.status, body: parsed };
  }

  async stop(): Promise<void> {
    await Promise.all(this.names().map((name) => this.kill(name, 'SIGTERM').catch(() => undefined)));
    for (const cleanup of this.cleanups.splice(0)) await cleanup().catch(() => undefined);
    await Promise.all([...this.queues.values()].map((queue) => queue.close().catch(() => undefined)));
    this.redisClient?.disconnect();
    this.clusterClient?.disconnect();
    this.ledgerClient.disconnect();
    await this.ledger.stop();
    await this.db.dropDatabase().catch(() => undefined);
    await this.mongo.close().catch(() => undefined);
    await (this.redisCluster ?? this.redis).stop();
    const logs = join(packageRoot(), 'test-artifacts', 'chaos', this.name);
    mkdirSync(logs, { recursive: true });
    for (const [name, running] of this.processes) writeFileSync(join(logs, `${name}.log`), running.output.join(''));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private must(name: string): Running {
    const running = this.processes.get(name);
    if (!running) throw new Error(`no process ${name}`);
    return running;
  }
}
