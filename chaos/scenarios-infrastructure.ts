import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { pauseProcess, resumeProcess } from '../lib/local-servers/pause.js';
import type { Cluster } from './cluster.js';
import type { Accepted, CheckResult } from './invariants.js';
import type { Scenario } from './scenarios.js';

/**
 * Faults of the servers themselves rather than of workfleet's processes: Redis out of memory,
 * the store's connections cut, the store paused. What they check beyond the suite's invariants is
 * what clients and operators see meanwhile: answers only 2xx or 503 with Retry-After (never a
 * 500), a 503 within the configured bound, reads that keep working, readiness that says why, and
 * logs that do not flood.
 */

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (name: string, ok: boolean, detail: string): CheckResult => ({ name, ok, detail });

/** Settings of the store scenarios: a store operation gives up after 2 s, a request after 4 s. */
const STORE_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 4_000;
/** What a 503 may take beyond the request deadline on a loaded 2-core machine. */
const ANSWER_SLACK_MS = 2_000;
/** Log lines a process may write per second, on average, while a fault lasts. */
const LOG_LINES_PER_SECOND = 5;

interface Answer {
  kind: 'start' | 'read' | 'ready';
  status: number;
  ms: number;
  at: number;
  retryAfter: boolean;
}

/** Every HTTP answer of a scenario, and what the producers made of them. */
class Traffic {
  readonly answers: Answer[] = [];
  readonly accepted: Accepted[] = [];
  /** Keys answered 503 that had made their case all the same (found by the retry with the same key). */
  readonly committedBefore503 = new Set<string>();
  private readonly answered503 = new Set<string>();

