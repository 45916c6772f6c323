import type { Interval } from '../../chaos/overlap.js';
import type { WireCase } from './http.js';

/** When a demo.hold handler ran (examples/handlers): its output. */
export type Held = Interval;

export { median } from '../../bench/stats.js';
export { overlap } from '../../chaos/overlap.js';

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
