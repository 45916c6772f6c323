import { RedisLimits } from '../lib/adapters/redis/limits.js';
import type { Cluster } from './cluster.js';
import type { Accepted, CheckResult } from './invariants.js';
import { overlap, type Interval } from './overlap.js';
import type { Scenario } from './scenarios.js';

/**
 * Concurrency keys under a worker kill (docs/RELIABILITY.md): keyed cases run two at a time per
 * customer across three workers, and a worker running units of a key is killed with SIGKILL,
 * three times. Besides the suite's invariants (every case ends, each effect once): never more
 * than the limit of a key running at once, counting the runs the kills cut short (from the
 * handlers' own log of starts and ends, exactly and sampled every 10 ms), and every slot given
 * back at the end (the gate's stats at 0 in use and 0 waiting).
 */

const LIMIT = 2;
const GROUP = 'chaos-customers';
const CUSTOMERS = ['c0', 'c1', 'c2'];
const CASES = 36;

const keyed = (id: string, after: string[] = []) => ({
  id,
  task: 'chaos.effect',
  ...(after.length > 0 ? { after } : {}),
  // `key` makes the handler log its run (chaos/handlers.ts).
  input: { maxMs: 200, holdMs: 500, key: '${input.customer}' },
  concurrency: { key: '${input.customer}', limit: LIMIT, group: GROUP },
  timeout: '30s',
  retry: { maxAttempts: 5, backoff: { type: 'fixed', delay: '200ms' } },
});

const WORKFLOW = { name: 'chaos-keyed', steps: [keyed('a'), keyed('b', ['a'])] };

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (name: string, ok: boolean, detail: string): CheckResult => ({ name, ok, detail });

/** When each killed worker process died, by pid: the end of the runs it was making. */
const killedAt = new Map<number, number>();

interface Run {
  id: string;
  pid?: number;
  startedAt?: number;
  endedAt?: number;
}

/** The runs of one key, from the handlers' log: started ones, with their end when they had one. */
async function runsOf(cluster: Cluster, customer: string): Promise<Run[]> {
  const runs = new Map<string, Run>();
  for (const line of await cluster.ledgerClient.lrange(`${cluster.prefix}:chaos:runs:${customer}`, 0, -1)) {
    const entry = JSON.parse(line) as Run;
    runs.set(entry.id, { ...runs.get(entry.id), ...entry });
  }
  return [...runs.values()];
}

async function startCase(cluster: Cluster, index: number): Promise<Accepted> {
  const idempotencyKey = `chaos-keyed-${cluster.prefix}-${index}`;
  const body = { workflow: WORKFLOW.name, idempotencyKey, input: { index, customer: CUSTOMERS[index % CUSTOMERS.length] } };
  for (let attempt = 0; attempt < 60; attempt++) {
    const { status, body: answer } = await cluster.http('POST', '/v1/cases', body).catch(() => ({ status: 0, body: undefined }));
    if (status === 200 || status === 201) return { via: 'http', idempotencyKey, caseId: (answer as { id: string }).id, expect: { status: 'completed' } };
    await pause(500);
  }
  throw new Error(`could not start case ${index}`);
}

/** A worker with a run of a key under way (it holds that key's slot), once there is one. */
async function workerHoldingSlot(cluster: Cluster, deadlineMs = 15_000): Promise<string | undefined> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const byPid = new Map(cluster.names('worker').flatMap((name) => (cluster.alive(name) ? [[cluster.pid(name), name] as const] : [])));
    for (const customer of CUSTOMERS) {
      const open = (await runsOf(cluster, customer)).find((run) => run.endedAt === undefined && run.pid !== undefined && byPid.has(run.pid));
      if (open?.pid !== undefined) return byPid.get(open.pid);
    }
    await pause(50);
  }
  return undefined;
}

export const LIMITS_SCENARIOS: Scenario[] = [
  {
    name: 'worker-killed-holding-slots',
    quick: false,
    cluster: { workers: 3 },
    async run(cluster) {
      killedAt.clear();
      const { status } = await cluster.http('POST', '/v1/workflows', WORKFLOW);
      if (status >= 300) throw new Error(`workflow ${WORKFLOW.name} refused: ${status}`);
      const accepted = await Promise.all(Array.from({ length: CASES }, (_, index) => startCase(cluster, index)));
      let faults = 0;
      for (let round = 0; round < 3; round++) {
        const victim = await workerHoldingSlot(cluster);
        if (!victim) break;
        const pid = cluster.pid(victim);
        await cluster.kill(victim, 'SIGKILL');
        killedAt.set(pid, Date.now());
        faults += 1;
        await pause(700);
        await cluster.respawn(victim);
      }
      return { accepted, faults, faultEndedAt: Date.now() };
    },
    async verify(cluster) {
      const problems: string[] = [];
      let cutShort = 0;
      let most = 0;
      for (const customer of CUSTOMERS) {
        const intervals: Interval[] = [];
        for (const run of await runsOf(cluster, customer)) {
          if (run.startedAt === undefined) continue;
          let endedAt = run.endedAt;
          if (endedAt === undefined) {
            // No end: its worker was killed (the run lasted until then), or it never ended (a defect).
            endedAt = run.pid === undefined ? undefined : killedAt.get(run.pid);
            if (endedAt === undefined) {
              problems.push(`${customer}: run ${run.id} on pid ${run.pid} never ended`);
              endedAt = Date.now();
            } else cutShort += 1;
          }
          intervals.push({ startedAt: run.startedAt, endedAt });
        }
        const { exact, sampled } = overlap(intervals);
        most = Math.max(most, exact, sampled);
        if (exact > LIMIT || sampled > LIMIT) problems.push(`${customer}: ${exact} runs at once (${sampled} at a 10 ms sample), limit ${LIMIT}`);
      }
      if (cutShort === 0) problems.push('no kill landed on a run under way');
      // Workers give a slot back just after reporting, and a dead worker's lapses after its lease (4 s) and the next sweep.
      const limits = new RedisLimits(cluster.redisClient, { prefix: cluster.prefix });
      let left = await limits.stats(3);
      const until = Date.now() + 15_000;
      while (left.groups.some((group) => group.inUse + group.waiting > 0) && Date.now() < until) {
        await pause(250);
        left = await limits.stats(3);
      }
      const busy = left.groups.filter((group) => group.inUse + group.waiting > 0);
      return [
        check('limit', problems.length === 0, problems.length === 0 ? `at most ${most} of a key at once (limit ${LIMIT}), ${cutShort} runs cut short by the kills` : problems.slice(0, 3).join('; ')),
        check('slots', busy.length === 0 && left.groups.length > 0, busy.length === 0 ? `${left.groups.length} group(s), 0 in use, 0 waiting` : JSON.stringify(busy)),
      ];
    },
  },
];
