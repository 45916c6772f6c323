/** A run's start and end (ms since the epoch): a handler's, a worker's run of a keyed unit. */
export interface Interval {
  startedAt: number;
  endedAt: number;
}

/**
 * The most runs at once: exactly, from their intervals, and at every 10 ms sample. Used by the
 * chaos suite's concurrency-key scenario and the tests of limits (test/helpers/limits.ts).
 */
export function overlap(intervals: readonly Interval[]): { exact: number; sampled: number } {
  if (intervals.length === 0) return { exact: 0, sampled: 0 };
  const edges = intervals.flatMap((run): Array<[number, number]> => [
    [run.startedAt, 1],
    [run.endedAt, -1],
  ]);
  // An end and a start at the same millisecond: the end first (the slot was given back).
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let exact = 0;
  for (const [, change] of edges) exact = Math.max(exact, (running += change));
  const from = Math.min(...intervals.map((run) => run.startedAt));
  const to = Math.max(...intervals.map((run) => run.endedAt));
  let sampled = 0;
  for (let at = from; at <= to; at += 10) sampled = Math.max(sampled, intervals.filter((run) => run.startedAt <= at && at < run.endedAt).length);
  return { exact, sampled };
}
