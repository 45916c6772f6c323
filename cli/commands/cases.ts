import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { formatDuration } from '../../lib/core/format.js';
import { ApiError, type WorkfleetClient } from '../client.js';
import { client, clientOptions, positiveInt, wholeNumber } from '../context.js';
import { bySeq, color, renderCase, renderTimeline, Timeline, type WireCase, type WireTraceEvent } from '../render.js';

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

/**
 * Says once per queue when a scheduled step's queue has no live worker (the step would wait
 * silently). Needs a key that may read the fleet; without one it says nothing.
 */
function queueWatcher(api: WorkfleetClient): (event: WireTraceEvent) => Promise<void> {
  let served: Promise<Set<string> | undefined> | undefined;
  const warned = new Set<string>();
  return async (event) => {
    const queue = event.data.queue;
    if (event.type !== 'step.scheduled' || typeof queue !== 'string' || warned.has(queue)) return;
    served ??= api
      .request<{ processes: Array<{ role: string; queues: string[] }> }>('GET', '/v1/status')
      .then(({ body }) => new Set(body.processes.filter((member) => member.role === 'worker').flatMap((member) => member.queues)))
      .catch(() => undefined);
    const queues = await served;
    if (!queues || queues.has(queue)) return;
    warned.add(queue);
    process.stdout.write(`${color.yellow(`  ! no live worker serves queue "${queue}": step ${event.stepId ?? '?'} waits until one does (workfleet worker --queues ${queue})`)}\n`);
  };
}

/** Follows a case until it ends, printing each trace event once as it appears. */
async function follow(api: WorkfleetClient, id: string, timeoutMs: number): Promise<WireCase> {
  const deadline = Date.now() + timeoutMs;
  const watchQueue = queueWatcher(api);
  let printed = 0;
  let timeline: Timeline | undefined;
  for (;;) {
    const { body: trace } = await api.request<{ events: WireTraceEvent[] }>('GET', `/v1/cases/${id}/trace`);
    const events = bySeq(trace.events);
    const fresh = events.filter((item) => item.seq > printed);
    if (fresh.length > 0) {
      // One timeline across polls, so that offsets keep growing from one poll to the next.
      timeline ??= Timeline.of(events);
      for (const event of fresh) {
        process.stdout.write(`${timeline.line(event)}\n`);
        await watchQueue(event);
      }
      printed = fresh.at(-1)!.seq;
    }
    const { body: record } = await api.request<WireCase>('GET', `/v1/cases/${id}`);
    if (TERMINAL.has(record.status) && trace.events.some((event) => event.type.startsWith('case.') && event.type !== 'case.created')) return record;
    if (Date.now() > deadline) throw new ApiError(0, ErrorCode.waitTimeout, `case ${id} is still ${record.status} after ${formatDuration(timeoutMs)}`);
    await sleep(250);
  }
}

/** What a debounced start (202) is told: the burst it joined and when its case starts. */
function debouncedLine(debounce: { key: string; startsAt: string | null; starts: number | null } | undefined): string {
  const when = debounce?.startsAt ? `starts at ${debounce.startsAt}` : 'its burst has closed';
  return color.yellow(`debounced (key "${debounce?.key ?? ''}", ${debounce?.starts ?? '?'} starts in the burst): ${when}`);
}

