import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisCluster, RedisClusterNode } from '../lib/local-servers/redis-cluster.js';
import type { Cluster } from './cluster.js';
import { settleCases, type Accepted, type CheckResult } from './invariants.js';
import type { Scenario } from './scenarios.js';

/**
 * Redis Cluster failover: the fleet runs on 3 masters with a replica each
 * (lib/local-servers/redis-cluster.ts, cluster-node-timeout 2 s) under a load of HTTP and intake
 * starts, and the master serving the busiest queue's slot is killed (-9) or paused past the node
 * timeout; its replica takes over. What each scenario checks beyond the suite's invariants: the
 * replica was promoted, cases flow again (timed from the fault), the old master comes back as a
 * replica. The loss-window scenarios repeat the failover of the intake queue's master ten times
 * and count intake jobs whose `add` had resolved but that never became cases: Redis replicates
 * asynchronously, so a master may acknowledge a write and die before its replica has it, unless
 * the producer waits for the replica (WAIT; docs/PRODUCERS.md).
 */

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (name: string, ok: boolean, detail: string): CheckResult => ({ name, ok, detail });
const tag = () => randomBytes(3).toString('hex');
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** The step queue every chaos workflow uses: the busiest queue under load. */
const STEP_QUEUE = 'default';
/** What a careful producer in these scenarios asks of an intake `add`: one replica has it, within 1 s. */
const PRODUCER_WAIT = { replicas: 1, timeoutMs: 1_000 };
/** Failovers per loss-window scenario. */
const FAILOVERS = 10;

/** A key in `queue`'s slot: every key of a queue carries its name as the hash tag. */
const keyOfQueue = (cluster: Cluster, queue: string) => `${cluster.prefix}:{${queue}}:${queue}:meta`;

function redisCluster(cluster: Cluster): RedisCluster {
  if (!cluster.redisCluster) throw new Error('the scenario needs a fleet on a Redis Cluster');
  return cluster.redisCluster;
}

/** INFO replication of one node, as fields. */
async function replication(node: RedisClusterNode): Promise<Record<string, string>> {
  const redis = new Redis(node.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1_000, commandTimeout: 2_000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const text = await redis.info('replication');
    return Object.fromEntries(
      text
        .split('\r\n')
        .filter((line) => line.includes(':'))
        .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
    );
  } finally {
    redis.disconnect();
  }
}

/** The replica of `master` (each master has one), by its INFO replication. */
async function replicaOf(rc: RedisCluster, master: RedisClusterNode): Promise<RedisClusterNode | undefined> {
  const port = Number(/port=(\d+)/.exec((await replication(master)).slave0 ?? '')?.[1]);
  return rc.nodes.find((node) => node.port === port);
}

/** `promise`, or a rejection after `ms`: a producer gives up on an add that hangs and tries again. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/** Polls `probe` until it answers a value or `deadlineMs` passes. */
async function until<T>(probe: () => Promise<T | undefined>, deadlineMs: number, everyMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) return undefined;
    await pause(everyMs);
  }
}

/** The master serving `key` once it is another node than `old` (the replica promoted), or undefined after 30 s. */
const promotedMaster = (rc: RedisCluster, key: string, old: RedisClusterNode) =>
  until(async () => {
    const master = await rc.masterOf(key);
    return master === old ? undefined : master;
  }, 30_000);

/** Whether `node` has become a replica of `master` with its link up, within `deadlineMs`. */
const rejoinedAsReplica = async (node: RedisClusterNode, master: RedisClusterNode, deadlineMs = 30_000) =>
  (await until(async () => {
    const info = await replication(node);
    return info.role === 'slave' && Number(info.master_port) === master.port && info.master_link_status === 'up' ? true : undefined;
  }, deadlineMs)) === true;

/**
 * Starts cases without pause in `parallel` loops until stopped, alternating HTTP and intake,
 * each start retried with its key until accepted (intake adds wait for a replica:
 * `PRODUCER_WAIT`). `stop` resolves with every accepted start.
 */
