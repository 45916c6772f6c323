import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { spawnManaged, type ManagedChild } from '../lib/local-servers/child.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import type { FleetSpec } from './fleet-process.js';
import type { BenchServers } from './harness.js';
import { sleep } from './harness.js';
import { newCounters, type FinishedCounts, type StoreCounters } from './store-counters.js';
import { CONCURRENCY, inputOf, type StoreKind } from './workloads.js';

const id = () => randomBytes(4).toString('hex');

/** Fleet processes started and not yet stopped, so that the baselines can make sure there are none. */
let alive = 0;

/** Throws if any fleet process is still running: the baselines are measured with none. */
export function assertNoFleet(what: string): void {
  if (alive > 0) throw new Error(`bench: ${alive} fleet process(es) still running during ${what}`);
}

/** One process of a fleet (bench/fleet-process.ts), reached over its IPC channel. */
class Member {
  private nextId = 0;
  private readonly waiting = new Map<number, (stats: StoreCounters) => void>();
  readonly ready: Promise<void>;

  constructor(
    readonly role: string,
    readonly child: ManagedChild,
  ) {
    child.process.stdout?.resume();
    child.process.stderr?.resume();
    this.ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bench fleet process (${role}) not ready within 30 s`)), 30_000);
      void child.exited.then((code) => reject(new Error(`bench fleet process (${role}) exited (${code}) during start-up`)));
      child.process.on('message', (message: { type?: string; id?: number; stats?: StoreCounters }) => {
        if (message.type === 'ready') {
          clearTimeout(timer);
          resolve();
        } else if (message.type === 'stats' && message.id !== undefined && message.stats) {
          this.waiting.get(message.id)?.(message.stats);
          this.waiting.delete(message.id);
        }
      });
    });
  }

  stats(): Promise<StoreCounters> {
    const requestId = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(requestId, resolve);
      this.child.process.send({ type: 'stats', id: requestId });
    });
  }
}

export interface FleetOptions {
  /** Extra settings for every process (e.g. JOBS_EVENTS_MAX_LENGTH for the hand-off streams). */
  settings?: Record<string, string>;
  /** An existing database (the scale run's preloaded one); default: a new one. */
  dbName?: string;
  profileDir?: string | undefined;
  /** Worker processes of a FerretDB fleet (default 1): with more, branches of a split end in different processes and race for the join. */
  workers?: number;
}

/** The counters of every fleet process with a store, added up. */
function sum(all: readonly StoreCounters[]): StoreCounters {
  const total = newCounters();
  const add = (into: Record<string, number>, from: Record<string, number>) => {
    for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
  };
  for (const counters of all) {
    add(total.portCalls, counters.portCalls);
    add(total.storeOps, counters.storeOps);
    total.storeDocs += counters.storeDocs;
    total.conflicts += counters.conflicts;
    total.created += counters.created;
    if (counters.firstCreatedAt !== undefined) total.firstCreatedAt = Math.min(total.firstCreatedAt ?? Infinity, counters.firstCreatedAt);
    for (const [workflow, counts] of Object.entries(counters.finished)) {
      const into: FinishedCounts = (total.finished[workflow] ??= { completed: 0, failed: 0, cancelled: 0, lastFinishedAt: 0 });
      into.completed += counts.completed;
      into.failed += counts.failed;
      into.cancelled += counts.cancelled;
      into.lastFinishedAt = Math.max(into.lastFinishedAt, counts.lastFinishedAt);
    }
  }
  return total;
}

/**
 * A workfleet fleet on a BullMQ prefix (and, on FerretDB, a database) of its own. On the memory
 * store it is one process running the scheduler and a worker; on FerretDB a worker process and
 * a scheduler process. Each worker has concurrency 50, like the raw baseline's worker.
 */
export class Fleet {
  readonly prefix = `wf-${id()}`;
  readonly dbName: string;
  readonly intake: Queue;
  private members: Member[] = [];

  constructor(
    private readonly servers: BenchServers,
    readonly kind: StoreKind,
    private readonly options: FleetOptions = {},
  ) {
    this.dbName = options.dbName ?? `bench_${id()}`;
    this.intake = new Queue('cases', { connection: { url: servers.redis.url }, prefix: this.prefix });
  }

  get mongoUrl(): string {
    return `${this.servers.mongoBase}${this.dbName}`;
  }

  private settings(): Record<string, string> {
    return {
      REDIS_URL: this.servers.redis.url,
      MONGO_URL: this.mongoUrl,
      BULLMQ_PREFIX: this.prefix,
      WORKER_CONCURRENCY: String(CONCURRENCY),
      // The hot path the bench measures (the default): workers apply their steps' reports.
      WORKER_ADVANCES_CASES: 'true',
      WORKER_HANDLERS: join(packageRoot(), 'dist', 'examples', 'handlers', 'index.js'),
      METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
      ...this.options.settings,
    };
  }

  /** Starts the fleet's processes and waits until they serve their queues. */
  async start(): Promise<void> {
    const workers = Array.from({ length: this.options.workers ?? 1 }, (): FleetSpec['roles'] => ['worker']);
    const layout: Array<FleetSpec['roles']> = this.kind === 'memory' ? [['scheduler', 'worker']] : [...workers, ['scheduler']];
    for (const roles of layout) {
      const spec: FleetSpec = { roles, store: this.kind === 'memory' ? 'memory' : 'mongo', settings: this.settings() };
      const script = join(packageRoot(), 'dist', 'bench', 'fleet-process.js');
      const profile = this.options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${this.options.profileDir}`] : [];
      const child = spawnManaged(process.execPath, [...profile, script, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      const member = new Member(roles.join('+'), child);
      alive += 1;
      void child.exited.then(() => (alive -= 1));
      this.members.push(member);
      await member.ready;
    }
    // The scheduler's store has made the collections: now the backend indexes, as `workfleet dev` does.
    if (this.kind === 'ferretdb') await this.servers.indexDatabase(this.dbName);
  }

