/**
 * Where bursts of debounced starts are kept (lib/core/debounce.ts): shared by every replica that
 * takes starts, so that a burst is one burst fleet-wide. The Redis adapter keeps each burst in
 * one hash and closes it with a delayed job on the intake queue; the memory adapter serves the
 * engine's unit tests.
 */

/** The name of the intake queue's jobs that close a burst (the scheduler's intake processor runs them). */
export const DEBOUNCE_JOB = 'debounce';

/** A start held in a burst: the request its case will be made from, and where it came from. */
export interface HeldStart {
  /** The version is the one the start was checked against (the latest then, if it named none). */
  request: { workflow: string; version: number; input: Record<string, unknown>; businessKeys?: Record<string, string> };
  /** The debounce key it rendered (the same for every start of the burst). */
  key: string;
  startedBy?: string;
  requestId?: string;
}

/** One start for a burst. */
export interface BurstJoinRequest {
  /** The burst's address: a digest of the producer's scope, the workflow and the rendered key. */
  address: string;
  /** The burst's id if this start opens one: the id of the case the burst will make. */
  candidateId: string;
  now: number;
  /**
   * When the start was made (an intake job's `enqueuedAt`, else `now`): of a burst's starts, the
   * latest by this holds the request, so that a redelivered old job cannot replace a newer start.
   */
  at: number;
  forMs: number;
  maxWaitMs?: number;
  start: HeldStart;
  /** The start's idempotency key, remembered for `memoryMs`: a repeat joins nothing and gets the burst again. */
  idempotency?: { key: string; requestHash: string; memoryMs: number };
}

export type BurstJoin =
  | {
      /** opened: this start began the burst; joined: it joined an open one; replayed: its idempotency key had joined this burst before. */
      outcome: 'opened' | 'joined' | 'replayed';
      burstId: string;
      /** When the burst closes as things stand (a later start may put it off, up to maxWait); unknown for a replay of a closed burst. */
      dueAt?: number;
      /** Starts joined to the burst so far. */
      starts?: number;
    }
  /** The idempotency key joined `burstId` with another request. */
  | { outcome: 'conflict'; burstId: string };

export type BurstClose =
  /** Starts put the burst off: look again at `dueAt`. */
  | { kind: 'wait'; dueAt: number }
  /** Closed (now, or before without its case confirmed): make its case from `start`. */
  | { kind: 'start'; start: HeldStart; firstAt: number; starts: number }
  /** No such burst: its case was made and the burst forgotten, or it expired. */
  | { kind: 'gone' };

export interface StartDebouncer {
  /** Adds a start to the open burst at its address, opening one if there is none, and makes sure the burst will be closed. */
  join(request: BurstJoinRequest): Promise<BurstJoin>;
  /** Closes the burst if it is due at `now`; a closed burst answers with its start until `release`. */
  close(address: string, burstId: string, now: number): Promise<BurstClose>;
  /** Forgets a closed burst, once its case exists. */
  release(address: string, burstId: string): Promise<void>;
}
