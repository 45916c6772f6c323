import type { WireCase } from './http.js';

/** When a demo.hold handler ran (examples/handlers): its output. */
export interface Held {
  startedAt: number;
  endedAt: number;
}

/** The most handlers running at once: exactly, from their intervals, and at every 10 ms sample. */
export function overlap(intervals: readonly Held[]): { exact: number; sampled: number } {
  if (intervals.length === 0) return { exact: 0, sampled: 0 };
  const edges = intervals.flatMap((held): Array<[number, number]> => [
    [held.startedAt, 1],
    [held.endedAt, -1],
  ]);
  // An end and a start at the same millisecond: the end first (the slot was given back).
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let exact = 0;
  for (const [, change] of edges) exact = Math.max(exact, (running += change));
  const from = Math.min(...intervals.map((held) => held.startedAt));
  const to = Math.max(...intervals.map((held) => held.endedAt));
  let sampled = 0;
  for (let at = from; at <= to; at += 10) sampled = Math.max(sampled, intervals.filter((held) => held.startedAt <= at && at < held.endedAt).length);
  return { exact, sampled };
}

/** The intervals of a finished forEach case's items (null for an item that did not complete). */
export function itemsOf(record: WireCase, stepId = 'each'): Held[] {
  const output = record.steps[stepId]?.output as { items: Array<Held | null> } | undefined;
  return (output?.items ?? []).filter((item): item is Held => item !== null);
}

/** The most of `times` (sorted or not) in any half-open window of `windowMs`. */
export function busiestWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  let from = 0;
  for (let to = 0; to < sorted.length; to++) {
    while ((sorted[to] ?? 0) - (sorted[from] ?? 0) >= windowMs) from += 1;
    most = Math.max(most, to - from + 1);
  }
  return most;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}