function load(cluster: Cluster, workflow: string, parallel = 2) {
  const run = tag();
  const accepted: Accepted[] = [];
  let stopped = false;
  let next = 0;
  const loop = async () => {
    while (!stopped) {
      const index = next++;
      const via = index % 2 === 0 ? 'http' : 'intake';
      const idempotencyKey = `${workflow}-${run}-${index}`;
      const body = { workflow, idempotencyKey, input: { index } };
      for (let attempt = 0; attempt < 240; attempt++) {
        try {
          if (via === 'http') {
            const { status, body: answer } = await cluster.http('POST', '/v1/cases', body);
            if (status === 200 || status === 201) {
              accepted.push({ via, idempotencyKey, caseId: (answer as { id: string }).id, expect: { status: 'completed' } });
              break;
            }
          } else {
            await withDeadline(cluster.addIntake(body, { jobId: `intake-${idempotencyKey}`, waitReplicas: PRODUCER_WAIT }), 5_000);
            accepted.push({ via, idempotencyKey, expect: { status: 'completed' } });
            break;
          }
        } catch {
          // refused, unreachable or not replicated yet: the producer tries again with the same key
        }
        await pause(250);
      }
      await pause(100);
    }
  };
  const loops = Array.from({ length: parallel }, loop);
  return {
    async stop(): Promise<Accepted[]> {
      stopped = true;
      await Promise.all(loops);
      return accepted;
    },
  };
}

/** Starts one case over HTTP (retried with its key) and waits for it to complete: answers when it did, or undefined. */
async function probe(cluster: Cluster, deadlineMs = 60_000): Promise<{ accepted: Accepted; doneAt?: number }> {
  const idempotencyKey = `probe-${tag()}`;
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const answer = await cluster.http('POST', '/v1/cases', { workflow: 'chaos-chain', idempotencyKey, input: {} }).catch(() => undefined);
    if (answer && (answer.status === 200 || answer.status === 201)) {
      const accepted: Accepted = { via: 'http', idempotencyKey, caseId: (answer.body as { id: string }).id, expect: { status: 'completed' } };
      const done = await settleCases(cluster, [accepted], Math.max(0, deadline - Date.now()));
      return done ? { accepted, doneAt: Date.now() } : { accepted };
    }
    if (Date.now() > deadline) throw new Error('the probe case was never accepted');
    await pause(250);
  }
}

/** Waits until a step job of the load is running: the fault then lands mid-task. */
async function untilBusy(cluster: Cluster): Promise<void> {
  const found = await until(async () => ((await cluster.queue(STEP_QUEUE).getActiveCount()) > 0 ? true : undefined), 20_000, 50);
  if (!found) throw new Error('no step job ran within 20 s of the load starting');
}

/** Checks measured while the fault lasted, handed from `run` to `verify`. */
const measured = new Map<string, CheckResult[]>();

/** The steps a killed or paused master's failover takes, timed from the fault. */
interface Failover {
  master: RedisClusterNode;
  replica: RedisClusterNode | undefined;
  promoted: RedisClusterNode | undefined;
  faultAt: number;
  promotedAt: number;
}

async function killMaster(rc: RedisCluster, key: string): Promise<Failover> {
  const master = await rc.masterOf(key);
  const replica = await replicaOf(rc, master);
  const faultAt = Date.now();
  await rc.kill(master);
  const promoted = await promotedMaster(rc, key, master);
  return { master, replica, promoted, faultAt, promotedAt: Date.now() };
}

const promotedCheck = (failover: Failover) =>
  check(
    'replica-promoted',
    failover.promoted !== undefined && failover.promoted === failover.replica,
    failover.promoted === undefined
      ? `no new master within 30 s of the fault on :${failover.master.port}`
      : `:${failover.promoted.port} (the replica of :${failover.master.port} was :${failover.replica?.port ?? '?'}) serves the slot ${seconds(failover.promotedAt - failover.faultAt)} after the fault`,
  );

/** One failover of the intake queue's master under a stream of intake adds: what was acknowledged and what became of it. */
interface LossCycle {
  acknowledged: string[];
  lost: number;
  promotedMs: number;
  rejoined: boolean;
}

/**
 * The loss window: `FAILOVERS` times, intake adds in 2 loops (with or without WAIT for a
 * replica), the intake queue's master killed -9 a second in, its replica promoted, the old master
 * restarted (it rejoins as the new master's replica), the adds stopped once it has. Every
 * acknowledged key is then looked for as a case.
 */
