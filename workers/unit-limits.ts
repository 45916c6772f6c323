import type { LimitWait, StepJob } from '../lib/core/state.js';
import type { Clock } from '../lib/ports/clock.js';
import type { Admission, ConcurrencyGate, RateLimiter, UnitRef } from '../lib/ports/limits.js';

/** Whether a unit may run now, or until when it waits and for what. */
export type LimitAdmission = { go: true } | { go: false; until: number; wait: LimitWait };

export interface UnitLimitsOptions {
  /** A running unit's slot lease; renewed every third of it while the unit runs. The worker's lock duration. */
  leaseMs: number;
}

/**
 * How long a parked job (no slot for it: its lease lapsed while it waited) stays delayed unless
 * it is promoted first, as it is when a slot comes free: the fallback if that promotion is lost.
 */
const PARK_MS = 5_000;

/** A rate-limit wait up to this long is waited out in the worker instead of deferring the unit. */
const SHORT_RATE_WAIT_MS = 250;

/** The longest key a deferral report carries (reports bound their fields); the gate has the whole key. */
const MAX_REPORTED_KEY = 200;
const reported = (key: string) => (key.length <= MAX_REPORTED_KEY ? key : `${key.slice(0, MAX_REPORTED_KEY - 1)}…`);

/**
 * A worker's side of the limits (docs/LANGUAGE.md): before a keyed unit runs, its rate-limit
 * reservation (a unit over the limit is deferred to its reserved time without spending an
 * attempt), then its concurrency slot (claimed, leased and renewed while it runs, released when
 * the attempt ends, whatever its outcome). Admissions that a claim or a release produce are
 * dispatched at once, so that the next unit of the key starts without waiting for a scheduler.
 */
export class UnitLimits {
  private readonly held = new Map<string, UnitRef>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly deps: {
      gate: ConcurrencyGate;
      rates: RateLimiter;
      dispatch: (admissions: readonly Admission[]) => Promise<void>;
      clock: Clock;
      onError: (error: unknown) => void;
    },
    private readonly options: UnitLimitsOptions,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(100, Math.floor(options.leaseMs / 3)));
    this.timer.unref();
  }

  /** Reserves the unit's rate and claims its slot; a unit that may not run now is told until when to wait. */
  async admit(job: StepJob, delivery: { id: string; queue: string; attempt: number }): Promise<LimitAdmission> {
    const { id: jobId, queue, attempt } = delivery;
    const { clock } = this.deps;
    if (job.rateLimit) {
      const { group, key, max, perMs } = job.rateLimit;
      const request = { group, key, max, perMs, member: `${jobId}#${attempt}` };
      // The answer is a go (the start is recorded) only when it is not later than the time asked at.
      let asked = clock.now();
      let at = await this.deps.rates.reserve(request, asked);
      // A short wait (a start late by a few ms holds the window a moment longer) is waited out
      // here: deferring it would cost a transition of the case and a delayed job's round trip.
      for (let tries = 0; at > asked && at - clock.now() <= SHORT_RATE_WAIT_MS && tries < 3; tries++) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, at - clock.now())));
        asked = clock.now();
        at = await this.deps.rates.reserve(request, asked);
      }
      if (at > asked) return { go: false, until: at, wait: { kind: 'rate', group, key: reported(key) } };
    }
    const now = clock.now();
    if (job.concurrency) {
      const { group, key, limit } = job.concurrency;
      const { answer, admitted } = await this.deps.gate.claim({ group, key, limit, jobId, queue, priority: job.priority ?? 0, payload: '' }, now, this.options.leaseMs);
      await this.deps.dispatch(admitted);
      if (!answer.run) return { go: false, until: now + PARK_MS, wait: { kind: 'concurrency', group, key: reported(key), ahead: answer.ahead } };
      this.held.set(jobId, { group, jobId });
    }
    return { go: true };
  }

  /** The attempt is over (done, failed, retrying later, deferred, handed back): its slot goes to the next in line. */
  async release(jobId: string): Promise<void> {
    const unit = this.held.get(jobId);
    if (!unit) return;
    this.held.delete(jobId);
    await this.deps.dispatch(await this.deps.gate.release([unit], this.deps.clock.now()));
  }

  private async renew(): Promise<void> {
    if (this.held.size === 0) return;
    try {
      await this.deps.gate.renew([...this.held.values()], this.deps.clock.now() + this.options.leaseMs);
    } catch (error) {
      // The next renewal tries again; a lease that lapses meanwhile costs a re-claim, never a double run.
      this.deps.onError(error);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
