import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Cluster, Role } from './cluster.js';
import { readCase, settleCases, type Accepted, type CheckResult, type TraceEvent } from './invariants.js';
import { NetworkNamespace, unavailableReason } from './netns.js';
import type { Scenario } from './scenarios.js';

/**
 * Network partitions: one process of the fleet (a worker, a scheduler, the API) runs in a network
 * namespace of its own, joined to Redis and the ledger by one veth pair (`backend`) and to the
 * store by another (`store`); the API has a third (`client`) through which the suite calls it.
 * A cut drops packets silently (chaos/netns.ts), so connections hang rather than fail, for
 * longer than the lock duration; then the link heals. What each scenario checks beyond the
 * suite's invariants is that the work the cut-off process held was taken over elsewhere, that
 * what it sends late is refused rather than applied twice, and that it rejoins without a
 * restart. A machine where no namespace can be made skips them, saying why.
 */

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (name: string, ok: boolean, detail: string): CheckResult => ({ name, ok, detail });
const tag = () => randomBytes(3).toString('hex');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** How long a link stays cut: well past the 4 s job lock and its 2 s stall check (chaos/cluster.ts). */
const CUT_MS = 15_000;
/**
 * The worker's cut is longer: within it a host worker starts (seconds on a loaded machine), the
 * lock lapses, a stall check finds the job and the 3 s step runs again (12.5 s at worst measured).
 */
const WORKER_CUT_MS = 20_000;
/** Settings of the API scenario: a store operation gives up after 2 s, a request after 4 s. */
const STORE_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 4_000;
/** What a 503 may take beyond the request deadline on a loaded 2-core machine. */
const ANSWER_SLACK_MS = 2_000;

type Link = 'backend' | 'store' | 'client';

/**
 * Starts `name` inside a new namespace with `links`: Redis and the ledger over `backend`, the
 * store over `store`, each through a forwarder to the server on the host. The namespace goes
 * when the cluster stops, whatever the outcome.
 */
async function spawnPartitioned(cluster: Cluster, name: string, role: Role, links: readonly Link[], env: Record<string, string> = {}): Promise<NetworkNamespace> {
  const netns = await NetworkNamespace.create(links);
  cluster.onStop(() => netns.destroy());
  const storePort = cluster.mongo.options.hosts[0]?.port ?? 0;
  const own: Record<string, string> = {
    REDIS_URL: `redis://${await netns.forward('backend', cluster.redis.port)}`,
    CHAOS_LEDGER_URL: `redis://${await netns.forward('backend', cluster.ledger.port)}`,
    MONGO_URL: `mongodb://${await netns.forward('store', storePort)}/${cluster.db.databaseName}`,
  };
  await cluster.spawn(name, role, { ...own, ...env }, netns);
  return netns;
}

/** Starts `count` cases through the intake queue as a producer would; returns them as accepted. */
async function startIntake(cluster: Cluster, workflow: string, count: number): Promise<Accepted[]> {
  const run = tag();
  const accepted: Accepted[] = [];
  for (let index = 0; index < count; index++) {
    const idempotencyKey = `${workflow}-${run}-${index}`;
    await cluster.addIntake({ workflow, idempotencyKey, input: { index } }, { jobId: `intake-${idempotencyKey}` });
    accepted.push({ via: 'intake', idempotencyKey, expect: { status: 'completed' } });
  }
  return accepted;
}

/** Starts `count` cases over the fleet's API on the host, each retried with its key until accepted. */
async function startHttp(cluster: Cluster, workflow: string, count: number): Promise<Accepted[]> {
  const run = tag();
  const accepted: Accepted[] = [];
  for (let index = 0; index < count; index++) {
    const idempotencyKey = `${workflow}-${run}-${index}`;
    for (let attempt = 0; attempt < 120; attempt++) {
      const { status, body } = await cluster.http('POST', '/v1/cases', { workflow, idempotencyKey, input: { index } }).catch(() => ({ status: 0, body: undefined }));
      if (status === 200 || status === 201) {
        accepted.push({ via: 'http', idempotencyKey, caseId: (body as { id: string }).id, expect: { status: 'completed' } });
        break;
      }
      await pause(500);
    }
  }
  return accepted;
}

