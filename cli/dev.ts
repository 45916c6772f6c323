import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import pinoPretty from 'pino-pretty';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/load.js';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { formatDuration } from '../lib/core/format.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { systemClock } from '../lib/ports/clock.js';
import { spawnManaged, type ManagedChild } from '../lib/local-servers/child.js';
import { ensureFerretDB, startFerretDB, type FerretDB } from '../lib/local-servers/ferretdb.js';
import { freePort, portInUse } from '../lib/local-servers/free-port.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { startRedisServer, type RedisServer } from '../lib/local-servers/redis-server.js';
import { color } from './render.js';

const say = (message: string) => process.stdout.write(`${color.bold('[dev]')} ${message}\n`);

/** The processes `workfleet dev` runs, as `workfleet <command>` children. */
const FLEET = [
  { name: 'api', args: ['api'] },
  { name: 'scheduler', args: ['scheduler'] },
  { name: 'worker-1', args: ['worker'] },
  { name: 'worker-2', args: ['worker'] },
] as const;

const TAG_COLORS = [36, 35, 33, 32];

/** Pretty-prints a child's JSON log lines, each prefixed with the child's name. */
function pipeLogs(child: ManagedChild, name: string, index: number): void {
  const pretty = pinoPretty.prettyFactory({ colorize: process.stdout.isTTY === true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname,process,name' });
  const tag = process.stdout.isTTY ? `\u001b[${TAG_COLORS[index % TAG_COLORS.length]}m${name.padEnd(9)}\u001b[0m` : name.padEnd(9);
  for (const stream of [child.process.stdout, child.process.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      let text = line;
      if (line.startsWith('{')) {
        try {
          text = pretty(JSON.parse(line)).trimEnd();
        } catch {
          // not a log record: print it as it came
        }
      }
      process.stdout.write(`${tag} ${text}\n`);
    });
  }
}

/** Cases that show what the explorer draws: retries then success, failure after retries, a signal wait. */
const EXAMPLE_CASES = [
  { key: 'flaky-fetch-recovers', workflow: 'flaky-fetch', input: { failTimes: 2, url: 'https://example.com/report' }, shows: 'retries, then completes' },
  { key: 'flaky-fetch-gives-up', workflow: 'flaky-fetch', input: { failTimes: 9, url: 'https://example.com/down' }, shows: 'fails after its attempts' },
  { key: 'approval-waits', workflow: 'approval', input: { approver: 'ana@example.com', amount: 120 }, shows: 'waits for a signal' },
];

/** Starts the example cases through the API; fixed idempotency keys make a restart find the same ones. */
async function startExampleCases(apiUrl: string): Promise<string[]> {
  const lines: string[] = [];
  for (const example of EXAMPLE_CASES) {
    try {
      const response = await fetch(`${apiUrl}/v1/cases`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ workflow: example.workflow, input: example.input, idempotencyKey: `dev-example:${example.key}` }),
      });
      const body = (await response.json()) as { id?: string; error?: { message?: string } };
      lines.push(response.ok ? `example case ${body.id ?? '?'} ${example.workflow}: ${example.shows}` : `example case ${example.key} not started: ${body.error?.message ?? response.status}`);
    } catch (error) {
      lines.push(`example case ${example.key} not started: ${(error as Error).message}`);
    }
  }
  return lines;
}

/** The database `workfleet dev` keeps in its embedded FerretDB. */
const DEV_DATABASE = 'workfleet';

async function applyExamples(mongoUrl: string): Promise<string[]> {
  const store = new MongoStore({ url: mongoUrl });
  await store.init();
  try {
    const registry = new WorkflowRegistry(store, systemClock);
    const dir = join(packageRoot(), 'examples', 'workflows');
    const applied: string[] = [];
    for (const file of readdirSync(dir)
      .filter((name) => /\.(ya?ml|json)$/.test(name))
      .sort()) {
      const text = readFileSync(join(dir, file), 'utf8');
      const { workflow, created } = await registry.apply(file.endsWith('.json') ? JSON.parse(text) : parseYaml(text));
      applied.push(`${workflow.name} v${workflow.version}${created ? '' : ' (unchanged)'}`);
    }
    return applied;
  } finally {
    await store.close();
  }
}

async function waitForHealth(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
  }
  throw new Error(`the API did not answer ${url}/health within ${formatDuration(timeoutMs)}`);
}

/**
 * `workfleet dev`: the whole fleet on a laptop. Starts a private redis-server and an embedded
 * FerretDB (SQLite, in the data directory, so data survives restarts) unless REDIS_URL or
 * MONGO_URL are set, applies the example workflows, runs api, scheduler and two workers with the
 * example handlers, and stops everything it started on Ctrl-C.
 */
