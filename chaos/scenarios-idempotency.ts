import type { Cluster } from './cluster.js';
import type { Accepted, CheckResult } from './invariants.js';
import type { Scenario } from './scenarios.js';

/**
 * Idempotency under a Redis that forgets. BullMQ numbers jobs from 1 in each Redis, so after a
 * wipe the intake queue hands out the same job ids again: a key-less job must still make a case
 * of its own (none answered with an old case, none failed as a conflict with one).
 */

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (name: string, ok: boolean, detail: string): CheckResult => ({ name, ok, detail });

/** How the scheduler keys a key-less job (scheduler/intake.ts): its id and the time it was added. */
const derivedKey = (jobId: string, timestamp: number) => `intake-job:${timestamp}:${jobId}`;

interface Added {
  id: string;
  key: string;
}

/** Key-less start jobs, added one by one as producers would, `parallel` at a time. */
async function addKeyless(cluster: Cluster, bodies: unknown[], parallel = 10): Promise<Added[]> {
  const added: Added[] = [];
  for (let from = 0; from < bodies.length; from += parallel) {
    const jobs = await Promise.all(bodies.slice(from, from + parallel).map((data) => cluster.queue('cases').add('start', data, { removeOnComplete: false })));
    for (const job of jobs) added.push({ id: job.id ?? '', key: derivedKey(job.id ?? '', job.timestamp) });
  }
  return added;
}

/** Each job once it has completed or failed, or as last seen at the deadline. */
async function finished(cluster: Cluster, jobs: readonly Added[], deadline: number) {
  const seen = new Map<string, { state: string; failedReason?: string } | undefined>();
  for (;;) {
    for (const job of jobs) {
      const known = seen.get(job.id);
      if (known?.state === 'completed' || known?.state === 'failed') continue;
      seen.set(job.id, await cluster.intakeJob(job.id));
    }
    const open = [...seen.values()].filter((job) => job?.state !== 'completed' && job?.state !== 'failed');
    if (open.length === 0 || Date.now() > deadline) return seen;
    await pause(200);
  }
}

const BATCH = 30;
const accept = (jobs: readonly Added[]): Accepted[] => jobs.map((job) => ({ via: 'intake', idempotencyKey: job.key, expect: { status: 'completed' } }));

/** The jobs of the second batch (after the wipe), kept for `verify`. */
const afterWipe = new Map<string, Added[]>();

export const IDEMPOTENCY_SCENARIOS: Scenario[] = [
  {
    name: 'redis-wiped-under-keyless-intake',
    quick: false,
    cluster: { workers: 2 },
    async run(cluster) {
      const body = (index: number) => ({ workflow: 'chaos-chain', input: { index } });
      const before = await addKeyless(
        cluster,
        Array.from({ length: BATCH }, (_, index) => body(index)),
      );
      // Every job of the first batch made its case (the cases' steps are still running) ...
      const made = await finished(cluster, before, Date.now() + 60_000);
      const unmade = [...made.entries()].filter(([, job]) => job?.state !== 'completed');
      if (unmade.length > 0) throw new Error(`before the wipe, ${unmade.length} jobs did not complete: ${JSON.stringify(unmade.slice(0, 3))}`);
      // ... then Redis is replaced by an empty one, and producers go on: the ids come again.
      await cluster.restartRedis({ wipe: true });
      const faultEndedAt = Date.now();
      const again = await addKeyless(
        cluster,
        Array.from({ length: BATCH }, (_, index) => body(index < BATCH / 2 ? index : 1_000 + index)),
      );
      afterWipe.set(cluster.prefix, again);
      return { accepted: [...accept(before), ...accept(again)], faults: 1, faultEndedAt };
    },
    async verify(cluster, accepted) {
      const again = afterWipe.get(cluster.prefix) ?? [];
      const jobs = await finished(cluster, again, Date.now() + 30_000);
      const failed = [...jobs.entries()].filter(([, job]) => job?.state !== 'completed').map(([id, job]) => `${id}: ${job?.state ?? 'gone'} ${job?.failedReason ?? ''}`);
      const firstIds = new Set(accepted.slice(0, BATCH).map((entry) => entry.idempotencyKey.split(':').pop()));
      const recycled = again.filter((job) => firstIds.has(job.id)).length;
      const caseIds = accepted.map((entry) => entry.caseId);
      const distinct = new Set(caseIds.filter((id) => id !== undefined)).size;
      return [
        check('ids recycled', recycled > 0, `${recycled} of ${again.length} jobs after the wipe reused a job id from before`),
        check('jobs after the wipe', failed.length === 0, failed.length === 0 ? `${again.length} completed, none failed` : failed.slice(0, 5).join('; ')),
        check('a case each', distinct === accepted.length, `${distinct} distinct cases for ${accepted.length} key-less jobs`),
      ];
    },
    settleMs: 120_000,
  },
];
