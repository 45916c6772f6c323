import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnManaged, waitForOutput, type ManagedChild } from '../../lib/local-servers/child.js';
import { freePort, portInUse } from '../../lib/local-servers/free-port.js';
import { packageRoot } from '../../lib/runtime/package-root.js';

/**
 * What a new user does: `workfleet dev` (what `npm start` runs) with nothing configured, then
 * the CLI against it, then Ctrl-C. Dev mode starts its own redis-server and FerretDB on SQLite.
 */

const run = promisify(execFile);
const cli = join(packageRoot(), 'dist', 'cli', 'workfleet.js');
let dataDir: string;
let dev: ManagedChild;
let output = '';
let env: Record<string, string>;

async function workfleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'workfleet-dev-'));
  const { REDIS_URL: _redis, MONGO_URL: _mongo, ...inherited } = process.env as Record<string, string>;
  env = {
    ...inherited,
    DEV_DATA_DIR: dataDir,
    API_PORT: String(await freePort()),
    FERRETDB_BIN: process.env.WORKFLEET_TEST_FERRETDB_BIN ?? '',
    NO_COLOR: '1',
  };
  // A process group of its own, like a shell's foreground job: Ctrl-C is sent to the whole group.
  dev = spawnManaged(process.execPath, [cli, 'dev'], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  dev.process.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  dev.process.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  await waitForOutput(dev, /Ctrl-C stops everything/, 120_000, 'workfleet dev');
});

