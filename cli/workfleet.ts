#!/usr/bin/env node
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ConfigError, loadConfig, type Config } from '../config/load.js';
import { ApiError, WorkfleetClient } from './client.js';
import { color, renderCase, renderTimeline, timelineLine, type WireCase, type WireTraceEvent } from './render.js';

/**
 * The one executable: `workfleet api|scheduler|worker|dev` run the fleet's processes; the other
 * commands are clients of a running API.
 */

// The only place besides config/ that reads the environment: it hands it to loadConfig.
const env = process.env;

function config(overrides: Record<string, unknown> = {}): Config {
  return loadConfig(env, overrides);
}

function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive whole number');
  return Number(value);
}

function client(options: { apiUrl?: string; apiKey?: string }): WorkfleetClient {
  let baseUrl = options.apiUrl ?? env.WORKFLEET_API_URL;
  if (!baseUrl) {
    // `workfleet dev` leaves its address here, so client commands find a dev fleet on any port.
    const devFile = join(resolve(env.DEV_DATA_DIR || '.workfleet'), 'dev.json');
    baseUrl = existsSync(devFile) ? (JSON.parse(readFileSync(devFile, 'utf8')) as { apiUrl: string }).apiUrl : 'http://127.0.0.1:8080';
  }
  const apiKey = options.apiKey ?? env.WORKFLEET_API_KEY;
  return new WorkfleetClient({ baseUrl, ...(apiKey ? { apiKey } : {}) });
}

function readDocument(file: string): { body: unknown } {
  const text = readFileSync(file, 'utf8');
  if (/\.json$/i.test(file)) return { body: JSON.parse(text) };
  return { body: parseYaml(text) };
}

