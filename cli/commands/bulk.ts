import { createInterface } from 'node:readline/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { parseDuration } from '../../lib/core/duration.js';
import type { WorkfleetClient } from '../client.js';
import { client, clientOptions, positiveInt } from '../context.js';
import { color } from '../render.js';

/**
 * `workfleet bulk retry|cancel|signal`: act on every case a filter matches. A dry run counts
 * them first (always: the count is shown before anything is asked or done), then, confirmed or
 * with --yes, the API runs a bulk operation whose progress is printed until it ends, followed by
 * the per-case results that were not plain successes. `bulk show` and `bulk stop` look at or stop one.
 */

interface Counts {
  ok: number;
  skipped: number;
  error: number;
}
interface WireOperation {
  id: string;
  action: string;
  status: string;
  total: number;
  done: number;
  counts: Counts;
}
interface WireResult {
  caseId: string;
  outcome: 'ok' | 'skipped' | 'error';
  status: string | null;
  code: string | null;
  message: string | null;
}
interface WirePreview {
  matched: number;
  atLeast: boolean;
  byStatus: Record<string, number>;
  eligible: number;
  wouldAct: number;
  limit: number;
  sample: Array<{ id: string; status: string; workflow: string }>;
}

interface FilterFlags {
  status?: string;
  workflow?: string;
  key?: string;
  errorCode?: string;
  createdAfter?: string;
  createdBefore?: string;
  updatedAfter?: string;
  updatedBefore?: string;
  since?: string;
}
interface RunFlags extends FilterFlags {
  limit?: number;
  dryRun?: boolean;
  yes?: boolean;
  timeout: number;
  json?: boolean;
  apiUrl?: string;
  apiKey?: string;
}

/** An ISO time, or a duration meaning that long ago (`90m`, `1h`, `2d`). */
function time(value: string): string {
  const ago = parseDuration(value);
  if (ago !== undefined) return new Date(Date.now() - ago).toISOString();
  if (Number.isNaN(Date.parse(value))) throw new InvalidArgumentError('must be an ISO 8601 time or a duration ago such as 90m, 1h or 2d');
  return new Date(value).toISOString();
}

function withFilters(command: Command): Command {
  return command
    .option('--status <status>', 'pending, running, waiting, completed, failed or cancelled')
    .option('--workflow <name>')
    .option('--key <name=value>', 'a business key given at start')
    .option('--error-code <code>', "the case error's code or the step error code that failed it, e.g. UPSTREAM_UNAVAILABLE")
    .option('--created-after <time>', 'ISO time or a duration ago (1h)', time)
    .option('--created-before <time>', 'ISO time or a duration ago', time)
    .option('--updated-after <time>', 'last changed at or after: ISO time or a duration ago', time)
    .option('--updated-before <time>', 'last changed before: ISO time or a duration ago', time)
    .option('--since <time>', 'the same as --updated-after (a case failed since then)', time)
    .option('--limit <n>', 'act on at most this many cases, newest first (API default 1000, at most 10000)', positiveInt)
    .option('--dry-run', 'only count the matching cases')
    .option('--yes', 'do not ask before acting')
    .option('--timeout <seconds>', 'stop following the operation after this long (it goes on in the API)', positiveInt, 3600);
}

