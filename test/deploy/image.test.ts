import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnManaged, waitForOutput, type ManagedChild } from '../../lib/local-servers/child.js';
import { freePort } from '../../lib/local-servers/free-port.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { ignoredPaths, parseDockerfile, type Stage } from './dockerfile.js';
import { ROOT } from './support.js';

/**
 * The image without Docker: deploy/Dockerfile's stages are carried out on this machine, step by
 * step as written (COPY, WORKDIR, RUN, ENV), each stage in its own directory standing for its
 * filesystem. The build context is the repository's files less Dockerfile.dockerignore; the
 * dependencies stage runs its real `npm ci --omit=dev` (from the local npm cache when it can);
 * the build stage runs its real build. Then the image's ENTRYPOINT + CMD start api, scheduler
 * and worker in the runtime stage's tree, with the image's ENV, against a private Redis and
 * FerretDB, and each must become ready, pass the image's HEALTHCHECK and exit 0 on SIGTERM.
 *
 * One liberty, for time: the build stage's `npm ci` (all dev dependencies, ~300 MB) is replaced
 * by this checkout's node_modules, installed from the same package-lock.json.
 */

const run = promisify(execFile);
const { stages } = parseDockerfile();
const runtime = stages.at(-1)!;

let tmp = '';
let servers: TestServers;
const roots = new Map<string, string>();
/** Where the runtime stage's WORKDIR lands on this machine. */
let app = '';
let imageEnv: Record<string, string> = {};
const children: ManagedChild[] = [];

/** The files of a fresh clone plus uncommitted work, less what the .dockerignore keeps out. */
async function buildContext(target: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, maxBuffer: 64 * 1024 * 1024 });
  const ignored = ignoredPaths();
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (ignored.some((path) => file === path || file.startsWith(`${path}/`))) continue;
    if (!existsSync(join(ROOT, file))) continue; // deleted in the work tree
    mkdirSync(dirname(join(target, file)), { recursive: true });
    cpSync(join(ROOT, file), join(target, file));
  }
}

/** Carries out one stage: its filesystem is a directory, its WORKDIR a path inside it. */
async function carryOut(stage: Stage, context: string): Promise<{ root: string; workdir: string; env: Record<string, string> }> {
  const root = join(tmp, `stage-${stage.name ?? 'runtime'}`);
  mkdirSync(root, { recursive: true });
  let workdir = '/';
  const env: Record<string, string> = {};
  const inside = (path: string) => join(root, isAbsolute(path) ? path : join(workdir, path));
  for (const step of stage.steps) {
    const words = step.exec ?? step.text.split(/\s+/).filter(Boolean);
    if (step.keyword === 'WORKDIR') {
      workdir = step.text;
      mkdirSync(inside('.'), { recursive: true });
    } else if (step.keyword === 'ENV') {
      for (const [, key, value] of step.text.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[key!] = value!;
    } else if (step.keyword === 'COPY') {
      const destination = words.at(-1)!;
      const from = step.flags.from;
      for (const source of words.slice(0, -1)) {
        const origin = from ? join(roots.get(from)!, source) : join(context, source);
        if (!existsSync(origin)) throw new Error(`COPY ${source}: not in ${from ? `stage ${from}` : 'the build context'}`);
        const target = destination.endsWith('/') || destination === '.' || destination === './' ? join(inside(destination), source === '.' ? '' : source.split('/').at(-1)!) : inside(destination);
        mkdirSync(dirname(target), { recursive: true });
        cpSync(origin, target, { recursive: true, verbatimSymlinks: true });
      }
    } else if (step.keyword === 'RUN') {
      const cwd = inside('.');
      if (stage.name === 'build' && /^npm ci\b/.test(step.text)) {
        symlinkSync(join(ROOT, 'node_modules'), join(cwd, 'node_modules'), 'dir');
        continue;
      }
      await run('sh', ['-c', step.text], {
        cwd,
        maxBuffer: 64 * 1024 * 1024,
        // The local npm cache first: CI has just filled it with `npm ci`; the registry is the fallback.
        env: { ...process.env, ...env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' },
      });
    }
  }
  roots.set(stage.name ?? 'runtime', root);
  return { root, workdir, env };
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'workfleet-image-'));
  const context = join(tmp, 'context');
  const [, results] = await Promise.all([
    startServers().then((started) => (servers = started)),
    (async () => {
      await buildContext(context);
      const results = [];
      for (const stage of stages) results.push(await carryOut(stage, context));
      return results;
    })(),
  ]);
  const last = results.at(-1)!;
  app = join(last.root, last.workdir);
  imageEnv = last.env;
}, 175_000);