async function trace(cluster: Cluster, caseId: string): Promise<TraceEvent[]> {
  const { body } = await cluster.http('GET', `/v1/cases/${caseId}/trace`);
  return (body as { events: TraceEvent[] }).events;
}

/** Polls `probe` until it answers true or `deadlineMs` passes; answers whether it did. */
async function until(probe: () => Promise<boolean>, deadlineMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (await probe().catch(() => false)) return true;
    if (Date.now() > deadline) return false;
    await pause(everyMs);
  }
}

/** The lines `name` wrote from character `from` on that match `pattern`, shortened for a report. */
function linesSince(cluster: Cluster, name: string, from: number, pattern: RegExp): string[] {
  return cluster
    .output(name)
    .slice(from)
    .split('\n')
    .filter((line) => pattern.test(line))
    .map((line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; err?: { message?: string } };
        return `${entry.msg ?? ''}${entry.err?.message ? `: ${entry.err.message}` : ''}`.slice(0, 200);
      } catch {
        return line.slice(0, 200);
      }
    });
}

/** A process id as workers write it into step.started (lib/runtime/presence.ts): same host, same pid inside a namespace. */
const workerIdOf = (cluster: Cluster, name: string) => `${hostname()}:${cluster.pid(name)}`;

/** Checks measured while the fault lasted, handed from `run` to `verify`. */
const measured = new Map<string, CheckResult[]>();

interface Answer {
  status: number;
  ms: number;
  retryAfter: boolean;
}

async function call(url: string, method: string, body?: unknown): Promise<Answer & { body: unknown }> {
  const started = Date.now();
  try {
    const response = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as text
    }
    return { status: response.status, ms: Date.now() - started, retryAfter: response.headers.has('retry-after'), body: parsed };
  } catch {
    // No answer within 30 s, or no connection: status 0, a hang as far as a client can tell.
    return { status: 0, ms: Date.now() - started, retryAfter: false, body: undefined };
  }
}