/** Waits until the case a debounce burst will make exists (404 until the burst closes). */
async function untilMade(api: WorkfleetClient, id: string, deadline: number): Promise<void> {
  for (;;) {
    try {
      await api.request('GET', `/v1/cases/${id}`);
      return;
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
    if (Date.now() > deadline) throw new ApiError(0, ErrorCode.waitTimeout, `the debounced case ${id} has not started yet`);
    await sleep(250);
  }
}

/** Client commands for cases. */
export function caseCommands(program: Command): void {
  const caseCommand = program.command('case').description('start and inspect cases');

  clientOptions(caseCommand.command('start').description('start a case of a workflow'))
    .argument('<workflow>')
    .option('--input <json>', 'case input as a JSON object')
    .option('--input-file <file>', 'case input from a JSON file')
    .option('--version <n>', 'definition version (default: latest)', positiveInt)
    .option('--idempotency-key <key>', 'a retried start with the same key returns the same case')
    .option('--priority <n>', 'orders the case among those waiting for a concurrency key: higher first, -100 to 100 (docs/LANGUAGE.md, Priorities)', wholeNumber)
    .option('--wait', 'follow the case live and end with its output or error')
    .option('--timeout <seconds>', 'with --wait: give up after this long', positiveInt, 600)
    .action(
      async (
        name: string,
        options: { input?: string; inputFile?: string; version?: number; idempotencyKey?: string; priority?: number; wait?: boolean; timeout: number; json?: boolean; apiUrl?: string; apiKey?: string },
      ) => {
        const api = client(options);
        const input = parseInput(options);
        const request = {
          workflow: name,
          ...(options.version ? { version: options.version } : {}),
          ...(input ? { input } : {}),
          ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
          ...(options.priority === undefined ? {} : { priority: options.priority }),
        };
        const { status, body } = await api.request<{ id: string; status: string; debounce?: { key: string; startsAt: string | null; starts: number | null } }>('POST', '/v1/cases', request);
        const said = status === 202 ? debouncedLine(body.debounce) : status === 201 ? 'started' : color.dim('already started with this idempotency key');
        if (!options.wait) {
          if (options.json) return console.log(JSON.stringify(body));
          return console.log(`${body.id} ${said}`);
        }
        console.log(color.bold(`case ${body.id}`) + (status === 202 ? ` ${said}` : ''));
        const deadline = Date.now() + options.timeout * 1000;
        if (status === 202) await untilMade(api, body.id, deadline);
        const record = await follow(api, body.id, Math.max(0, deadline - Date.now()));
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

  clientOptions(caseCommand.command('cancel').description('cancel a case: its jobs stop, its sub-workflow cases are cancelled'))
    .argument('<id>')
    .option('--reason <text>', 'shown in the case error and its trace')
    .option('--compensate', 'run the compensations of completed steps first')
    .action(async (id: string, options: { reason?: string; compensate?: boolean; json?: boolean; apiUrl?: string; apiKey?: string }) => {
      const body = { ...(options.reason ? { reason: options.reason } : {}), ...(options.compensate ? { compensate: true } : {}) };
      const { body: record } = await client(options).request<WireCase>('POST', `/v1/cases/${id}/cancel`, body);
      console.log(options.json ? JSON.stringify(record, null, 2) : renderCase(record));
    });

  clientOptions(caseCommand.command('signal').description('send a signal to a case (a step waiting for it goes on)'))
    .argument('<id>')
    .argument('<name>', 'the signal name the step waits for')
    .option('--payload <json>', 'the signal payload, any JSON', 'null')
    .action(async (id: string, name: string, options: { payload: string; json?: boolean; apiUrl?: string; apiKey?: string }) => {
      let payload: unknown;
      try {
        payload = JSON.parse(options.payload);
      } catch (error) {
        throw new InvalidArgumentError(`payload is not JSON: ${(error as Error).message}`);
      }
      const { body: record } = await client(options).request<WireCase>('POST', `/v1/cases/${id}/signals/${encodeURIComponent(name)}`, JSON.stringify(payload));
      if (options.json) return console.log(JSON.stringify(record, null, 2));
      const taker = Object.entries(record.steps).find(([, step]) => (step.output as { signal?: unknown } | undefined)?.signal === name && step.status === 'completed');
      console.log(color.green(taker ? `signal "${name}" delivered: step ${taker[0]} took it` : `signal "${name}" accepted: kept until a step waits for it`));
      console.log(renderCase(record));
    });

  clientOptions(caseCommand.command('retry').description('resume a failed case from its failed steps'))
    .argument('<id>')
    .option('--wait', 'follow the case live until it ends')
    .option('--timeout <seconds>', 'with --wait: give up after this long', positiveInt, 600)
    .action(async (id: string, options: { wait?: boolean; timeout: number; json?: boolean; apiUrl?: string; apiKey?: string }) => {
      const api = client(options);
      const { body: record } = await api.request<WireCase>('POST', `/v1/cases/${id}/retry`);
      if (!options.wait) return console.log(options.json ? JSON.stringify(record, null, 2) : renderCase(record));
      const ended = await follow(api, id, options.timeout * 1000);
      console.log(ended.status === 'completed' ? `\n${color.green('completed')}\n${JSON.stringify(ended.output, null, 2)}` : `\n${color.red(ended.status)}: ${ended.error?.code}: ${ended.error?.message}`);
      process.exitCode = ended.status === 'completed' ? 0 : 1;
    });
}
