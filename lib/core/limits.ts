/**
 * The rules of concurrency lines and rate windows, shared by every adapter of the limits port
 * (lib/ports/limits.ts): the Redis scripts follow them step by step, the in-memory gate calls them.
 */

/** How long one priority level is worth in a line: a unit that has waited this much longer goes ahead of one a level higher. */
export const PRIORITY_AGING_MS = 1_000;

/**
 * A unit's place in its key's line, lowest first: when it came, less its priority in aging
 * steps. A unit of priority 5 arriving now goes ahead of units of priority 0 that came up to 5 s
 * ago, and behind older ones: low priority waits longer but never for ever, since every later
 * arrival scores at least `now - maxPriority × PRIORITY_AGING_MS`. `order` is the unit's place
 * in the offer that brought it.
 */
export function lineScore(now: number, priority: number, order = 0): number {
  return now - priority * PRIORITY_AGING_MS + order * LINE_ORDER_MS;
}

/**
 * What a place in one offer adds to a line score: units offered together (the items of a
 * forEach) keep their order, 10,000 of them spanning 10 ms. A millisecond timestamp's double
 * still tells 0.001 ms apart (its resolution there is about 0.0002 ms).
 */
const LINE_ORDER_MS = 0.001;

/** The line score of a unit that held a slot and lost it (its lease lapsed while its job waited): the head of the line. */
export const PARKED_SCORE = 0;

/**
 * The time of the next start under at most `max` starts in any window of `perMs`, given the
 * reserved times still in the window (ascending, none older than `now - perMs`): now while
 * fewer than `max` are reserved, else the moment the `max`-th latest leaves the window, never
 * before the latest reservation (so reservations stay in order and every window holds at most
 * `max`).
 */
export function nextReservation(reserved: readonly number[], now: number, max: number, perMs: number): number {
  if (reserved.length < max) return now;
  const leaving = reserved[reserved.length - max] ?? now;
  return Math.max(now, leaving + perMs, reserved[reserved.length - 1] ?? now);
}

/**
 * Whether a unit whose reserved time has come may start now, given the starts made in the last
 * `perMs` (ascending, none older than `now - perMs`, none later than now): now while fewer than
 * `max` started, else the moment the `max`-th latest leaves the window. Reservations pace the
 * units; this check holds the limit on the starts themselves, which lag their reservations by
 * varying amounts (a delayed job promoted, a worker coming free): a unit started late and the
 * next one on time would otherwise both fall in one window.
 */
export function nextStart(started: readonly number[], now: number, max: number, perMs: number): number {
  if (started.length < max) return now;
  return Math.max(now, (started[started.length - max] ?? now) + perMs);
}

/**
 * The key group of a workflow's case-level concurrency: `workflow:<name>`. Its slots are held by
 * cases (the job id is the case id) from their start to their end, however long that is.
 */
export const CASE_GROUP_PREFIX = 'workflow:';

/** How long a case's slot is leased: as long as any case may live. It is given up when the case ends; the lease is the last resort. */
const CASE_SLOT_LEASE_MS = 366 * 86_400_000;

/** The slot lease of an admitted unit of `group` until a worker claims it (`unitMs`), or of a case for its whole life. */
export function admitLeaseOf(group: string, unitMs: number): number {
  return group.startsWith(CASE_GROUP_PREFIX) ? CASE_SLOT_LEASE_MS : unitMs;
}

/** The busiest of one group's rate-limit keys, most used plus deferred first (ties by key), at most `top` (at least one). */
export function busiestRateKeys<T extends { key: string; used: number; deferred: number }>(keys: readonly T[], top: number): T[] {
  return [...keys].sort((a, b) => b.used + b.deferred - (a.used + a.deferred) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).slice(0, Math.max(1, top));
}
