/**
 * Fleet-wide limits on the units of keyed steps (docs/LANGUAGE.md, "Concurrency keys" and "Rate
 * limits"): slots by concurrency key, leased, with a line per key; and rate limits by key, as
 * reservations in a sliding window. Every adapter passes test/contract/limits.contract.test.ts.
 */

/** A unit that needs a slot of `key` in `group` before its job may run. */
export interface GatedUnit {
  group: string;
  key: string;
  /** Slots of the key; the limit of the latest offer or claim is the key's. */
  limit: number;
  jobId: string;
  queue: string;
  /** Orders the key's line: higher first, aged by waiting (`lineScore`). */
  priority: number;
  /** What to enqueue when the unit is admitted (opaque to the gate). */
  payload: string;
}

/** A unit given a slot: its job is to be put in its queue now. */
export interface Admission {
  group: string;
  key: string;
  jobId: string;
  queue: string;
  /**
   * The payload to enqueue; undefined when the job is already in its queue, parked (delayed) by
   * a worker that found no slot for it: it is to be promoted instead.
   */
  payload?: string;
  /** The slot's rank among the key's held slots (1 for the first): serving low ranks first takes keys in turn. */
  rank: number;
}

export type OfferAnswer = { jobId: string; admitted: true; rank: number } | { jobId: string; admitted: false; ahead: number };

export type ClaimAnswer = { run: true } | { run: false; ahead: number };

export interface UnitRef {
  group: string;
  jobId: string;
}

/** Where a unit stands: holding a slot, waiting with `ahead` units before it, or unknown to the gate. */
export type UnitPosition =
  { state: 'holding'; group: string; key: string; inUse: number; limit: number } | { state: 'waiting'; group: string; key: string; ahead: number; inUse: number; limit: number } | { state: 'none' };

export interface LimitStats {
  groups: Array<{ group: string; inUse: number; waiting: number }>;
  /** The busiest keys (in use plus waiting), at most `top` per group. */
  topKeys: Array<{ group: string; key: string; inUse: number; waiting: number; limit: number }>;
}

export interface ConcurrencyGate {
  /**
   * Units about to be enqueued: each is admitted (it holds a slot, leased for `admitLeaseMs`
   * until a worker claims it; a case of a workflow key group for as long as a case may live) or waits in its key's line. Idempotent by job id: a unit already
   * holding answers admitted again (its job may be re-added), one waiting keeps its place. The
   * admissions returned besides are of units whose slot came free (a lapsed lease).
   */
  offer(units: readonly GatedUnit[], now: number): Promise<{ answers: OfferAnswer[]; admitted: Admission[] }>;
  /**
   * A worker is about to run the unit's job: it holds its slot (now leased for `leaseMs`), or
   * takes a free one, or is parked at the head of the line (its job is to be delayed, and
   * promoted when admitted). Admissions of units whose slot came free on the way are returned.
   */
  claim(unit: GatedUnit, now: number, leaseMs: number): Promise<{ answer: ClaimAnswer; admitted: Admission[] }>;
  /** Extends the leases of slots held by running units. */
  renew(units: readonly UnitRef[], until: number): Promise<void>;
  /**
   * Units that will never run (their case ended) leave their key's line at once, so that no
   * admission elsewhere picks them while their jobs are being cancelled; those holding a slot
   * keep it (`release` gives it up once they are known not to be running).
   */
  withdraw(units: readonly UnitRef[]): Promise<void>;
  /** The units are done with their slots, or will never run (their case ended): slots freed, lines left, then the next waiting admitted (never one of the units released). */
  release(units: readonly UnitRef[], now: number): Promise<Admission[]>;
  /** Frees the slots whose lease ran out (their worker died) and admits the next waiting. */
  sweep(now: number): Promise<Admission[]>;
  position(unit: UnitRef): Promise<UnitPosition>;
  /** Up to `max` units holding slots in `group`, over all keys, the soonest lease to run out first (ties by job id), from the `offset`-th on (default 0). */
  heldIn(group: string, max: number, offset?: number): Promise<string[]>;
  /** The units holding slots of `key` in `group`, the soonest lease to run out first: for cases (leases of one length), the longest held (bounded by the key's limit). */
  holders(group: string, key: string): Promise<string[]>;
  stats(top: number): Promise<LimitStats>;
}

/** One rate-limit key as its window stands now. */
export interface RateKeyUse {
  group: string;
  key: string;
  max: number;
  perMs: number;
  /** Starts made in the last `perMs` up to now. */
  used: number;
  /** Starts reserved for later: units deferred by the limit. */
  deferred: number;
}

export interface RateStats {
  /** Each group with keys whose window is not empty; `deferred` over the keys looked at (the most recently reserved, at most RATE_STATS_SCAN). */
  groups: Array<{ group: string; keys: number; deferred: number }>;
  /** The busiest keys (used plus deferred), at most `top` per group. */
  topKeys: RateKeyUse[];
}

/** Keys of one group a rate-stats read looks at, at most: the most recently reserved ones. */
export const RATE_STATS_SCAN = 1_000;

export interface RateLimiter {
  /**
   * Asks for a start of `member` (one attempt of one unit) under at most `max` starts per `perMs`
   * for `key` in `group`, and answers its time: `now` or earlier, go (the start is recorded: a
   * member that started is answered its start again, never counted twice); later, defer until
   * then. A member keeps its reservation while it lasts; when its time has come but the starts
   * made meanwhile fill the window, it is given a later one.
   */
  reserve(request: { group: string; key: string; max: number; perMs: number; member: string }, now: number): Promise<number>;
  /** The rate-limit groups with live windows and their busiest keys (/v1/status). */
  rateStats(top: number, now: number): Promise<RateStats>;
}
