import type { Redis } from 'ioredis';
import { stepJobId } from '../lib/core/transition.js';
import { percentile } from './stats.js';

/**
 * The step-to-step hand-off of 3-step cases, split into its three legs, from what Redis already
 * records: BullMQ's event stream of each queue (entry ids are Redis's clock, in ms) and the
 * report's job id, which carries the time the worker finished the step.
 *
 * - report hop: step finished (the report's `at`) → report picked up (`active` on `results`)
 * - commit: report picked up → next step enqueued (`added` on `default`)
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

/** The first time each job had each event, from a queue's event stream. */
async function firstEvents(redis: Redis, key: string, wanted: ReadonlySet<string>): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let start = '-';
  for (;;) {
    const entries = await redis.xrange(key, start, '+', 'COUNT', 5_000);
    for (const [entryId, fields] of entries) {
      const values = new Map<string, string>();
      for (let i = 0; i + 1 < fields.length; i += 2) values.set(fields[i] ?? '', fields[i + 1] ?? '');
      const event = values.get('event') ?? '';
      const jobId = values.get('jobId');
      if (!wanted.has(event) || jobId === undefined) continue;
      const at = Number(entryId.split('-')[0]);
      const name = `${event} ${jobId}`;
      if (!seen.has(name)) seen.set(name, at);
    }
    const last = entries.at(-1)?.[0];
    if (last === undefined || entries.length < 5_000) return seen;
    start = `(${last}`;
  }
}

/** The hand-offs of `steps` (in order) of cases whose first step finished at or after `since`. */
export async function handoffSplit(redis: Redis, prefix: string, steps: readonly string[], since: number): Promise<HandoffSplit> {
  const results = await firstEvents(redis, `${prefix}:results:events`, new Set(['active']));
  const tasks = await firstEvents(redis, `${prefix}:default:events`, new Set(['added', 'active']));
  const total: number[] = [];
  const reportHop: number[] = [];
  const commit: number[] = [];
  const stepHop: number[] = [];
  for (const [name, pickedUp] of results) {
    // A report's job id: <case>.<step>.<type>[.<unit parts>].<attempt>.<at>
    const parts = name.slice('active '.length).split('.');
    const [caseId = '', stepId = '', type = ''] = parts;
    const finished = Number(parts.at(-1));
    const next = steps[steps.indexOf(stepId) + 1];
    if (type !== 'stepCompleted' || next === undefined || !steps.includes(stepId) || !(finished >= since)) continue;
    const nextJob = stepJobId(caseId, next);
    const added = tasks.get(`added ${nextJob}`);
    const started = tasks.get(`active ${nextJob}`);
    if (added === undefined || started === undefined) continue;
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