async function lossWindow(cluster: Cluster, wait: boolean): Promise<{ accepted: Accepted[]; cycles: LossCycle[]; costs: string; lastFaultEndedAt: number }> {
  const rc = redisCluster(cluster);
  const key = keyOfQueue(cluster, 'cases');
  const waitReplicas = wait ? PRODUCER_WAIT : undefined;
  const run = tag();

  // The cost, measured first on the healthy cluster: sequential adds and HTTP starts, mean latency.
  const costAccepted: Accepted[] = [];
  const addStarted = Date.now();
  for (let index = 0; index < 50; index++) {
    const idempotencyKey = `cost-${run}-${index}`;
    await cluster.addIntake({ workflow: 'chaos-one', idempotencyKey, input: {} }, { jobId: `intake-${idempotencyKey}`, ...(waitReplicas ? { waitReplicas } : {}) });
    costAccepted.push({ via: 'intake', idempotencyKey, expect: { status: 'completed' } });
  }
  const addMs = (Date.now() - addStarted) / 50;
  const httpStarted = Date.now();
  for (let index = 0; index < 20; index++) {
    const idempotencyKey = `cost-http-${run}-${index}`;
    const { status, body } = await cluster.http('POST', '/v1/cases', { workflow: 'chaos-one', idempotencyKey, input: {} });
    if (status !== 201) throw new Error(`a start answered ${status} on the healthy cluster`);
    costAccepted.push({ via: 'http', idempotencyKey, caseId: (body as { id: string }).id, expect: { status: 'completed' } });
  }
  const httpMs = (Date.now() - httpStarted) / 20;
  const costs = `intake add${wait ? ' + WAIT 1' : ''} ${addMs.toFixed(1)} ms, HTTP start (REDIS_WAIT_REPLICAS=${wait ? 1 : 0}) ${httpMs.toFixed(1)} ms, mean of sequential calls under nice`;

  const cycles: LossCycle[] = [];
  let lastFaultEndedAt = Date.now();
  for (let cycle = 0; cycle < FAILOVERS; cycle++) {
    const acknowledged: string[] = [];
    let stopped = false;
    let next = 0;
    const loop = async () => {
      while (!stopped) {
        const idempotencyKey = `loss-${run}-${cycle}-${next++}`;
        // Retried with its key until acknowledged (a failed add may have been written: the job id makes the retry a no-op then).
        while (!stopped) {
          try {
            await withDeadline(cluster.addIntake({ workflow: 'chaos-one', idempotencyKey, input: {} }, { jobId: `intake-${idempotencyKey}`, ...(waitReplicas ? { waitReplicas } : {}) }), 5_000);
            acknowledged.push(idempotencyKey);
            break;
          } catch {
            await pause(50);
          }
        }
        // About 4 adds a second from both loops: some tens of cases per failover, which the store (FerretDB on SQLite) absorbs in time.
        await pause(500);
      }
    };
    const loops = [loop(), loop()];
    await pause(1_000);
    const failover = await killMaster(rc, key);
    if (!failover.promoted) throw new Error(`failover ${cycle + 1}: no replica took over from :${failover.master.port}`);
    await rc.restart(failover.master);
    const rejoined = await rejoinedAsReplica(failover.master, failover.promoted);
    lastFaultEndedAt = Date.now();
    await pause(500);
    stopped = true;
    await Promise.all(loops);
    cycles.push({ acknowledged, lost: 0, promotedMs: failover.promotedAt - failover.faultAt, rejoined });
  }

  // Every acknowledged intake job that became a case is accepted; the others are the loss.
  const all = [...costAccepted, ...cycles.flatMap((cycle) => cycle.acknowledged.map((idempotencyKey): Accepted => ({ via: 'intake', idempotencyKey, expect: { status: 'completed' } })))];
  await settleCases(cluster, all, 90_000);
  const found = new Set(
    (
      await cluster.db
        .collection('cases')
        .find({ idempotencyKey: { $in: all.map((entry) => entry.idempotencyKey) } }, { projection: { idempotencyKey: 1 } })
        .toArray()
    ).map((doc) => String(doc.idempotencyKey)),
  );
  for (const cycle of cycles) cycle.lost = cycle.acknowledged.filter((idempotencyKey) => !found.has(idempotencyKey)).length;
  return { accepted: all.filter((entry) => found.has(entry.idempotencyKey)), cycles, costs, lastFaultEndedAt };
}

