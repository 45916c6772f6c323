import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnManaged, waitForOutput, type ManagedChild } from '../../lib/local-servers/child.js';
import { freePort } from '../../lib/local-servers/free-port.js';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { waitFor } from './wait.js';

export type Role = 'api' | 'scheduler' | 'worker';

interface Running {
  role: Role;
  child: ManagedChild;
  output: string[];
}

/**
 * The real processes, spawned from dist/ exactly as an operator runs them (`workfleet api`, …),
 * against the servers of a test suite. Each process's output is kept for assertions and written
 * to test-artifacts/ when the fleet stops.
 */
export class Fleet {
  readonly processes = new Map<string, Running>();
  /** The /metrics port of each scheduler and worker, when the fleet was started with them. */
  readonly metricsPorts = new Map<string, number>();
  apiUrl = '';

  constructor(
    private readonly env: Record<string, string>,
    private readonly label: string,
  ) {}

  static async start(options: {
    redisUrl: string;
    mongoUrl: string;
    prefix: string;
    workers?: number;
    env?: Record<string, string>;
    label: string;
    /** Give the scheduler and each worker a metrics port of its own. Default false (METRICS_PORT=0). */
    metrics?: boolean;
  }): Promise<Fleet> {
    const port = await freePort();
    const fleet = new Fleet(
      {
        REDIS_URL: options.redisUrl,
        MONGO_URL: options.mongoUrl,
        BULLMQ_PREFIX: options.prefix,
        API_PORT: String(port),
        WORKER_HANDLERS: join(packageRoot(), 'dist', 'examples', 'handlers', 'index.js'),
        LOG_LEVEL: 'info',
        NODE_ENV: 'test',
        METRICS_PORT: '0',
        ...options.env,
      },
      options.label,
    );
    fleet.apiUrl = `http://127.0.0.1:${port}`;
    const names = ['scheduler', ...Array.from({ length: options.workers ?? 2 }, (_, i) => `worker-${i + 1}`)];
    if (options.metrics) for (const name of names) fleet.metricsPorts.set(name, await freePort());
    const metricsEnv = (name: string) => ({ METRICS_PORT: String(fleet.metricsPorts.get(name) ?? 0) });
    await Promise.all([fleet.spawn('api', 'api'), ...names.map((name) => fleet.spawn(name, name === 'scheduler' ? 'scheduler' : 'worker', metricsEnv(name)))]);
    await waitFor('the API to answer /health', async () => ((await fetch(`${fleet.apiUrl}/health`)).ok ? true : undefined));
    return fleet;
  }

  async spawn(name: string, role: Role, extraEnv: Record<string, string> = {}): Promise<ManagedChild> {
    const child = spawnManaged(process.execPath, [join(packageRoot(), 'dist', 'cli', 'workfleet.js'), role], {
      env: { ...process.env, ...this.env, ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const keep = (chunk: Buffer) => output.push(chunk.toString('utf8'));
    child.process.stdout?.on('data', keep);
    child.process.stderr?.on('data', keep);
    this.processes.set(name, { role, child, output });
    const ready = { api: /api listening/, scheduler: /scheduler started/, worker: /worker started/ }[role];
    await waitForOutput(child, ready, 30_000, name);
    return child;
  }

  output(name: string): string {
    return this.processes.get(name)?.output.join('') ?? '';
  }

  /** Log records of a process, parsed (pino writes one JSON object per line). */
  records(name: string): Array<Record<string, unknown>> {
    return this.output(name)
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  async stop(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | NodeJS.Signals> {
    const running = this.processes.get(name);
    if (!running) throw new Error(`no process ${name}`);
    return running.child.stop(signal, 40_000);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((name) => this.stop(name).catch(() => undefined)));
    const dir = join(packageRoot(), 'test-artifacts', this.label);
    mkdirSync(dir, { recursive: true });
    for (const [name, running] of this.processes) writeFileSync(join(dir, `${name}.log`), running.output.join(''));
  }
}