export const PARTITION_SCENARIOS: Scenario[] = [
  {
    name: 'worker-partitioned-past-lock',
    quick: false,
    // Every step reports its start (with the worker's id), however quick.
    cluster: { workers: 0, env: { WORKER_START_REPORT_DELAY_MS: '0' } },
    unavailable: unavailableReason,
    async run(cluster) {
      const netns = await spawnPartitioned(cluster, 'worker-cut', 'worker', ['backend', 'store']);
      const cutOffId = workerIdOf(cluster, 'worker-cut');
      // The only worker yet: the held step is surely its own.
      const [held] = await startHttp(cluster, 'chaos-hold', 1);
      const caseId = held?.caseId ?? '';
      const startedHere = await until(async () => (await trace(cluster, caseId)).some((event) => event.type === 'step.started' && event.stepId === 'hold' && event.data.worker === cutOffId), 20_000);
      if (!startedHere) throw new Error('the held step did not start on the namespaced worker');
      const cutAt = Date.now();
      await netns.cutLink('backend');
      await netns.cutLink('store');
      // A worker on the host joins during the cut (started earlier, it could have taken the held step).
      await cluster.spawn('worker-1', 'worker');
      // Taken over while the cut lasts: the host worker finds the job stalled and runs it.
      let takenOverMs: number | undefined;
      await until(async () => {
        if ((await readCase(cluster, caseId))?.steps.hold?.status !== 'completed') return false;
        takenOverMs = Date.now() - cutAt;
        return true;
      }, WORKER_CUT_MS - 500);
      await pause(Math.max(0, cutAt + WORKER_CUT_MS - Date.now()));
      const mark = cluster.output('worker-cut').length;
      await netns.healLink('backend');
      await netns.healLink('store');
      const healedAt = Date.now();
      // The cut-off worker's own run of the step ends now: its effect and its report arrive late.
      const ledgerKey = `${cluster.prefix}:chaos:executions:${caseId}:hold`;
      const lateRun = await until(async () => Number(await cluster.ledgerClient.get(ledgerKey)) >= 2, 60_000);
      const lateRunMs = Date.now() - healedAt;
      await settleCases(cluster, held ? [held] : [], 60_000);
      // Rejoined without a restart: with the host worker stopped, every new step is the cut-off worker's.
      const exitCode = await cluster.kill('worker-1', 'SIGTERM');
      const rejoinStarted = Date.now();
      const after = await startHttp(cluster, 'chaos-chain', 5);
      const rejoined = await settleCases(cluster, after, 60_000);
      const rejoinMs = Date.now() - rejoinStarted;
      const workers = new Set<unknown>();
      for (const entry of after) for (const event of await trace(cluster, entry.caseId ?? '')) if (event.type === 'step.started') workers.add(event.data.worker);
      await cluster.respawn('worker-1');
      const heldTrace = await trace(cluster, caseId);
      const completions = heldTrace.filter((event) => event.type === 'step.completed' && event.stepId === 'hold').length;
      const late = linesSince(cluster, 'worker-cut', mark, /lock|duplicate|already|stalled|Missing/i);
      measured.set('worker-partitioned-past-lock', [
        check(
          'taken-over',
          takenOverMs !== undefined,
          takenOverMs === undefined ? `the held step was not completed elsewhere within the ${seconds(WORKER_CUT_MS)} cut` : `held step completed by the host worker ${seconds(takenOverMs)} into the cut`,
        ),
        check(
          'late-completion-refused',
          lateRun && completions === 1,
          `cut-off worker's run reached the ledger ${lateRun ? `${seconds(lateRunMs)} after healing (executions 2, effect kept once by its key)` : 'never'}; ${completions} step.completed for hold; its log after healing: ${late.slice(0, 4).join(' | ') || 'nothing'}`,
        ),
        check(
          'rejoined',
          rejoined && exitCode === 0 && workers.size === 1 && workers.has(cutOffId),
          `after healing, with the host worker stopped (exit ${String(exitCode)}), 5 cases of 3 steps ran on ${[...workers].join(', ') || 'no worker'} in ${seconds(rejoinMs)} (cut-off worker ${cutOffId})`,
        ),
      ]);
      return { accepted: [...(held ? [held] : []), ...after], faults: 1, faultEndedAt: healedAt };
    },
    async verify() {
      return measured.get('worker-partitioned-past-lock') ?? [];
    },
  },
  {
    name: 'scheduler-partitioned',
    quick: false,
    // Every report goes through the results queue: the schedulers hold work when the cut lands.
    cluster: { schedulers: 1, workers: 2, env: { WORKER_ADVANCES_CASES: 'false' } },
    unavailable: unavailableReason,
    async run(cluster) {
      const netns = await spawnPartitioned(cluster, 'scheduler-cut', 'scheduler', ['backend', 'store']);
      const load = startIntake(cluster, 'chaos-split', 40);
      await pause(1_500);
      const cutAt = Date.now();
      await netns.cutLink('backend');
      await netns.cutLink('store');
      // The host scheduler carries on alone: cases started during the cut complete during it.
      const during = await startIntake(cluster, 'chaos-chain', 5);
      const progressed = await settleCases(cluster, during, CUT_MS - 2_000);
      await pause(Math.max(0, cutAt + CUT_MS - Date.now()));
      await netns.healLink('backend');
      await netns.healLink('store');
      const healedAt = Date.now();
      const before = [...(await load), ...during];
      await settleCases(cluster, before, 90_000);
      // Rejoined: with the host scheduler stopped, only the cut-off one can make intake jobs into cases.
      const exitCode = await cluster.kill('scheduler-1', 'SIGTERM');
      const rejoinStarted = Date.now();
      const after = await startIntake(cluster, 'chaos-chain', 10);
      const rejoined = await settleCases(cluster, after, 60_000);
      const rejoinMs = Date.now() - rejoinStarted;
      await cluster.respawn('scheduler-1');
      measured.set('scheduler-partitioned', [
        check('carried-on', progressed, `5 cases started during the cut ${progressed ? 'completed' : 'did not complete'} before healing (host scheduler alone)`),
        check(
          'rejoined',
          rejoined && exitCode === 0,
          `after healing, with the host scheduler stopped (exit ${String(exitCode)}), the cut-off scheduler took 10 intake jobs and their cases completed in ${seconds(rejoinMs)}`,
        ),
      ]);
      return { accepted: [...before, ...after], faults: 1, faultEndedAt: healedAt };
    },
    async verify(cluster, accepted) {
      const keys = accepted.map((entry) => entry.idempotencyKey);
      const perKey = await cluster.db
        .collection('cases')
        .aggregate<{ _id: string; n: number }>([{ $match: { idempotencyKey: { $in: keys } } }, { $group: { _id: '$idempotencyKey', n: { $sum: 1 } } }])
        .toArray();
      const twice = perKey.filter((entry) => entry.n > 1);
      return [...(measured.get('scheduler-partitioned') ?? []), check('one-case-per-key', twice.length === 0 && perKey.length === keys.length, `${perKey.length} keys, ${twice.length} with more than one case`)];
    },
  },
  {
    name: 'api-partitioned',
    quick: false,
    cluster: { workers: 2, env: { MONGO_OPERATION_TIMEOUT_MS: String(STORE_TIMEOUT_MS), API_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) } },
    unavailable: unavailableReason,
    async run(cluster) {
      const port = 18_000 + Math.floor(Math.random() * 1_000);
      const netns = await spawnPartitioned(cluster, 'api-cut', 'api', ['backend', 'store', 'client'], { API_HOST: '0.0.0.0', API_PORT: String(port) });
      const api = `http://${netns.insideAddress('client')}:${port}`;
      const run = tag();
      const body = (index: number) => ({ workflow: 'chaos-chain', idempotencyKey: `api-cut-${run}-${index}`, input: { index } });
      const first = await call(`${api}/v1/cases`, 'POST', body(0));
      if (first.status !== 201 && first.status !== 200) throw new Error(`the namespaced API answered ${first.status} before the cut`);
      const known = (first.body as { id: string }).id;
      const cutAt = Date.now();
      await netns.cutLink('backend');
      await netns.cutLink('store');
      // Starts and reads through the cut-off API, two at a time, until the cut ends.
      const answers: Array<Answer & { kind: string }> = [];
      let index = 1;
      const client = async () => {
        while (Date.now() < cutAt + CUT_MS) {
          const start = await call(`${api}/v1/cases`, 'POST', body(index++));
          answers.push({ kind: 'start', ...start });
          const read = await call(`${api}/v1/cases/${known}`, 'GET');
          answers.push({ kind: 'read', ...read });
        }
      };
      await Promise.all([client(), client()]);
      await netns.healLink('backend');
      await netns.healLink('store');
      const healedAt = Date.now();
      // Back without a restart: the first 2xx after healing.
      let backMs: number | undefined;
      await until(async () => {
        const answer = await call(`${api}/v1/cases/${known}`, 'GET');
        if (answer.status !== 200) return false;
        backMs = Date.now() - healedAt;
        return true;
      }, 60_000);
      // Every start tried during the cut, retried with its key until accepted (a 503 may have committed).
      const accepted: Accepted[] = [{ via: 'http', idempotencyKey: body(0).idempotencyKey, caseId: known, expect: { status: 'completed' } }];
      for (let tried = 1; tried < index; tried++) {
        for (let attempt = 0; attempt < 60; attempt++) {
          const answer = await call(`${api}/v1/cases`, 'POST', body(tried));
          if (answer.status === 200 || answer.status === 201) {
            accepted.push({ via: 'http', idempotencyKey: body(tried).idempotencyKey, caseId: (answer.body as { id: string }).id, expect: { status: 'completed' } });
            break;
          }
          await pause(500);
        }
      }
      const counts: Record<string, number> = {};
      for (const answer of answers) counts[`${answer.kind} ${answer.status}`] = (counts[`${answer.kind} ${answer.status}`] ?? 0) + 1;
      const bad = answers.filter((answer) => answer.status !== 503 && (answer.status < 200 || answer.status >= 300));
      const unavailable = answers.filter((answer) => answer.status === 503);
      const slowest = Math.max(0, ...answers.map((answer) => answer.ms));
      const bound = REQUEST_TIMEOUT_MS + ANSWER_SLACK_MS;
      measured.set('api-partitioned', [
        check('no-500-no-hang', bad.length === 0 && unavailable.length > 0, `answers during the ${seconds(CUT_MS)} cut ${JSON.stringify(counts)}`),
        check(
          'retry-after',
          unavailable.every((answer) => answer.retryAfter),
          `${unavailable.filter((answer) => !answer.retryAfter).length} of ${unavailable.length} 503s without Retry-After`,
        ),
        check('bounded', slowest <= bound, `slowest answer ${slowest} ms (bound ${bound} ms)`),
        check('back', backMs !== undefined, backMs === undefined ? 'no 2xx within 60 s of healing' : `first 2xx ${seconds(backMs)} after healing, without a restart`),
      ]);
      return { accepted, faults: 1, faultEndedAt: healedAt };
    },
    async verify() {
      return measured.get('api-partitioned') ?? [];
    },
  },
  {
    name: 'scheduler-store-only-partition',
    quick: false,
    // The cut-off scheduler is the only one, and every report goes through it.
    cluster: { schedulers: 0, workers: 2, env: { WORKER_ADVANCES_CASES: 'false', MONGO_OPERATION_TIMEOUT_MS: String(STORE_TIMEOUT_MS) } },
    unavailable: unavailableReason,
    async run(cluster) {
      const netns = await spawnPartitioned(cluster, 'scheduler-cut', 'scheduler', ['backend', 'store']);
      const first = await startHttp(cluster, 'chaos-chain', 20);
      const cutAt = Date.now();
      await netns.cutLink('store');
      // Redis stays reachable: work keeps arriving, and the reports wait in the results queue.
      const during = [...(await startHttp(cluster, 'chaos-chain', 10)), ...(await startIntake(cluster, 'chaos-chain', 10))];
      let mostWaiting = 0;
      while (Date.now() < cutAt + CUT_MS) {
        const counts = await cluster.queue('results').getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        mostWaiting = Math.max(
          mostWaiting,
          Object.values(counts).reduce((sum, count) => sum + count, 0),
        );
        await pause(500);
      }
      const openAtHeal = await cluster.db
        .collection('cases')
        .countDocuments({ idempotencyKey: { $in: [...first, ...during].map((entry) => entry.idempotencyKey) }, status: { $in: ['pending', 'running', 'waiting'] } });
      await netns.healLink('store');
      const healedAt = Date.now();
      measured.set('scheduler-store-only-partition', [
        check('held', mostWaiting > 0, `up to ${mostWaiting} reports held in the results queue during the ${seconds(CUT_MS)} cut; ${openAtHeal} cases open when it healed`),
        check('scheduler-alive', cluster.alive('scheduler-cut'), 'the cut-off scheduler kept running'),
      ]);
      return { accepted: [...first, ...during], faults: 1, faultEndedAt: healedAt };
    },
    async verify(cluster) {
      const left = await cluster.queue('results').getJobCounts('waiting', 'active', 'delayed', 'failed');
      return [...(measured.get('scheduler-store-only-partition') ?? []), check('results-drained', left.failed === 0, `results queue after: ${JSON.stringify(left)}`)];
    },
  },
];