  constructor(private readonly cluster: Cluster) {}

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown } | undefined> {
    const started = Date.now();
    const kind = method === 'POST' ? 'start' : path === '/ready' ? 'ready' : 'read';
    try {
      const response = await fetch(`${this.cluster.apiUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      const text = await response.text();
      this.answers.push({ kind, status: response.status, ms: Date.now() - started, at: started, retryAfter: response.headers.has('retry-after') });
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // kept as text
      }
      return { status: response.status, body: parsed };
    } catch {
      // No answer within 30 s (or the connection refused): counted as status 0.
      this.answers.push({ kind, status: 0, ms: Date.now() - started, at: started, retryAfter: false });
      return undefined;
    }
  }

  /** Starts `count` cases over HTTP, each retried with its key until it is accepted, as a careful producer does. */
  async start(workflow: string, count: number, parallel = 10): Promise<void> {
    const run = randomBytes(3).toString('hex');
    const one = async (index: number) => {
      const idempotencyKey = `${workflow}-${run}-${index}`;
      for (let attempt = 0; attempt < 240; attempt++) {
        const answer = await this.request('POST', '/v1/cases', { workflow, idempotencyKey, input: { index } });
        if (answer?.status === 503) this.answered503.add(idempotencyKey);
        if (answer && (answer.status === 200 || answer.status === 201)) {
          if (answer.status === 200 && this.answered503.has(idempotencyKey)) this.committedBefore503.add(idempotencyKey);
          this.accepted.push({ via: 'http', idempotencyKey, caseId: (answer.body as { id: string }).id, expect: { status: 'completed' } });
          return;
        }
        await pause(250);
      }
    };
    for (let index = 0; index < count; index += parallel) {
      await Promise.all(Array.from({ length: Math.min(parallel, count - index) }, (_, offset) => one(index + offset)));
    }
  }

  /** Reads `path` every `everyMs` until `until` resolves. */
  async readUntil(path: string, everyMs: number, until: { done: boolean }): Promise<void> {
    while (!until.done) {
      await this.request('GET', path);
      await pause(everyMs);
    }
  }

  /** Answers by status code, e.g. {"start": {"201": 90, "503": 40}, "read": {"200": 120}}, of requests made between `from` and `to`. */
  byStatus(from = 0, to = Number.POSITIVE_INFINITY): Record<string, Record<string, number>> {
    const counts: Record<string, Record<string, number>> = {};
    for (const answer of this.answers) {
      if (answer.at < from || answer.at >= to) continue;
      const kind = (counts[answer.kind] ??= {});
      kind[answer.status] = (kind[answer.status] ?? 0) + 1;
    }
    return counts;
  }
}

/** Lines each process wrote from `marks` (output lengths taken earlier) until now, per second of `seconds`. */
function logRates(cluster: Cluster, marks: Map<string, number>, seconds: number): Record<string, number> {
  const rates: Record<string, number> = {};
  for (const name of cluster.names()) {
    const text = cluster.output(name).slice(marks.get(name) ?? 0);
    rates[name] = Math.round(((text.match(/\n/g)?.length ?? 0) / Math.max(seconds, 1)) * 10) / 10;
  }
  return rates;
}

function outputMarks(cluster: Cluster): Map<string, number> {
  return new Map(cluster.names().map((name) => [name, cluster.output(name).length]));
}

function answerChecks(traffic: Traffic, boundMs?: number): CheckResult[] {
  // /ready answers 503 on purpose while a server is away.
  const answers = traffic.answers.filter((answer) => answer.kind !== 'ready');
  const bad = answers.filter((answer) => answer.status >= 500 && answer.status !== 503);
  const unanswered = answers.filter((answer) => answer.status === 0);
  const unavailable = answers.filter((answer) => answer.status === 503);
  const slowest503 = Math.max(0, ...unavailable.map((answer) => answer.ms));
  const checks = [
    check(
      'no-500',
      bad.length === 0 && unanswered.length === 0,
      `answers ${JSON.stringify(traffic.byStatus())}; ${traffic.committedBefore503.size} starts answered 503 had made their case (found by the retry)`,
    ),
    check(
      'retry-after',
      unavailable.every((answer) => answer.retryAfter),
      `${unavailable.filter((answer) => !answer.retryAfter).length} of ${unavailable.length} 503s without Retry-After`,
    ),
  ];
  if (boundMs !== undefined) {
    const slowest = Math.max(0, ...answers.map((answer) => answer.ms));
    const first = Math.min(...answers.map((answer) => answer.at));
    const worst = [...answers]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .map((answer) => `${answer.kind} ${answer.status} ${answer.ms} ms at +${((answer.at - first) / 1000).toFixed(1)} s`);
    checks.push(check('bounded', slowest <= boundMs, `slowest answer ${slowest} ms, slowest 503 ${slowest503} ms (bound ${boundMs} ms); slowest: ${worst.join(', ')}`));
  }
  return checks;
}

/** The port the fleet's store listens on (the shared FerretDB). */
function storePort(cluster: Cluster): number {
  const host = cluster.mongo.options.hosts[0];
  return host?.port ?? 0;
}

/** Cuts every open TCP connection to the store (both ends see ECONNABORTED); needs CAP_NET_ADMIN. */
/**
 * Kills every connection to the store. Asynchronously: a synchronous `ss` would stall this
 * process's event loop, and with it the clock of every answer in flight that the bound checks.
 */
async function cutStoreConnections(cluster: Cluster): Promise<void> {
  await promisify(execFile)('ss', ['-K', 'dst', '127.0.0.1', 'dport', '=', `:${storePort(cluster)}`]);
}

interface Findings {
  checks: CheckResult[];
}
const findings = new Map<string, Findings>();

export const INFRASTRUCTURE_SCENARIOS: Scenario[] = [
  {
    name: 'redis-memory-full-under-load',
    quick: false,
    cluster: { workers: 2 },
    async run(cluster) {
      const traffic = new Traffic(cluster);
      await traffic.start('chaos-chain', 10);
      const known = traffic.accepted[0]?.caseId ?? '';
      const marks = outputMarks(cluster);
      // Full: with noeviction, every command that may grow memory is refused from here on.
      const fullAt = Date.now();
      await cluster.redisClient.config('SET', 'maxmemory', '1');
      const reading = { done: false };
      const readiness: Array<{ status: number; body: unknown }> = [];
      const probing = (async () => {
        while (!reading.done) {
          const answer = await traffic.request('GET', '/ready');
          if (answer) readiness.push(answer);
          await pause(500);
        }
      })();
      const load = traffic.start('chaos-chain', 100);
      const reads = traffic.readUntil(`/v1/cases/${known}`, 100, reading);
      await pause(12_000);
      await cluster.redisClient.config('SET', 'maxmemory', '0');
      const freedAt = Date.now();
      const rates = logRates(cluster, marks, (freedAt - fullAt) / 1000);
      await load;
      reading.done = true;
      await Promise.all([reads, probing]);
      const during = traffic.answers.filter((answer) => answer.at >= fullAt && answer.at < freedAt);
      const readsFailed = during.filter((answer) => answer.kind === 'read' && answer.status !== 200);
      const first503 = during.find((answer) => answer.kind === 'start' && answer.status === 503);
      const notReady = readiness.filter((answer) => answer.status === 503 && /memory/.test(JSON.stringify(answer.body)));
      const finalReady = await traffic.request('GET', '/ready');
      const busiest = Math.max(0, ...Object.values(rates));
      findings.set('redis-memory-full-under-load', {
        checks: [
          ...answerChecks(traffic),
          check('reads', readsFailed.length === 0, `during the episode ${JSON.stringify(traffic.byStatus(fullAt, freedAt))}; first 503 after ${first503 ? first503.at + first503.ms - fullAt : 'never'} ms`),
          check('ready', notReady.length > 0 && finalReady?.status === 200, `${notReady.length} of ${readiness.length} probes said not ready (out of memory); after: ${finalReady?.status ?? 'no answer'}`),
          check('log-lines', busiest <= LOG_LINES_PER_SECOND, `lines per second during the episode ${JSON.stringify(rates)}`),
        ],
      });
      return { accepted: traffic.accepted, faults: 1, faultEndedAt: freedAt };
    },
    async verify() {
      return findings.get('redis-memory-full-under-load')?.checks ?? [];
    },
  },
  {
    name: 'store-dropped-and-paused',
    quick: false,
    cluster: { workers: 2, env: { MONGO_OPERATION_TIMEOUT_MS: String(STORE_TIMEOUT_MS), API_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) } },
    async run(cluster) {
      const traffic = new Traffic(cluster);
      await traffic.start('chaos-chain', 10);
      const known = traffic.accepted[0]?.caseId ?? '';
      const marks = outputMarks(cluster);
      // 1. Connections cut while starts are in flight, five times in 2.5 s.
      const cutAt = Date.now();
      const first = traffic.start('chaos-chain', 60);
      let cuts = 0;
      let cutError = '';
      for (let round = 0; round < 5; round++) {
        await pause(500);
        try {
          await cutStoreConnections(cluster);
          cuts += 1;
        } catch (error) {
          cutError = (error as Error).message;
        }
      }
      await first;
      // 2. The store paused well past the request deadline, with starts and reads in flight.
      const pid = cluster.databasePid();
      const pausedAt = Date.now();
      await pauseProcess(pid);
      const reading = { done: false };
      const second = traffic.start('chaos-chain', 40);
      const reads = traffic.readUntil(`/v1/cases/${known}`, 200, reading);
      await pause(REQUEST_TIMEOUT_MS * 3);
      resumeProcess(pid);
      const resumedAt = Date.now();
      const rates = logRates(cluster, marks, (resumedAt - cutAt) / 1000);
      await second;
      reading.done = true;
      await reads;
      const pausedAnswers = traffic.answers.filter((answer) => answer.at >= pausedAt && answer.at < resumedAt);
      const first503 = pausedAnswers.find((answer) => answer.kind === 'start' && answer.status === 503);
      const busiest = Math.max(0, ...Object.values(rates));
      findings.set('store-dropped-and-paused', {
        checks: [
          check('cut', cuts > 0, cuts > 0 ? `${cuts} cuts; answers while cutting ${JSON.stringify(traffic.byStatus(cutAt, pausedAt))}` : `ss -K failed: ${cutError}`),
          ...answerChecks(traffic, REQUEST_TIMEOUT_MS + ANSWER_SLACK_MS),
          check('paused', first503 !== undefined, `while paused ${JSON.stringify(traffic.byStatus(pausedAt, resumedAt))}; first 503 ${first503 ? `${first503.ms} ms after its request` : 'never'}`),
          check('log-lines', busiest <= LOG_LINES_PER_SECOND, `lines per second during the faults ${JSON.stringify(rates)}`),
        ],
      });
      return { accepted: traffic.accepted, faults: cuts + 1, faultEndedAt: resumedAt };
    },
    async verify() {
      return findings.get('store-dropped-and-paused')?.checks ?? [];
    },
  },
];