afterAll(async () => {
  // SIGTERM first: the fleet's processes run in process groups of their own and outlive a SIGKILLed dev.
  await dev?.stop('SIGTERM', 30_000);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('workfleet dev and the CLI', () => {
  it('prints where everything is and loads the example workflows', () => {
    expect(output).toMatch(/redis-server on redis:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/FerretDB \(SQLite, telemetry off\) on mongodb:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/workflow order v1/);
    expect(output).toMatch(/API {10}http:\/\/127\.0\.0\.1:\d+/);
    expect(output).toMatch(/metrics {6}http:\/\/127\.0\.0\.1:\d+\/metrics/);
  });

  it('starts the example cases for the explorer: one recovers, one fails, one waits for a signal', async () => {
    expect(output).toMatch(/example case \S+ flaky-fetch: retries, then completes/);
    expect(output).toMatch(/example case \S+ approval: waits for a signal/);
    const waitingId = /example case (\S+) approval/.exec(output)?.[1] ?? '';
    const until = Date.now() + 60_000;
    let statuses = '';
    while (Date.now() < until) {
      const [fetches, approval] = await Promise.all([workfleet('case', 'list', '--workflow', 'flaky-fetch'), workfleet('case', 'show', waitingId)]);
      statuses = `${fetches.stdout}\n${approval.stdout}`;
      if (/completed/.test(fetches.stdout) && /failed/.test(fetches.stdout) && /waiting/.test(approval.stdout)) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(statuses).toMatch(/completed/);
    expect(statuses).toMatch(/failed/);
    expect(statuses).toMatch(/waiting/);
  });

  it('starts a case and follows it to its output', async () => {
    const result = await workfleet('case', 'start', 'order', '--input', '{"sku":"book-42","quantity":1,"amount":25}', '--wait');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/case.created\s+order v1/);
    expect(result.stdout).toMatch(/step.completed\s+ship/);
    expect(result.stdout).toMatch(/case.completed/);
    expect(result.stdout).toContain('"trackingNumber"');
  });

  it('ends with exit code 1 and the error when the case fails', async () => {
    const result = await workfleet('case', 'start', 'order', '--input', '{"sku":"book-42","quantity":1,"amount":99999}', '--wait');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/failed: STEP_FAILED: step "charge" failed after 1 attempt: card declined/);
  });

  it('lists, shows and traces cases', async () => {
    const list = await workfleet('case', 'list', '--workflow', 'order');
    expect(list.code).toBe(0);
    const ids = list.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split(/\s+/)[0] ?? '');
    expect(ids).toHaveLength(2);
    const completedId =
      list.stdout
        .split('\n')
        .find((line) => line.includes('completed'))
        ?.split(/\s+/)[0] ?? '';
    const show = await workfleet('case', 'show', completedId);
    expect(show.stdout).toMatch(/ship\s+completed\s+1/);
    const trace = await workfleet('case', 'trace', completedId, '--json');
    expect((JSON.parse(trace.stdout) as { events: unknown[] }).events.length).toBeGreaterThanOrEqual(9);
    expect((await workfleet('workflow', 'list')).stdout).toMatch(/order\s+v1/);
  });

  it('says what a signal did, refuses one nothing waits for, and names the allowed values of a filter once', async () => {
    const waitingId = /example case (\S+) approval/.exec(output)?.[1] ?? '';
    const typo = await workfleet('case', 'signal', waitingId, 'aprove');
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/SIGNAL_NOT_ACCEPTED: .*it accepts "approve", "reject"/);
    const sent = await workfleet('case', 'signal', waitingId, 'approve', '--payload', '{"by":"ana"}');
    expect(sent.code).toBe(0);
    expect(sent.stdout).toMatch(/signal "approve" delivered: step \S+ took it/);
    const listed = await workfleet('case', 'list', '--status', 'done');
    expect(listed.code).toBe(1);
    expect(listed.stderr.match(/must be one of: pending, running, waiting, completed, failed, cancelled/g)).toHaveLength(1);
    expect(listed.stderr).not.toContain('must be equal to constant');
  });

  it('applies a workflow file and explains an invalid one', async () => {
    const good = join(dataDir, 'hello.yaml');
    writeFileSync(good, 'name: hello\nsteps:\n  - id: greet\n    task: demo.echo\n    input: { hello: "${input.name}" }\n');
    const applied = await workfleet('workflow', 'apply', good);
    expect(applied.stdout).toMatch(/hello v1 created/);
    expect((await workfleet('workflow', 'apply', good)).stdout).toMatch(/hello v1 unchanged/);
    const started = await workfleet('case', 'start', 'hello', '--input', '{"name":"Ada"}', '--wait', '--json');
    expect(JSON.parse(started.stdout.slice(started.stdout.lastIndexOf('\n{'))).output).toEqual({ greet: { hello: 'Ada' } });

    const bad = join(dataDir, 'bad.yaml');
    writeFileSync(bad, 'name: bad\nsteps:\n  - id: a\n    task: t\n    after: [b]\n');
    const refused = await workfleet('workflow', 'apply', bad);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('DEFINITION_INVALID');
    expect(refused.stderr).toContain('steps[0].after[0]: unknown step "b"');
  });

  it('names every bad setting and stops', async () => {
    const result = await run(process.execPath, [cli, 'api'], { env: { ...env, API_PORT: 'x', MONGO_URL: 'mongodb://h:1' } }).catch((error: unknown) => error as { code: number; stderr: string });
    expect(result).toMatchObject({ code: 2 });
    expect((result as { stderr: string }).stderr).toMatch(/API_PORT: must be a whole number/);
    expect((result as { stderr: string }).stderr).toMatch(/MONGO_URL: must name the database/);
  });

  it('runs a worker and the key commands on the dev fleet, found through .workfleet/dev.json', async () => {
    const redisUrl = /redis-server on (redis:\/\/127\.0\.0\.1:\d+)/.exec(output)?.[1] ?? '';
    const mine = join(dataDir, 'mine.yaml');
    writeFileSync(mine, 'name: on-my-queue\nsteps:\n  - id: greet\n    task: demo.echo\n    queue: mine\n    input: { hello: "${input.name}" }\n');
    const applied = await workfleet('workflow', 'apply', mine);
    expect(applied.code).toBe(0);
    expect(applied.stderr).toContain(`${mine}: warning: no live worker serves queue "mine" (step greet)`);
    const stranded = await workfleet('case', 'start', 'on-my-queue', '--input', '{"name":"early"}', '--wait', '--timeout', '2');
    expect(stranded.code).toBe(1);
    expect(stranded.stdout).toContain('no live worker serves queue "mine": step greet waits until one does (workfleet worker --queues mine)');
    const worker = spawnManaged(process.execPath, [cli, 'worker', '--queues', 'mine', '--handlers', join(packageRoot(), 'dist', 'examples', 'handlers', 'index.js')], {
      env: { ...env, METRICS_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const using = await waitForOutput(worker, /[^\n]*"msg":"using Redis and MongoDB"[^\n]*/, 30_000, 'workfleet worker');
      expect(using[0]).toContain(`"redis":"${redisUrl}`);
      await waitForOutput(worker, /worker started/, 30_000, 'workfleet worker');
      const started = await workfleet('case', 'start', 'on-my-queue', '--input', '{"name":"Lin"}', '--wait', '--json');
      expect(started.code).toBe(0);
      expect(JSON.parse(started.stdout.slice(started.stdout.lastIndexOf('\n{'))).output).toEqual({ greet: { hello: 'Lin' } });
    } finally {
      await worker.stop('SIGTERM', 10_000);
    }
    const created = await workfleet('keys', 'create', '--name', 'newcomer', '--role', 'viewer');
    expect(created.code).toBe(0);
    expect((await workfleet('keys', 'list')).stdout).toMatch(/newcomer/);
  }, 120_000);

  it('says which server it cannot reach and stops, instead of waiting for ever', async () => {
    const closed = await freePort();
    const worker = await run(process.execPath, [cli, 'worker', '--queues', 'mine', '--handlers', join(packageRoot(), 'dist', 'examples', 'handlers', 'index.js')], {
      env: { ...env, REDIS_URL: `redis://user:secret@127.0.0.1:${closed}`, MONGO_URL: `mongodb://127.0.0.1:${closed}/workfleet`, METRICS_PORT: '0' },
      timeout: 60_000,
    }).catch((error: unknown) => error as { code: number; stdout: string; stderr: string });
    expect(worker).toMatchObject({ code: 1 });
    const said = `${(worker as { stdout: string }).stdout}${(worker as { stderr: string }).stderr}`;
    expect(said).toMatch(/cannot reach (Redis at redis:\/\/user:\*\*\*@127\.0\.0\.1|MongoDB at mongodb:\/\/127\.0\.0\.1):\d+/);
    expect(said).not.toContain('secret');
    const keys = await run(process.execPath, [cli, 'keys', 'list'], { env: { ...env, MONGO_URL: `mongodb://127.0.0.1:${closed}/workfleet` }, timeout: 60_000 }).catch(
      (error: unknown) => error as { code: number; stderr: string },
    );
    expect(keys).toMatchObject({ code: 1 });
    expect((keys as { stderr: string }).stderr).toContain(`cannot reach MongoDB at mongodb://127.0.0.1:${closed}/workfleet (MONGO_URL)`);
  }, 90_000);

  it('stops everything it started on Ctrl-C, in reverse order, in a few seconds and without warnings', async () => {
    const apiPort = Number(env.API_PORT);
    const redisPort = Number(/redis-server on redis:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
    const ferretPort = Number(/FerretDB \(SQLite, telemetry off\) on mongodb:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1]);
    const before = output.length;
    const sentAt = Date.now();
    process.kill(-(dev.process.pid ?? 0), 'SIGINT'); // what a terminal's Ctrl-C does
    expect(await dev.exited).toBe(0);
    const tookMs = Date.now() - sentAt;
    expect(tookMs).toBeLessThan(15_000);
    const stopping = output.slice(before);
    expect(stopping).toMatch(/\[dev\] stopped/);
    expect(stopping).not.toMatch(/ECONNREFUSED|MaxRetriesPerRequest|WARN|ERROR/);
    expect(existsSync(join(dataDir, 'dev.json'))).toBe(false);
    for (const port of [apiPort, redisPort, ferretPort]) expect(await portInUse(port)).toBe(false);
  }, 60_000);
});
