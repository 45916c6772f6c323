import { randomBytes } from 'node:crypto';
import { pauseProcess, resumeProcess } from '../lib/local-servers/pause.js';
import type { Cluster } from './cluster.js';
import { readCase, type Accepted, type CheckResult, type TraceEvent } from './invariants.js';
import { IDEMPOTENCY_SCENARIOS } from './scenarios-idempotency.js';
import { FAILOVER_SCENARIOS } from './scenarios-failover.js';
import { INFRASTRUCTURE_SCENARIOS } from './scenarios-infrastructure.js';
import { PARTITION_SCENARIOS } from './scenarios-partition.js';
import { LIMITS_SCENARIOS } from './scenarios-limits.js';
import { SIZE_SCENARIOS } from './scenarios-size.js';

export interface ScenarioRun {
  accepted: Accepted[];
  faults: number;
  /** When the last fault ended: recovery is timed from here. */
  faultEndedAt: number;
  /** Processes that must be alive at the end (default: every process not killed on purpose). */
  expectAlive?: string[];
}

export interface Scenario {
  name: string;
  /** Part of the quick subset `npm test` runs. */
  quick: boolean;
  cluster?: { schedulers?: number; workers?: number; env?: Record<string, string>; appendOnly?: boolean; redisCluster?: boolean };
  run(cluster: Cluster): Promise<ScenarioRun>;
  /** Checks of its own once every case has settled. */
  verify?(cluster: Cluster, accepted: Accepted[]): Promise<CheckResult[]>;
  /** How long the whole scenario may take, fleet start to invariants. Default 4 min. */
  timeoutMs?: number;
  /** How long cases may take to settle after the last fault. Default 90 s. */
  settleMs?: number;
  /** Why the scenario cannot run on this machine, asked before its fleet starts; undefined when it can. */
  unavailable?(): Promise<string | undefined>;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tag = () => randomBytes(3).toString('hex');

/**
 * Starts `count` cases, alternating HTTP and the intake queue unless told, retrying each start
 * with its idempotency key until the fleet accepts it, as a careful producer does. Returns what
 * was accepted.
 */
async function startCases(cluster: Cluster, workflow: string, count: number, options: { via?: 'mixed' | 'http' | 'intake'; expect?: Accepted['expect']; parallel?: number } = {}): Promise<Accepted[]> {
  const run = tag();
  const accepted: Accepted[] = [];
  const parallel = options.parallel ?? 10;
  const expect = options.expect ?? { status: 'completed' };
  const one = async (index: number) => {
    const via = options.via === 'http' || (options.via !== 'intake' && index % 2 === 0) ? 'http' : 'intake';
    const idempotencyKey = `${workflow}-${run}-${index}`;
    const body = { workflow, idempotencyKey, input: { index } };
    for (let attempt = 0; attempt < 120; attempt++) {
      try {
        if (via === 'http') {
          const { status, body: answer } = await cluster.http('POST', '/v1/cases', body);
          if (status === 200 || status === 201) {
            accepted.push({ via, idempotencyKey, caseId: (answer as { id: string }).id, expect });
            return;
          }
        } else {
          await cluster.addIntake(body, { jobId: `intake-${idempotencyKey}` });
          accepted.push({ via, idempotencyKey, expect });
          return;
        }
      } catch {
        // refused or unreachable for now: the producer tries again with the same key
      }
      await pause(500);
    }
  };
  for (let index = 0; index < count; index += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, count - index) }, (_, offset) => one(index + offset)));
  }
  return accepted;
}

async function trace(cluster: Cluster, caseId: string): Promise<TraceEvent[]> {
  const { body } = await cluster.http('GET', `/v1/cases/${caseId}/trace`);
  return (body as { events: TraceEvent[] }).events;
}

function stepJobs(cluster: Cluster, queueName = 'default') {
  return cluster.queue(queueName).getJobs(['completed', 'failed', 'active', 'waiting', 'delayed']);
}