function lossChecks(wait: boolean, result: Awaited<ReturnType<typeof lossWindow>>): CheckResult[] {
  const { cycles } = result;
  const lost = cycles.reduce((sum, cycle) => sum + cycle.lost, 0);
  const acknowledged = cycles.reduce((sum, cycle) => sum + cycle.acknowledged.length, 0);
  const promoted = cycles.map((cycle) => cycle.promotedMs).sort((a, b) => a - b);
  return [
    check(
      'loss-window',
      // Without the wait the loss is what is measured; with it, none may be lost.
      !wait || lost === 0,
      `${FAILOVERS} failovers of the intake master, acknowledged/lost per failover ${cycles.map((cycle) => `${cycle.acknowledged.length}/${cycle.lost}`).join(' ')}; ${lost} of ${acknowledged} lost${wait ? ' (adds waited for 1 replica)' : ' (no wait)'}`,
    ),
    check(
      'failovers',
      cycles.every((cycle) => cycle.rejoined),
      `promoted after ${seconds(promoted[0] ?? 0)} to ${seconds(promoted.at(-1) ?? 0)} (median ${seconds(promoted[Math.floor(promoted.length / 2)] ?? 0)}); the old master rejoined as a replica ${cycles.filter((cycle) => cycle.rejoined).length} of ${cycles.length} times`,
    ),
    check('cost', true, result.costs),
  ];
}