function filterOf(flags: FilterFlags): Record<string, string> {
  const filter: Record<string, string | undefined> = {
    status: flags.status,
    workflow: flags.workflow,
    key: flags.key,
    errorCode: flags.errorCode,
    createdAfter: flags.createdAfter,
    createdBefore: flags.createdBefore,
    updatedAfter: flags.updatedAfter ?? flags.since,
    updatedBefore: flags.updatedBefore,
  };
  return Object.fromEntries(Object.entries(filter).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

const VERB: Record<string, string> = { retry: 'retried', cancel: 'cancelled', signal: 'signalled' };

function describePreview(action: string, preview: WirePreview): string {
  const statuses = Object.entries(preview.byStatus)
    .map(([status, count]) => `${status} ${count}`)
    .join(', ');
  const lines = [
    `${preview.atLeast ? 'at least ' : ''}${preview.matched} case${preview.matched === 1 ? '' : 's'} match${statuses ? ` (${statuses})` : ''}`,
    `${preview.eligible} can be ${VERB[action] ?? action}; ${preview.matched - preview.eligible} would be skipped`,
    `a run acts on ${preview.wouldAct} (the newest, limit ${preview.limit})`,
  ];
  for (const item of preview.sample) lines.push(color.dim(`  ${item.id}  ${item.status.padEnd(10)} ${item.workflow}`));
  return lines.join('\n');
}

const progressLine = (operation: WireOperation) => `${operation.done}/${operation.total}  ok ${operation.counts.ok}  skipped ${operation.counts.skipped}  errors ${operation.counts.error}  ${operation.status}`;

async function confirm(question: string): Promise<boolean> {
  const reader = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await reader.question(`${question} [y/N] `)).trim());
  } finally {
    reader.close();
  }
}

async function allResults(api: WorkfleetClient, id: string, outcome?: string): Promise<WireResult[]> {
  const results: WireResult[] = [];
  for (let cursor: string | null = '0'; cursor !== null;) {
    const query: URLSearchParams = new URLSearchParams({ cursor, ...(outcome ? { outcome } : {}) });
    const { body }: { body: { results: WireResult[]; nextCursor: string | null } } = await api.request<{ results: WireResult[]; nextCursor: string | null }>('GET', `/v1/bulk/${id}/results?${query.toString()}`);
    results.push(...body.results);
    cursor = body.nextCursor;
  }
  return results;
}

/** The outcome of an operation: counts by outcome and code, then a row for each case that was not simply done. */
function renderResults(operation: WireOperation, results: readonly WireResult[]): string {
  const byCode = new Map<string, number>();
  for (const result of results) {
    const label = result.outcome === 'ok' ? 'ok' : `${result.outcome} ${result.code ?? ''}`.trim();
    byCode.set(label, (byCode.get(label) ?? 0) + 1);
  }
  const lines = [`${color.bold(`bulk ${operation.action} ${operation.id}`)}: ${operation.status}, ${operation.done} of ${operation.total} cases`];
  for (const [label, count] of byCode) lines.push(`  ${String(count).padStart(6)}  ${label.startsWith('error') ? color.red(label) : label.startsWith('skipped') ? color.yellow(label) : color.green(label)}`);
  const notDone = results.filter((result) => result.outcome !== 'ok');
  if (notDone.length > 0) {
    lines.push('', `  ${'case'.padEnd(36)}  ${'outcome'.padEnd(8)} ${'status'.padEnd(10)} code`);
    for (const result of notDone) {
      lines.push(`  ${result.caseId}  ${result.outcome.padEnd(8)} ${(result.status ?? '').padEnd(10)} ${result.code ?? ''}${result.message ? color.dim(`  ${result.message}`) : ''}`);
    }
  }
  return lines.join('\n');
}

async function follow(api: WorkfleetClient, start: WireOperation, timeoutMs: number, json: boolean): Promise<WireOperation> {
  const deadline = Date.now() + timeoutMs;
  let operation = start;
  let last = '';
  for (;;) {
    const line = progressLine(operation);
    if (!json && line !== last) process.stderr.write(`${line}\n`);
    last = line;
    if (operation.status !== 'running' || Date.now() > deadline) return operation;
    await new Promise((resolve) => setTimeout(resolve, 500));
    operation = (await api.request<WireOperation>('GET', `/v1/bulk/${operation.id}`)).body;
  }
}