afterAll(async () => {
  await Promise.all(children.map((child) => child.stop('SIGKILL')));
  await servers?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The image's entry command, with Node 24 (this test's own, the image's major) for `node`. */
function entryCommand(args?: string[]): [string, string[]] {
  const entrypoint = runtime.steps.find((step) => step.keyword === 'ENTRYPOINT')!.exec!;
  const cmd = args ?? runtime.steps.find((step) => step.keyword === 'CMD')!.exec!;
  const [program, ...rest] = [...entrypoint, ...cmd];
  return [program === 'node' ? process.execPath : program!, rest];
}

describe('the image built from deploy/Dockerfile', () => {
  let env: Record<string, string> = {};
  const ports = { api: 0, scheduler: 0, worker: 0 };

  beforeAll(async () => {
    const { mongoUrl, prefix } = servers.namespace();
    ports.api = await freePort();
    ports.scheduler = await freePort();
    ports.worker = await freePort();
    // As compose and the Kubernetes manifests run it: the image's ENV, plus the deployment's.
    env = {
      PATH: process.env.PATH ?? '',
      HOME: tmp,
      ...imageEnv,
      AUTH_ENABLED: 'true',
      REDIS_URL: servers.redis.url,
      MONGO_URL: mongoUrl,
      BULLMQ_PREFIX: prefix,
      WORKER_HANDLERS: join(app, 'dist', 'examples', 'handlers', 'index.js'),
    };
  });

  it('holds only production dependencies, the build and what the runtime reads', () => {
    expect(existsSync(join(app, 'dist', 'cli', 'workfleet.js'))).toBe(true);
    expect(existsSync(join(app, 'node_modules', 'bullmq'))).toBe(true);
    // (typescript itself does arrive: valibot, under @bull-board/api, names it as an optional peer.)
    for (const dev of ['vitest', 'eslint', 'typescript-eslint', '@types/node', 'playwright-core', 'dockerfile-utils']) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    for (const absent of ['test', 'api', 'lib', 'tsconfig.json']) expect(existsSync(join(app, absent)), absent).toBe(false);
    expect(existsSync(join(app, 'examples', 'workflows', 'order.yaml'))).toBe(true);
    expect(imageEnv.NODE_ENV).toBe('production');
  });

  it('starts api, scheduler and worker from its entry command; each gets ready and passes the healthcheck', async () => {
    const healthcheck = runtime.steps.find((step) => step.keyword === 'HEALTHCHECK')!.exec!;
    const [program, ...healthArgs] = healthcheck;
    for (const role of ['api', 'scheduler', 'worker'] as const) {
      const roleEnv = { ...env, API_PORT: String(ports.api), METRICS_PORT: String(ports[role === 'api' ? 'scheduler' : role]) };
      // The API does not use METRICS_PORT; give it one nobody listens on so the healthcheck proves it reached API_PORT.
      if (role === 'api') roleEnv.METRICS_PORT = String(await freePort());
      const [command, args] = entryCommand(role === 'api' ? undefined : [role]);
      const child = spawnManaged(command, args, { cwd: app, env: roleEnv, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      await waitForOutput(child, { api: /api listening/, scheduler: /scheduler started/, worker: /worker started/ }[role], 60_000, role);
      const port = role === 'api' ? ports.api : Number(roleEnv.METRICS_PORT);
      await waitFor(`${role} to be ready`, async () => ((await fetch(`http://127.0.0.1:${port}/ready`)).status === 200 ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });
      const probe = await run(program === 'node' ? process.execPath : program!, healthArgs, { env: roleEnv }).then(
        () => 0,
        (error: { code?: number }) => error.code ?? 1,
      );
      expect(probe, `${role} healthcheck`).toBe(0);
    }
    // Nothing listening: the same healthcheck fails.
    const nobody = { ...env, API_PORT: String(await freePort()), METRICS_PORT: String(await freePort()) };
    const failed = await run(process.execPath, healthcheck.slice(1), { env: nobody }).then(
      () => 0,
      (error: { code?: number }) => error.code ?? 1,
    );
    expect(failed).toBe(1);
  });

  it('serves a producer through the workfleet/client export of the built package', async () => {
    // The operator's first steps: an admin key from the CLI in the image, a workflow applied with it.
    const [command, args] = entryCommand(['keys', 'create', '--name', 'ops', '--role', 'admin']);
    const { stdout } = await run(command, args, { cwd: app, env });
    const key = stdout.trim();
    expect(key).toMatch(/^wfk_/);
    const apiUrl = `http://127.0.0.1:${ports.api}`;
    const [applyCommand, applyArgs] = entryCommand(['workflow', 'apply', 'examples/workflows/order.yaml', '--api-url', apiUrl, '--api-key', key]);
    await run(applyCommand, applyArgs, { cwd: app, env });

    // A consumer package that depends on workfleet and imports its client by the export name.
    const consumer = join(tmp, 'consumer');
    mkdirSync(join(consumer, 'node_modules'), { recursive: true });
    symlinkSync(app, join(consumer, 'node_modules', 'workfleet'), 'dir');
    writeFileSync(join(consumer, 'package.json'), '{"type":"module","private":true}');
    writeFileSync(
      join(consumer, 'produce.js'),
      `import { WorkfleetClient } from 'workfleet/client';
const client = new WorkfleetClient({ baseUrl: process.argv[2], apiKey: process.argv[3] });
const done = await client.run({ workflow: 'order', input: { sku: 'book-42', quantity: 1, amount: 25 } }, { timeoutMs: 30000 });
console.log(JSON.stringify({ status: done.status, output: done.output }));
`,
    );
    const result = await run(process.execPath, ['produce.js', apiUrl, key], { cwd: consumer });
    const answer = JSON.parse(result.stdout) as { status: string; output: { trackingNumber?: string } };
    expect(answer.status).toBe('completed');
    expect(answer.output.trackingNumber).toMatch(/^TRK/);
  });

  it('lets every process drain and exit 0 on SIGTERM, as exec form delivers it', async () => {
    const codes = await Promise.all(children.map((child) => child.stop('SIGTERM', 40_000)));
    expect(codes).toEqual([0, 0, 0]);
  });
});
