import type { Redis } from 'ioredis';
import { unitJobId } from '../lib/core/machine/jobs.js';
import { percentile } from './stats.js';

/**
 * The step-to-step hand-off of 3-step cases, split into its legs, from what Redis already
 * records: BullMQ's event stream of each queue (entry ids are Redis's clock, in ms) and what a
 * step job keeps when it completes (its reports, each with the time the worker finished the step).
 *
 * - report hop: step finished → its report picked up (`active` on `results`); 0 where the worker
 *   applied the report itself (worker.advancesCases) and no report crossed a queue
 * - commit: report picked up (or step finished) → next step enqueued (`added` on `default`)
 * - step hop: next step enqueued → next step started (`active` on `default`)
 *
 * The streams must keep every entry of the window: the fleet runs with a large
 * JOBS_EVENTS_MAX_LENGTH for this measurement.
 */

export interface HandoffSplit {
  samples: number;
  totalP50Ms: number;
  totalP99Ms: number;
  reportHopP50Ms: number;
  reportHopP99Ms: number;
  commitP50Ms: number;
  commitP99Ms: number;
  stepHopP50Ms: number;
  stepHopP99Ms: number;
}

interface StreamEvent {
  at: number;
  returnvalue?: string;
}

/** The first time each job had each event (and what it returned), from a queue's event stream. */
async function firstEvents(redis: Redis, key: string, wanted: ReadonlySet<string>): Promise<Map<string, StreamEvent>> {
  const seen = new Map<string, StreamEvent>();
  let start = '-';
  for (;;) {
    const entries = await redis.xrange(key, start, '+', 'COUNT', 5_000);
    for (const [entryId, fields] of entries) {
      const values = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) values.set(fields[i] ?? '', fields[i + 1] ?? '');
      const event = values.get('event') ?? '';
      const jobId = values.get('jobId');
      if (!wanted.has(event) || jobId === undefined) continue;
      const name = `${event} ${jobId}`;
      const returnvalue = values.get('returnvalue');
      if (!seen.has(name)) seen.set(name, { at: Number(entryId.split('-')[0]), ...(returnvalue === undefined ? {} : { returnvalue }) });
    }
    const last = entries.at(-1)?.[0];
    if (last === undefined || entries.length < 5_000) return seen;
    start = `(${last}`;
  }
}

/** When the worker finished a step, from the reports its completed job kept. */
function finishedAt(completed: StreamEvent | undefined): number | undefined {
  try {
    const kept = JSON.parse(completed?.returnvalue ?? 'null') as { reports?: Array<{ event?: { type?: string; at?: number } }> } | null;
    return kept?.reports?.find((report) => report.event?.type === 'stepCompleted')?.event?.at;
  } catch {
    return undefined;
  }
}

/** The hand-offs of `steps` (in order) of cases whose first step finished at or after `since`. */
export async function handoffSplit(redis: Redis, prefix: string, steps: readonly string[], since: number): Promise<HandoffSplit> {
  const results = await firstEvents(redis, `${prefix}:results:events`, new Set(['active']));
  const tasks = await firstEvents(redis, `${prefix}:default:events`, new Set(['added', 'active', 'completed']));
  // A report's job id: <case>.<step>.<type>[.<unit parts>].<attempt>.<at>; picked up by a scheduler at `at`.
  const reportPickedUp = new Map<string, number>();
  for (const [name, { at }] of results) {
    const [caseId = '', stepId = '', type = ''] = name.slice('active '.length).split('.');
    if (type === 'stepCompleted') reportPickedUp.set(unitJobId(caseId, stepId), at);
  }
  const total: number[] = [];
  const reportHop: number[] = [];
  const commit: number[] = [];
  const stepHop: number[] = [];
  for (const [name, event] of tasks) {
    if (!name.startsWith('completed ')) continue;
    const jobId = name.slice('completed '.length);
    const [caseId = '', stepId = ''] = jobId.split('.');
    const next = steps[steps.indexOf(stepId) + 1];
    const finished = finishedAt(event);
    if (next === undefined || !steps.includes(stepId) || finished === undefined || !(finished >= since)) continue;
    const nextJob = unitJobId(caseId, next);
    const added = tasks.get(`added ${nextJob}`)?.at;
    const started = tasks.get(`active ${nextJob}`)?.at;
    if (added === undefined || started === undefined) continue;
    const pickedUp = reportPickedUp.get(jobId) ?? finished;
    total.push(started - finished);
    reportHop.push(pickedUp - finished);
    commit.push(added - pickedUp);
    stepHop.push(started - added);
  }
  return {
    samples: total.length,
    totalP50Ms: percentile(total, 50),
    totalP99Ms: percentile(total, 99),
    reportHopP50Ms: percentile(reportHop, 50),
    reportHopP99Ms: percentile(reportHop, 99),
    commitP50Ms: percentile(commit, 50),
    commitP99Ms: percentile(commit, 99),
    stepHopP50Ms: percentile(stepHop, 50),
    stepHopP99Ms: percentile(stepHop, 99),
  };
}