async function runBulk(action: 'retry' | 'cancel' | 'signal', flags: RunFlags, extra: Record<string, unknown>): Promise<void> {
  const api = client(flags);
  const request = { filter: filterOf(flags), ...(flags.limit ? { limit: flags.limit } : {}), ...extra };
  const { body: preview } = await api.request<WirePreview>('POST', `/v1/cases/bulk/${action}`, { ...request, dryRun: true });
  if (flags.dryRun) return console.log(flags.json ? JSON.stringify(preview, null, 2) : describePreview(action, preview));
  if (!flags.json) console.error(describePreview(action, preview));
  if (preview.wouldAct === 0) return console.error('nothing to do');
  if (!flags.yes) {
    if (!process.stdin.isTTY) throw new InvalidArgumentError(`this would act on ${preview.wouldAct} cases: add --yes to go ahead without a terminal to ask in`);
    if (!(await confirm(`${action} ${preview.wouldAct} cases?`))) return console.error('nothing done');
  }
  const { body: started } = await api.request<WireOperation>('POST', `/v1/cases/bulk/${action}`, request);
  if (!flags.json) console.error(`bulk operation ${started.id} started`);
  const operation = await follow(api, started, flags.timeout * 1000, flags.json === true);
  if (operation.status === 'running') {
    console.error(`still running; follow it with: workfleet bulk show ${operation.id}`);
    process.exitCode = 1;
    return;
  }
  const results = await allResults(api, operation.id);
  console.log(flags.json ? JSON.stringify({ operation, results }, null, 2) : renderResults(operation, results));
  process.exitCode = operation.counts.error > 0 ? 1 : 0;
}

export function bulkCommands(program: Command): void {
  const bulk = program.command('bulk').description('retry, cancel or signal every case a filter matches (counted first)');

  withFilters(clientOptions(bulk.command('retry').description('retry every failed case a filter matches'))).action((flags: RunFlags) => runBulk('retry', flags, {}));

  withFilters(clientOptions(bulk.command('cancel').description('cancel every open case a filter matches')))
    .option('--reason <text>', 'shown in each case error and trace')
    .option('--compensate', 'run the compensations of completed steps first')
    .action((flags: RunFlags & { reason?: string; compensate?: boolean }) => runBulk('cancel', flags, { ...(flags.reason ? { reason: flags.reason } : {}), ...(flags.compensate ? { compensate: true } : {}) }));

  withFilters(clientOptions(bulk.command('signal').description('send a signal to every open case a filter matches')))
    .argument('<name>', 'the signal the steps wait for')
    .option('--payload <json>', 'the signal payload, any JSON', 'null')
    .action((name: string, flags: RunFlags & { payload: string }) => {
      let payload: unknown;
      try {
        payload = JSON.parse(flags.payload);
      } catch (error) {
        throw new InvalidArgumentError(`payload is not JSON: ${(error as Error).message}`);
      }
      return runBulk('signal', flags, { signal: { name, payload } });
    });

  clientOptions(bulk.command('show').description("a bulk operation's progress and per-case results"))
    .argument('<id>')
    .option('--outcome <outcome>', 'only results with this outcome: ok, skipped or error')
    .action(async (id: string, flags: { outcome?: string; json?: boolean; apiUrl?: string; apiKey?: string }) => {
      const api = client(flags);
      const { body: operation } = await api.request<WireOperation>('GET', `/v1/bulk/${id}`);
      const results = await allResults(api, id, flags.outcome);
      console.log(flags.json ? JSON.stringify({ operation, results }, null, 2) : `${renderResults(operation, results)}\n${progressLine(operation)}`);
    });

  clientOptions(bulk.command('stop').description('stop a bulk operation before its next page'))
    .argument('<id>')
    .action(async (id: string, flags: { json?: boolean; apiUrl?: string; apiKey?: string }) => {
      const { body } = await client(flags).request<WireOperation>('POST', `/v1/bulk/${id}/stop`);
      console.log(flags.json ? JSON.stringify(body, null, 2) : progressLine(body));
    });
}