  /** Process ids by name, for CPU readings: `fleet` (memory store) or `scheduler` and `worker`. */
  pids(): Record<string, number | undefined> {
    const names = this.members.map((member, index) => {
      const name = member.role === 'scheduler+worker' ? 'fleet' : member.role;
      return this.members.findIndex((other) => other.role === member.role) === index ? name : `${name}-${index + 1}`;
    });
    return Object.fromEntries(this.members.map((member, index): [string, number | undefined] => [names[index] ?? member.role, member.child.process.pid]));
  }

  async submit(workflow: string, count: number, from = 0): Promise<void> {
    for (let i = 0; i < count; i += 500) {
      await this.intake.addBulk(Array.from({ length: Math.min(500, count - i) }, (_, j) => ({ name: 'start', data: { workflow, input: inputOf(workflow, from + i + j) } })));
    }
  }

  async stats(): Promise<StoreCounters> {
    return sum(await Promise.all(this.members.map((member) => member.stats())));
  }

  /**
   * Waits until `count` cases of `workflow` have finished, all completed, and returns the
   * counters. After `timeoutMs` it throws, or with `partial` returns what has finished so far.
   */
  async waitFinished(workflow: string, count: number, timeoutMs: number, partial = false): Promise<StoreCounters> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const stats = await this.stats();
      const done = stats.finished[workflow];
      if (done && done.failed + done.cancelled > 0) throw new Error(`${workflow} on ${this.kind}: ${done.failed} failed, ${done.cancelled} cancelled`);
      if ((done?.completed ?? 0) >= count || (partial && Date.now() > deadline)) return stats;
      if (Date.now() > deadline) throw new Error(`${workflow} on ${this.kind}: ${done?.completed ?? 0} of ${count} cases completed after ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  completed(stats: StoreCounters, workflow: string): number {
    return stats.finished[workflow]?.completed ?? 0;
  }

  async stop(): Promise<void> {
    await this.intake.close();
    await Promise.all(this.members.map((member) => member.child.stop('SIGTERM', 30_000)));
    this.members = [];
  }
}