/** Waits until `name` has a job of its own running: a fault then lands mid-task. */
async function untilBusy(cluster: Cluster, deadlineMs = 10_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    if ((await cluster.queue('default').getActiveCount()) > 0) return;
    await pause(50);
  }
}

const check = (name: string, ok: boolean, detail: string): CheckResult => ({ name, ok, detail });

/** An intake job once it has finished (completed or failed), or as last seen when the deadline passes. */
async function finishedIntakeJob(cluster: Cluster, jobId: string, deadline: number) {
  let job = await cluster.intakeJob(jobId);
  while (job?.state !== 'completed' && job?.state !== 'failed' && Date.now() < deadline) {
    await pause(200);
    job = await cluster.intakeJob(jobId);
  }
  return job;
}

export const SCENARIOS: Scenario[] = [
  {
    name: 'worker-kill-9-repeatedly',
    quick: true,
    cluster: { workers: 3 },
    async run(cluster) {
      const load = startCases(cluster, 'chaos-chain', 60);
      let faults = 0;
      for (let round = 0; round < 6; round++) {
        await untilBusy(cluster);
        const victim = `worker-${(round % 3) + 1}`;
        await cluster.kill(victim, 'SIGKILL');
        faults += 1;
        await pause(700);
        await cluster.respawn(victim);
      }
      return { accepted: await load, faults, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'crash-looping-job',
    quick: true,
    cluster: { workers: 3 },
    async run(cluster) {
      // The fault lasts until the fleet gives up on the job: recovery is timed from its start.
      const startedAt = Date.now();
      const crash = await startCases(cluster, 'chaos-crash', 1, { via: 'http', expect: { status: 'failed', errorCode: 'WORKER_LOST' } });
      const others = await startCases(cluster, 'chaos-chain', 10);
      // The supervisor (systemd, Kubernetes) restarts each worker the job kills.
      let faults = 0;
      const until = Date.now() + 90_000;
      while (Date.now() < until) {
        const view = crash[0]?.caseId ? await readCase(cluster, crash[0].caseId) : undefined;
        if (view && view.status !== 'running') break;
        for (const name of cluster.names('worker')) {
          if (cluster.alive(name)) continue;
          faults += 1;
          await cluster.respawn(name);
        }
        await pause(200);
      }
      for (const name of cluster.names('worker')) if (!cluster.alive(name)) await cluster.respawn(name);
      return { accepted: [...crash, ...others], faults, faultEndedAt: startedAt };
    },
    async verify(cluster, accepted) {
      const id = accepted[0]?.caseId ?? '';
      const view = await readCase(cluster, id);
      const message = view?.steps.crash?.error?.message ?? '';
      return [check('reason', /lost \d+ time/.test(message), message || 'no error message')];
    },
  },
  {
    name: 'all-workers-down-a-minute',
    quick: false,
    cluster: { workers: 2 },
    async run(cluster) {
      const first = startCases(cluster, 'chaos-split', 20);
      await untilBusy(cluster);
      for (const name of cluster.names('worker')) await cluster.kill(name, 'SIGKILL');
      const down = Date.now();
      // Producers keep starting cases while no worker runs.
      const during = await startCases(cluster, 'chaos-chain', 20);
      await pause(Math.max(0, 60_000 - (Date.now() - down)));
      for (const name of cluster.names('worker')) await cluster.respawn(name);
      return { accepted: [...(await first), ...during], faults: 2, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'sigterm-during-active-jobs',
    quick: true,
    cluster: { workers: 2 },
    async run(cluster) {
      const accepted = await startCases(cluster, 'chaos-steady', 30);
      await untilBusy(cluster);
      const code = await cluster.kill('worker-1', 'SIGTERM');
      if (code !== 0) throw new Error(`worker-1 exited with ${String(code)} on SIGTERM`);
      await cluster.respawn('worker-1');
      return { accepted, faults: 1, faultEndedAt: Date.now() };
    },
    async verify(cluster) {
      // A graceful stop lets its jobs finish: none stalled, none ran twice.
      const jobs = await stepJobs(cluster);
      const stalled = jobs.filter((job) => job.stalledCounter > 0).length;
      const executions = await cluster.ledgerClient.keys(`${cluster.prefix}:chaos:executions:*`);
      let twice = 0;
      for (const key of executions) if (Number(await cluster.ledgerClient.get(key)) > 1) twice += 1;
      return [check('graceful', stalled === 0 && twice === 0, `${stalled} stalled jobs, ${twice} tasks run twice`)];
    },
  },
  {
    name: 'handler-outlives-grace',
    quick: false,
    cluster: { workers: 2, env: { WORKER_SHUTDOWN_GRACE_MS: '2000' } },
    async run(cluster) {
      const accepted = await startCases(cluster, 'chaos-long', 4, { via: 'http' });
      await untilBusy(cluster);
      await pause(500);
      const started = Date.now();
      await cluster.kill('worker-1', 'SIGTERM');
      await cluster.kill('worker-2', 'SIGTERM');
      const took = Date.now() - started;
      if (took > 15_000) throw new Error(`workers took ${took} ms to stop with a 2 s grace period`);
      await cluster.respawn('worker-1');
      await cluster.respawn('worker-2');
      return { accepted, faults: 2, faultEndedAt: Date.now() };
    },
    async verify(cluster, accepted) {
      // Handed back, not failed: no attempt was spent on the interrupted runs.
      const problems: string[] = [];
      for (const entry of accepted) {
        const events = await trace(cluster, entry.caseId ?? '');
        const done = events.find((event) => event.type === 'step.completed');
        if (done?.data.attempt !== 1) problems.push(`${entry.caseId} completed at attempt ${String(done?.data.attempt)}`);
        if (events.some((event) => event.type === 'step.retried')) problems.push(`${entry.caseId} spent an attempt`);
      }
      return [check('handed back', problems.length === 0, problems.length === 0 ? 'every interrupted run handed back without spending an attempt' : problems.join('; '))];
    },
    settleMs: 120_000,
  },
  {
    name: 'scheduler-kill-9-mid-transition',
    quick: false,
    cluster: { schedulers: 1, workers: 2, env: { SCHEDULER_CONCURRENCY: '50' } },
    async run(cluster) {
      const load = startCases(cluster, 'chaos-split', 60);
      let faults = 0;
      for (let round = 0; round < 5; round++) {
        await pause(400 + Math.floor(Math.random() * 600));
        await cluster.kill('scheduler-1', 'SIGKILL');
        faults += 1;
        await cluster.respawn('scheduler-1');
      }
      return { accepted: await load, faults, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'two-schedulers-racing',
    quick: false,
    cluster: { schedulers: 3, workers: 2 },
    async run(cluster) {
      const accepted = await startCases(cluster, 'chaos-split', 80, { parallel: 20 });
      return { accepted, faults: 0, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'redis-restart-aof',
    quick: false,
    cluster: { workers: 2, appendOnly: true },
    async run(cluster) {
      const load = startCases(cluster, 'chaos-chain', 40);
      await untilBusy(cluster);
      await pause(1_000);
      await cluster.restartRedis({ wipe: false });
      return { accepted: await load, faults: 1, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'redis-lost-without-persistence',
    quick: false,
    cluster: { workers: 2 },
    async run(cluster) {
      // Only HTTP starts: an intake job Redis accepted and lost before the scheduler read it is
      // gone with Redis's data (see RELIABILITY.md), while a case the API accepted is in MongoDB.
      const accepted = await startCases(cluster, 'chaos-chain', 40, { via: 'http' });
      await untilBusy(cluster);
      await cluster.restartRedis({ wipe: true });
      return { accepted, faults: 1, faultEndedAt: Date.now() };
    },
    async verify(cluster) {
      // The settled cases prove nothing unless work was really lost: the reconciler must have rebuilt jobs from MongoDB.
      const repairs = cluster
        .output('scheduler-1')
        .split('\n')
        .filter((line) => line.includes('"reconciler repaired cases"'));
      const restored = repairs.reduce((sum, line) => sum + Number((JSON.parse(line) as { jobsRestored?: number }).jobsRestored ?? 0), 0);
      return [check('rebuilt', restored > 0, `${restored} step jobs rebuilt from MongoDB`)];
    },
    settleMs: 120_000,
  },
  {
    name: 'redis-paused-15s',
    quick: false,
    cluster: { workers: 2 },
    async run(cluster) {
      const load = startCases(cluster, 'chaos-chain', 40, { via: 'http' });
      await untilBusy(cluster);
      const pid = cluster.redis.child.process.pid;
      if (pid === undefined) throw new Error('redis-server has no pid');
      await pauseProcess(pid);
      await pause(15_000);
      resumeProcess(pid);
      return { accepted: await load, faults: 1, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'mongodb-paused-10s',
    quick: false,
    cluster: { workers: 2 },
    async run(cluster) {
      const load = startCases(cluster, 'chaos-chain', 40);
      await untilBusy(cluster);
      const pid = cluster.databasePid();
      await pauseProcess(pid);
      await pause(10_000);
      resumeProcess(pid);
      return { accepted: await load, faults: 1, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'event-loop-blocked-past-lock',
    quick: false,
    cluster: { workers: 2 },
    async run(cluster) {
      const blocked = await startCases(cluster, 'chaos-block', 1, { via: 'http' });
      const others = await startCases(cluster, 'chaos-chain', 20);
      return { accepted: [...blocked, ...others], faults: 1, faultEndedAt: Date.now() };
    },
    settleMs: 120_000,
  },
  {
    name: 'hung-handler',
    quick: false,
    cluster: { workers: 1 },
    async run(cluster) {
      const hung = await startCases(cluster, 'chaos-hang', 3, { via: 'http', expect: { status: 'failed', errorCode: 'STEP_TIMEOUT' } });
      const others = await startCases(cluster, 'chaos-chain', 10);
      return { accepted: [...hung, ...others], faults: 3, faultEndedAt: Date.now() };
    },
  },
  {
    name: 'dependency-down-breaker',
    quick: false,
    cluster: { workers: 1, env: { WORKER_CONCURRENCY: '4' } },
    async run(cluster) {
      await cluster.ledgerClient.set(`${cluster.prefix}:chaos:dependency-down`, '1');
      const accepted = await startCases(cluster, 'chaos-dependency', 20, { via: 'http' });
      // Long enough for the breaker to open and defer, shorter than four attempts' worth of retries would allow.
      await pause(8_000);
      await cluster.ledgerClient.del(`${cluster.prefix}:chaos:dependency-down`);
      return { accepted, faults: 1, faultEndedAt: Date.now() };
    },
    async verify(cluster, accepted) {
      let opened = 0;
      let deferred = 0;
      let retried = 0;
      let closed = 0;
      for (const entry of accepted) {
        for (const event of await trace(cluster, entry.caseId ?? '')) {
          if (event.type === 'breaker.opened') opened += 1;
          if (event.type === 'breaker.closed') closed += 1;
          if (event.type === 'step.deferred') deferred += 1;
          if (event.type === 'step.retried') retried += 1;
        }
      }
      // With the breaker open, 20 cases over 8 s spend few attempts: those before it opened and its probes.
      const ok = opened >= 1 && closed >= 1 && deferred > 0 && retried < 20;
      return [check('breaker', ok, `${opened} opened, ${deferred} deferrals, ${retried} attempts spent, ${closed} closed`)];
    },
  },
  {
    name: 'poison-payloads',
    quick: true,
    cluster: { workers: 1 },
    async run(cluster) {
      const poison: Array<[string, unknown, string?]> = [
        ['not-an-object', 'just a string'],
        ['unknown-workflow', { workflow: 'no-such-workflow' }],
        ['wrong-types', { workflow: 42, input: [1, 2, 3], idempotencyKey: { $gt: '' } }],
        ['prototype', JSON.parse('{"workflow":"chaos-chain","__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}')],
        ['huge-input', { workflow: 'chaos-chain', input: { blob: 'x'.repeat(3 * 1024 * 1024) } }],
        ['wrong-name', { workflow: 'chaos-chain' }, 'begin'],
      ];
      for (const [id, data, name] of poison) await cluster.addIntake(data, { jobId: `poison-${id}`, name: name ?? 'start' });
      const healthy = await startCases(cluster, 'chaos-chain', 10);
      return { accepted: healthy, faults: poison.length, faultEndedAt: Date.now() };
    },
    async verify(cluster) {
      const problems: string[] = [];
      const deadline = Date.now() + 30_000;
      for (const id of ['not-an-object', 'unknown-workflow', 'wrong-types', 'prototype', 'huge-input', 'wrong-name']) {
        const job = await finishedIntakeJob(cluster, `poison-${id}`, deadline);
        if (job?.state !== 'failed' || !/^[A-Z_]+: /.test(job.failedReason ?? '')) problems.push(`${id}: ${job?.state ?? 'gone'} ${job?.failedReason ?? ''}`.trim());
      }
      const polluted = (await cluster.db.collection('cases').countDocuments({ polluted: { $exists: true } })) + (({} as Record<string, unknown>).polluted === undefined ? 0 : 1);
      if (polluted > 0) problems.push('a prototype key reached a document');
      return [check('poison', problems.length === 0, problems.length === 0 ? 'each failed once with a coded reason' : problems.join('; '))];
    },
  },
  {
    name: 'idempotent-starts-both-doors',
    quick: true,
    cluster: { schedulers: 2, workers: 1 },
    async run(cluster) {
      const idempotencyKey = `same-${tag()}`;
      const body = { workflow: 'chaos-chain', idempotencyKey, input: { one: true } };
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, index) =>
          index % 2 === 0
            ? cluster.http('POST', '/v1/cases', body).then((answer) => ({ via: 'http' as const, answer }))
            : cluster.addIntake(body, { jobId: `dup-${index}` }).then(() => ({ via: 'intake' as const, answer: undefined })),
        ),
      );
      const ids = new Set(answers.flatMap(({ answer }) => (answer && (answer.status === 200 || answer.status === 201) ? [(answer.body as { id: string }).id] : [])));
      if (ids.size !== 1) throw new Error(`HTTP starts answered ${ids.size} different case ids`);
      return { accepted: [{ via: 'http', idempotencyKey, caseId: [...ids][0], expect: { status: 'completed' } }], faults: 20, faultEndedAt: Date.now() };
    },
    async verify(cluster, accepted) {
      const key = accepted[0]?.idempotencyKey;
      const count = await cluster.db.collection('cases').countDocuments({ idempotencyKey: key });
      const problems: string[] = [];
      if (count !== 1) problems.push(`${count} cases for one key`);
      const deadline = Date.now() + 30_000;
      for (let index = 1; index < 20; index += 2) {
        const job = await finishedIntakeJob(cluster, `dup-${index}`, deadline);
        if (job?.state !== 'completed') problems.push(`intake job ${index} ${job?.state ?? 'gone'} ${job?.failedReason ?? ''}`);
      }
      return [check('one case', problems.length === 0, problems.length === 0 ? '20 starts, 1 case' : problems.join('; '))];
    },
  },
  ...IDEMPOTENCY_SCENARIOS,
  ...INFRASTRUCTURE_SCENARIOS,
  ...SIZE_SCENARIOS,
  ...LIMITS_SCENARIOS,
  ...PARTITION_SCENARIOS,
  ...FAILOVER_SCENARIOS,
];