export async function runDev(config: Config, explicit: { redisUrl?: string; mongoUrl?: string }): Promise<void> {
  if (config.env === 'production') throw new Error('workfleet dev refuses NODE_ENV=production: it runs an embedded development store');
  const dataDir = resolve(config.dev.dataDir);
  mkdirSync(dataDir, { recursive: true });
  // Stopped in reverse order of start: the fleet's processes together, then the store, then Redis.
  // Each runs in a process group of its own, so a terminal's Ctrl-C reaches only this process:
  // otherwise redis-server and FerretDB stop at once while the fleet still talks to them.
  const infrastructure: Array<{ name: string; stop: () => Promise<unknown> }> = [];
  const fleet: Array<{ name: string; stop: () => Promise<unknown> }> = [];
  let stopping = false;
  const devFile = join(dataDir, 'dev.json');

  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say('stopping…');
    rmSync(devFile, { force: true });
    await Promise.all(fleet.map((item) => item.stop().catch(() => undefined)));
    for (const item of [...infrastructure].reverse()) await item.stop().catch(() => undefined);
    say('stopped');
    process.exit(code);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stopAll(0));

  try {
    let redisUrl = explicit.redisUrl;
    if (!redisUrl) {
      const redis: RedisServer = await startRedisServer({ dir: join(dataDir, 'redis'), appendOnly: true, ownProcessGroup: true });
      infrastructure.push({ name: 'redis', stop: () => redis.stop() });
      redisUrl = redis.url;
      say(`redis-server on ${redis.url} (data in ${join(dataDir, 'redis')})`);
    }
    let mongoUrl = explicit.mongoUrl;
    let ferretdb: FerretDB | undefined;
    if (!mongoUrl) {
      const bin = await ensureFerretDB({ ...(config.dev.ferretdbBin ? { explicit: config.dev.ferretdbBin } : {}), onBuild: say });
      const ferret: FerretDB = await startFerretDB({ bin, backend: { sqliteDir: join(dataDir, 'ferretdb') }, ownProcessGroup: true });
      infrastructure.push({ name: 'ferretdb', stop: () => ferret.stop() });
      ferretdb = ferret;
      mongoUrl = `${ferret.baseUrl}${DEV_DATABASE}`;
      say(`FerretDB (SQLite, telemetry off) on ${ferret.baseUrl} (data in ${join(dataDir, 'ferretdb')})`);
    }
    for (const line of await applyExamples(mongoUrl)) say(`workflow ${line}`);
    // The embedded FerretDB's files are ours: index them so lookups stay fast as cases pile up.
    // Without them everything still works, each lookup only reads the whole table.
    await ferretdb?.indexDatabase(DEV_DATABASE).catch((error: unknown) => say(color.red(`FerretDB's lookups are not indexed (they slow down as cases pile up): ${(error as Error).message}`)));

    const port = (await portInUse(config.api.port, config.api.host)) ? await freePort() : config.api.port;
    if (port !== config.api.port) say(`port ${config.api.port} is taken; the API uses ${port}`);
    const apiUrl = `http://${config.api.host === '0.0.0.0' ? '127.0.0.1' : config.api.host}:${port}`;
    const env = {
      ...process.env,
      REDIS_URL: redisUrl,
      MONGO_URL: mongoUrl,
      API_PORT: String(port),
      WORKER_HANDLERS: join(packageRoot(), 'dist', 'examples', 'handlers', 'index.js'),
      AUTH_ENABLED: 'false',
      LOG_LEVEL: config.log.level,
    };
    const cli = join(packageRoot(), 'dist', 'cli', 'workfleet.js');
    // Each scheduler and worker serves /metrics on a port of its own.
    const metricsPorts = new Map<string, number>();
    for (const { name } of FLEET) if (name !== 'api') metricsPorts.set(name, await freePort());
    FLEET.forEach(({ name, args }, index) => {
      const childEnv = { ...env, METRICS_PORT: String(metricsPorts.get(name) ?? 0) };
      const child = spawnManaged(process.execPath, [cli, ...args], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      pipeLogs(child, name, index);
      fleet.push({ name, stop: () => child.stop('SIGTERM', config.worker.shutdownGraceMs + 5_000) });
      void child.exited.then((result) => {
        if (!stopping) {
          say(color.red(`${name} exited (${String(result)}); stopping the fleet`));
          void stopAll(1);
        }
      });
    });
    await waitForHealth(apiUrl, 30_000);
    if (config.dev.exampleCases) for (const line of await startExampleCases(apiUrl)) say(line);
    writeFileSync(devFile, JSON.stringify({ apiUrl, redisUrl, mongoUrl, pid: process.pid }, null, 2));
    // One write, so that the banner is never interleaved with the children's logs.
    process.stdout.write(
      [
        color.green('workfleet is running'),
        `API          ${apiUrl}   (docs ${apiUrl}/docs)`,
        `explorer     ${apiUrl}/ui`,
        `Bull Board   ${apiUrl}/admin/queues`,
        `status       ${apiUrl}/v1/status`,
        `metrics      ${apiUrl}/metrics, ${[...metricsPorts].map(([name, port]) => `${name} :${port}`).join(', ')}`,
        `health       ${apiUrl}/health  ${apiUrl}/ready`,
        `try it       npx workfleet case start order --input '{"sku":"book-42","quantity":1,"amount":25}' --wait`,
        'Ctrl-C stops everything',
      ]
        .map((line) => `${color.bold('[dev]')} ${line}\n`)
        .join(''),
    );
  } catch (error) {
    say(color.red((error as Error).message));
    await stopAll(1);
  }
}