function parseInput(options: { input?: string; inputFile?: string }): Record<string, unknown> | undefined {
  const text = options.inputFile ? readFileSync(options.inputFile, 'utf8') : options.input;
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidArgumentError(`input is not JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgumentError('input must be a JSON object');
  return value as Record<string, unknown>;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Follows a case until it ends, printing each trace event once as it appears. */
async function follow(api: WorkfleetClient, id: string, timeoutMs: number): Promise<WireCase> {
  const deadline = Date.now() + timeoutMs;
  let printed = 0;
  let start: number | undefined;
  for (;;) {
    const { body: trace } = await api.request<{ events: WireTraceEvent[] }>('GET', `/v1/cases/${id}/trace`);
    start ??= trace.events[0] ? Date.parse(trace.events[0].at) : Date.now();
    for (const event of trace.events.filter((item) => item.seq > printed)) {
      process.stdout.write(`${timelineLine(event, start)}\n`);
      printed = event.seq;
    }
    const { body: record } = await api.request<WireCase>('GET', `/v1/cases/${id}`);
    if (TERMINAL.has(record.status) && trace.events.some((event) => event.type.startsWith('case.') && event.type !== 'case.created')) return record;
    if (Date.now() > deadline) throw new ApiError(0, 'WAIT_TIMEOUT', `case ${id} is still ${record.status} after ${timeoutMs} ms`);
    await sleep(250);
  }
}

const program = new Command('workfleet')
  .description('A workflow engine on BullMQ workers: cases in MongoDB, tasks on Redis queues.')
  .showHelpAfterError();

const clientOptions = (command: Command) =>
  command
    .addOption(new Option('--api-url <url>', 'API base URL (env WORKFLEET_API_URL; default: the dev fleet, else http://127.0.0.1:8080)'))
    .addOption(new Option('--api-key <key>', 'API key (env WORKFLEET_API_KEY)'))
    .option('--json', 'print the API answer as JSON');

program
  .command('api')
  .description('run the HTTP API (routes, /metrics, /health, /ready)')
  .option('--port <port>', 'listen port (env API_PORT)', positiveInt)
  .action(async (options: { port?: number }) => {
    const { runApi } = await import('../api/main.js');
    await runApi(config({ 'api.port': options.port }));
  });

program
  .command('scheduler')
  .description('run a scheduler: intake, step reports, deadlines, reconciliation (several may run)')
  .action(async () => {
    const { runScheduler } = await import('../scheduler/main.js');
    await runScheduler(config());
  });

program
  .command('worker')
  .description('run a worker that executes task jobs with the given handlers')
  .option('--queues <list>', 'comma-separated queues (env WORKER_QUEUES)')
  .option('--concurrency <n>', 'jobs at once per queue (env WORKER_CONCURRENCY)', positiveInt)
  .option('--handlers <path>', 'handlers module (env WORKER_HANDLERS)')
  .action(async (options: { queues?: string; concurrency?: number; handlers?: string }) => {
    const { runWorker } = await import('../workers/main.js');
    await runWorker(
      config({
        'worker.queues': options.queues?.split(',').map((queue) => queue.trim()),
        'worker.concurrency': options.concurrency,
        'worker.handlers': options.handlers,
      }),
    );
  });

program
  .command('dev')
  .description('run the whole fleet locally: private Redis, embedded FerretDB, api, scheduler, two workers, examples')
  .action(async () => {
    const { runDev } = await import('./dev.js');
    await runDev(config(), { ...(env.REDIS_URL ? { redisUrl: env.REDIS_URL } : {}), ...(env.MONGO_URL ? { mongoUrl: env.MONGO_URL } : {}) });
  });

const keys = program
  .command('keys')
  .description('manage API keys (works on the database directly, so it can create the first admin key; uses MONGO_URL)');

async function withKeys<T>(work: (service: import('../lib/engine/keys.js').KeyService) => Promise<T>): Promise<T> {
  const { MongoStore } = await import('../lib/adapters/mongo/store.js');
  const { KeyService } = await import('../lib/engine/keys.js');
  const { systemClock } = await import('../lib/ports/clock.js');
  const store = new MongoStore({ url: config().mongo.url });
  await store.init();
  try {
    return await work(new KeyService(store, systemClock));
  } finally {
    await store.close();
  }
}

keys
  .command('create')
  .description('create a key and print it once')
  .requiredOption('--name <name>', 'who or what uses the key')
  .requiredOption('--role <role...>', 'admin, operator, producer or viewer (repeatable)')
  .option('--expires-in <duration>', 'e.g. 90d; never expires when omitted')
  .option('--json', 'print as JSON')
  .action(async (options: { name: string; role: string[]; expiresIn?: string; json?: boolean }) => {
    const { ROLES } = await import('../lib/core/auth.js');
    const { parseDuration } = await import('../lib/core/duration.js');
    const roles = options.role.flatMap((role) => role.split(','));
    const unknown = roles.filter((role) => !(ROLES as readonly string[]).includes(role));
    if (unknown.length > 0) throw new InvalidArgumentError(`unknown role ${unknown.join(', ')}: use ${ROLES.join(', ')}`);
    const expiresInMs = options.expiresIn === undefined ? undefined : parseDuration(options.expiresIn);
    if (options.expiresIn !== undefined && expiresInMs === undefined) throw new InvalidArgumentError(`--expires-in ${options.expiresIn} is not a duration like 90d`);
    const created = await withKeys((service) =>
      service.create({ name: options.name, roles: roles as Array<(typeof ROLES)[number]>, ...(expiresInMs === undefined ? {} : { expiresInMs }) }),
    );
    if (options.json) return console.log(JSON.stringify({ ...created.summary, key: created.key }));
    console.log(created.key);
    process.stderr.write(`key ${created.summary.id} (${created.summary.roles.join(', ')}) created; it is shown only this once\n`);
  });

keys
  .command('list')
  .description('list keys (never their secrets)')
  .option('--json', 'print as JSON')
  .action(async (options: { json?: boolean }) => {
    const list = await withKeys((service) => service.list());
    if (options.json) return console.log(JSON.stringify(list, null, 2));
    for (const key of list) {
      const state = key.revokedAt ? color.red('revoked') : key.expiresAt && key.expiresAt < Date.now() ? color.yellow('expired') : color.green('active');
      console.log(`${key.id}  ${state.padEnd(7)}  ${key.roles.join(',').padEnd(18)} ${key.name}  ${color.dim(new Date(key.createdAt).toISOString())}`);
    }
  });

keys
  .command('revoke')
  .description('revoke a key; API processes stop accepting it within 10 s')
  .argument('<id>')
  .action(async (id: string) => {
    if (!(await withKeys((service) => service.revoke(id)))) throw new ApiError(404, 'KEY_NOT_FOUND', `no key ${id}`);
    console.log(`key ${id} revoked`);
  });

const workflow = program.command('workflow').description('manage workflow definitions');

clientOptions(workflow.command('apply').description('validate and store definitions (a changed one becomes a new version)'))
  .argument('<files...>', 'JSON or YAML definition files')
  .action(async (files: string[], options: { apiUrl?: string; apiKey?: string; json?: boolean }) => {
    const api = client(options);
    for (const file of files) {
      const { body } = readDocument(file);
      const { status, body: result } = await api.request<{ name: string; version: number; created: boolean }>('POST', '/v1/workflows', body);
      if (options.json) console.log(JSON.stringify(result));
      else console.log(`${file}: ${result.name} v${result.version} ${status === 201 ? color.green('created') : color.dim('unchanged')}`);
    }
  });

clientOptions(workflow.command('list').description('list workflows and their latest versions')).action(
  async (options: { apiUrl?: string; apiKey?: string; json?: boolean }) => {
    const { body } = await client(options).request<{ workflows: Array<{ name: string; latestVersion: number; versions: number; description?: string }> }>('GET', '/v1/workflows');
    if (options.json) return console.log(JSON.stringify(body, null, 2));
    for (const item of body.workflows) console.log(`${item.name.padEnd(24)} v${item.latestVersion} (${item.versions} versions)  ${color.dim(item.description ?? '')}`);
  },
);

clientOptions(workflow.command('show').description('print a definition'))
  .argument('<name>')
  .option('--version <n>', 'a specific version', positiveInt)
  .action(async (name: string, options: { version?: number; apiUrl?: string; apiKey?: string }) => {
    const path = options.version ? `/v1/workflows/${name}/versions/${options.version}` : `/v1/workflows/${name}`;
    const { body } = await client(options).request<unknown>('GET', path);
    console.log(JSON.stringify(body, null, 2));
  });

const caseCommand = program.command('case').description('start and inspect cases');

clientOptions(caseCommand.command('start').description('start a case of a workflow'))
  .argument('<workflow>')
  .option('--input <json>', 'case input as a JSON object')
  .option('--input-file <file>', 'case input from a JSON file')
  .option('--version <n>', 'definition version (default: latest)', positiveInt)
  .option('--idempotency-key <key>', 'a retried start with the same key returns the same case')
  .option('--wait', 'follow the case live and end with its output or error')
  .option('--timeout <seconds>', 'with --wait: give up after this long', positiveInt, 600)
  .action(
    async (
      name: string,
      options: { input?: string; inputFile?: string; version?: number; idempotencyKey?: string; wait?: boolean; timeout: number; json?: boolean; apiUrl?: string; apiKey?: string },
    ) => {
      const api = client(options);
      const input = parseInput(options);
      const request = {
        workflow: name,
        ...(options.version ? { version: options.version } : {}),
        ...(input ? { input } : {}),
        ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
      };
      const { status, body } = await api.request<{ id: string; status: string }>('POST', '/v1/cases', request);
      if (!options.wait) {
        if (options.json) return console.log(JSON.stringify(body));
        return console.log(`${body.id} ${status === 201 ? 'started' : color.dim('already started with this idempotency key')}`);
      }
      console.log(color.bold(`case ${body.id}`));
      const record = await follow(api, body.id, options.timeout * 1000);
      if (options.json) console.log(JSON.stringify(record, null, 2));
      else if (record.status === 'completed') console.log(`\n${color.green('completed')}\n${JSON.stringify(record.output, null, 2)}`);
      else console.log(`\n${color.red(record.status)}: ${record.error?.code}: ${record.error?.message}`);
      process.exitCode = record.status === 'completed' ? 0 : 1;
    },
  );

clientOptions(caseCommand.command('show').description('show a case and its steps'))
  .argument('<id>')
  .action(async (id: string, options: { json?: boolean; apiUrl?: string; apiKey?: string }) => {
    const { body } = await client(options).request<WireCase>('GET', `/v1/cases/${id}`);
    console.log(options.json ? JSON.stringify(body, null, 2) : renderCase(body));
  });

clientOptions(caseCommand.command('trace').description("show a case's history as a timeline"))
  .argument('<id>')
  .action(async (id: string, options: { json?: boolean; apiUrl?: string; apiKey?: string }) => {
    const { body } = await client(options).request<{ events: WireTraceEvent[] }>('GET', `/v1/cases/${id}/trace`);
    console.log(options.json ? JSON.stringify(body, null, 2) : renderTimeline(body.events));
  });

clientOptions(caseCommand.command('list').description('list cases, newest first'))
  .option('--status <status>', 'pending, running, waiting, completed, failed or cancelled')
  .option('--workflow <name>')
  .option('--limit <n>', 'cases per page', positiveInt, 20)
  .option('--cursor <cursor>', 'the next page, from a previous listing')
  .action(async (options: { status?: string; workflow?: string; limit: number; cursor?: string; json?: boolean; apiUrl?: string; apiKey?: string }) => {
    const query = new URLSearchParams({ limit: String(options.limit) });
    if (options.status) query.set('status', options.status);
    if (options.workflow) query.set('workflow', options.workflow);
    if (options.cursor) query.set('cursor', options.cursor);
    const { body } = await client(options).request<{ cases: Array<{ id: string; workflow: string; version: number; status: string; createdAt: string }>; nextCursor: string | null }>(
      'GET',
      `/v1/cases?${query.toString()}`,
    );
    if (options.json) return console.log(JSON.stringify(body, null, 2));
    for (const item of body.cases) console.log(`${item.id}  ${item.createdAt}  ${item.status.padEnd(10)} ${item.workflow} v${item.version}`);
    if (body.nextCursor) console.log(color.dim(`more: --cursor ${body.nextCursor}`));
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`workfleet: ${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof ApiError) {
    process.stderr.write(`workfleet: ${error.code}: ${error.message}\n`);
    const issues = (error.details as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues;
    for (const issue of issues ?? []) process.stderr.write(`  ${issue.path}: ${issue.message}\n`);
    process.exit(1);
  }
  if (error instanceof InvalidArgumentError || (error as { code?: string }).code === 'ENOENT' || error instanceof SyntaxError) {
    process.stderr.write(`workfleet: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const coded = error as { code?: string; message?: string };
  process.stderr.write(`workfleet: ${coded.code ? `${coded.code}: ` : ''}${coded.message ?? String(error)}\n`);
  process.exit(1);
});