export const FAILOVER_SCENARIOS: Scenario[] = [
  {
    name: 'cluster-master-killed',
    quick: false,
    cluster: { redisCluster: true, workers: 2 },
    async run(cluster) {
      const rc = redisCluster(cluster);
      const traffic = load(cluster, 'chaos-chain');
      await untilBusy(cluster);
      await pause(1_000);
      const probeRun = probe(cluster);
      const failover = await killMaster(rc, keyOfQueue(cluster, STEP_QUEUE));
      await rc.waitHealthy(30_000);
      // Restarted, as a supervisor would: it rejoins as the new master's replica. Until then the
      // promoted master has none, and the producers' intake adds (which wait for one) are refused.
      const restartedAt = Date.now();
      if (failover.promoted) await rc.restart(failover.master);
      const rejoined = failover.promoted ? await rejoinedAsReplica(failover.master, failover.promoted) : false;
      const rejoinedMs = Date.now() - restartedAt;
      const flowing = await probeRun;
      // The load goes on on the promoted master for a while.
      await pause(3_000);
      const accepted = await traffic.stop();
      measured.set('cluster-master-killed', [
        promotedCheck(failover),
        check(
          'flowing',
          flowing.doneAt !== undefined,
          flowing.doneAt === undefined ? 'a case started at the kill did not complete within 60 s' : `a case started at the kill completed ${seconds(flowing.doneAt - failover.faultAt)} after it`,
        ),
        check(
          'rejoined',
          rejoined,
          rejoined ? `restarted, :${failover.master.port} replicates the promoted master (link up) ${seconds(rejoinedMs)} later` : `:${failover.master.port} did not become a replica of the promoted master`,
        ),
      ]);
      return { accepted: [...accepted, flowing.accepted], faults: 1, faultEndedAt: failover.promotedAt };
    },
    async verify() {
      return measured.get('cluster-master-killed') ?? [];
    },
  },
  {
    name: 'cluster-master-paused',
    quick: false,
    cluster: { redisCluster: true, workers: 2 },
    async run(cluster) {
      const rc = redisCluster(cluster);
      const key = keyOfQueue(cluster, STEP_QUEUE);
      const traffic = load(cluster, 'chaos-chain');
      await untilBusy(cluster);
      await pause(1_000);
      const master = await rc.masterOf(key);
      const replica = await replicaOf(rc, master);
      const faultAt = Date.now();
      await rc.pause(master);
      const probeRun = probe(cluster);
      const promoted = await promotedMaster(rc, key, master);
      const promotedAt = Date.now();
      // Past the node timeout and the promotion: the paused master wakes to find itself replaced.
      await pause(2_000);
      rc.resume(master);
      const resumedAt = Date.now();
      const demoted = promoted ? await rejoinedAsReplica(master, promoted) : false;
      const demotedMs = Date.now() - resumedAt;
      const flowing = await probeRun;
      await pause(3_000);
      const accepted = await traffic.stop();
      measured.set('cluster-master-paused', [
        promotedCheck({ master, replica, promoted, faultAt, promotedAt }),
        check(
          'rejoined-as-replica',
          demoted,
          demoted
            ? `resumed after ${seconds(resumedAt - faultAt)} paused, :${master.port} is a replica of :${promoted?.port ?? '?'} ${seconds(demotedMs)} later`
            : `:${master.port} is not a replica of the promoted master 30 s after its resumption`,
        ),
        check(
          'flowing',
          flowing.doneAt !== undefined,
          flowing.doneAt === undefined ? 'a case started at the pause did not complete within 60 s' : `a case started at the pause completed ${seconds(flowing.doneAt - faultAt)} after it`,
        ),
      ]);
      return { accepted: [...accepted, flowing.accepted], faults: 1, faultEndedAt: resumedAt };
    },
    async verify() {
      return measured.get('cluster-master-paused') ?? [];
    },
  },
  {
    name: 'cluster-old-master-rejoins',
    quick: false,
    cluster: { redisCluster: true, workers: 2 },
    async run(cluster) {
      const rc = redisCluster(cluster);
      const key = keyOfQueue(cluster, STEP_QUEUE);
      const traffic = load(cluster, 'chaos-chain');
      await untilBusy(cluster);
      const first = await killMaster(rc, key);
      if (!first.promoted) throw new Error(`no replica took over from :${first.master.port}`);
      const restartedAt = Date.now();
      await rc.restart(first.master);
      const rejoined = await rejoinedAsReplica(first.master, first.promoted);
      const rejoinedMs = Date.now() - restartedAt;
      await pause(2_000);
      // The rejoined node is the new master's only replica: killing that master hands the slot back to it.
      const second = await killMaster(rc, key);
      await rc.restart(second.master);
      const rejoinedAgain = second.promoted ? await rejoinedAsReplica(second.master, second.promoted) : false;
      await rc.waitHealthy(30_000);
      const flowing = await probe(cluster);
      await pause(3_000);
      const accepted = await traffic.stop();
      measured.set('cluster-old-master-rejoins', [
        promotedCheck(first),
        check(
          'rejoined',
          rejoined,
          rejoined ? `restarted, :${first.master.port} replicates :${first.promoted.port} (link up) ${seconds(rejoinedMs)} later` : `:${first.master.port} did not become a replica of :${first.promoted.port}`,
        ),
        check(
          'promoted-back',
          second.promoted === first.master && rejoinedAgain,
          `killing :${second.master.port} promoted :${second.promoted?.port ?? 'none'} in ${seconds(second.promotedAt - second.faultAt)}; :${second.master.port} rejoined as its replica: ${rejoinedAgain}`,
        ),
        check('flowing', flowing.doneAt !== undefined, flowing.doneAt === undefined ? 'a case started after the second failover did not complete' : 'cases complete after both failovers'),
      ]);
      return { accepted: [...accepted, flowing.accepted], faults: 2, faultEndedAt: second.promotedAt };
    },
    async verify() {
      return measured.get('cluster-old-master-rejoins') ?? [];
    },
  },
  {
    name: 'cluster-loss-window',
    quick: false,
    cluster: { redisCluster: true, workers: 2 },
    settleMs: 120_000,
    // Ten failovers of about 10 s each, then some thousand cases to check.
    timeoutMs: 9 * 60_000,
    async run(cluster) {
      const result = await lossWindow(cluster, false);
      measured.set('cluster-loss-window', lossChecks(false, result));
      // Printed at once: the measurement stands even if a later check fails or the scenario overruns.
      console.log(`cluster-loss-window: ${JSON.stringify(measured.get('cluster-loss-window'))}`);
      return { accepted: result.accepted, faults: FAILOVERS, faultEndedAt: result.lastFaultEndedAt };
    },
    async verify() {
      return measured.get('cluster-loss-window') ?? [];
    },
  },
  {
    name: 'cluster-loss-window-wait',
    quick: false,
    cluster: { redisCluster: true, workers: 2, env: { REDIS_WAIT_REPLICAS: '1' } },
    settleMs: 120_000,
    // Ten failovers of about 10 s each, then some thousand cases to check.
    timeoutMs: 9 * 60_000,
    async run(cluster) {
      const result = await lossWindow(cluster, true);
      measured.set('cluster-loss-window-wait', lossChecks(true, result));
      console.log(`cluster-loss-window-wait: ${JSON.stringify(measured.get('cluster-loss-window-wait'))}`);
      return { accepted: result.accepted, faults: FAILOVERS, faultEndedAt: result.lastFaultEndedAt };
    },
    async verify() {
      return measured.get('cluster-loss-window-wait') ?? [];
    },
  },
];
