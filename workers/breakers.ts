import CircuitBreaker from 'opossum';

/** Breaker settings, shared by every breaker of a worker process. */
export interface BreakerOptions {
  /** Failure share (percent) in the window that opens a breaker. Default 50. */
  errorThresholdPercent: number;
  /** Calls in the window before a breaker may open. Default 5. */
  volumeThreshold: number;
  /** Time an open breaker waits before one probe call. Default 30000 ms. */
  resetTimeoutMs: number;
  /** Window over which failures are counted. Default 10000 ms. */
  rollingWindowMs: number;
}

export type BreakerState = 'closed' | 'halfOpen' | 'open';

export type Admission = { admitted: true } | { admitted: false; until: number };

/** Errors that say nothing about the dependency's health: they neither open nor keep open a breaker. */
export function isNonRetryable(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const flagged = error as { nonRetryable?: unknown; name?: unknown };
  return flagged.nonRetryable === true || flagged.name === 'NonRetryableError' || flagged.name === 'UnrecoverableError';
}

type Thunk = () => Promise<unknown>;

/**
 * One opossum breaker per key (a handler's task name or the dependency a step declares), in
 * this process. An open breaker does not reject tasks: it tells the caller until when to defer
 * them, so they wait without spending retry attempts. After the reset timeout opossum lets
 * exactly one probe through (half-open); its result closes or re-opens the breaker.
 */
export class Breakers {
  private readonly breakers = new Map<string, CircuitBreaker<[Thunk], unknown>>();
  private readonly openedAt = new Map<string, number>();

  constructor(
    private readonly options: BreakerOptions,
    private readonly onChange: (key: string, state: BreakerState) => void = () => undefined,
  ) {}

  private breaker(key: string): CircuitBreaker<[Thunk], unknown> {
    let breaker = this.breakers.get(key);
    if (!breaker) {
      breaker = new CircuitBreaker((thunk: Thunk) => thunk(), {
        // Timeouts are ours (per step, with an AbortSignal); opossum only counts outcomes.
        timeout: false,
        errorThresholdPercentage: this.options.errorThresholdPercent,
        volumeThreshold: this.options.volumeThreshold,
        resetTimeout: this.options.resetTimeoutMs,
        rollingCountTimeout: this.options.rollingWindowMs,
        errorFilter: (error: unknown) => isNonRetryable(error),
      });
      breaker.on('open', () => {
        this.openedAt.set(key, Date.now());
        this.onChange(key, 'open');
      });
      breaker.on('halfOpen', () => this.onChange(key, 'halfOpen'));
      breaker.on('close', () => this.onChange(key, 'closed'));
      this.breakers.set(key, breaker);
    }
    return breaker;
  }

  get resetTimeoutMs(): number {
    return this.options.resetTimeoutMs;
  }

  state(key: string): BreakerState {
    const breaker = this.breakers.get(key);
    if (!breaker || breaker.closed) return 'closed';
    return breaker.halfOpen ? 'halfOpen' : 'open';
  }

  /** When the next call may go through, if not now. */
  admit(key: string, now: number): Admission {
    const breaker = this.breaker(key);
    if (breaker.closed || breaker.pendingClose) return { admitted: true };
    // Open: until the probe time. Half-open with the probe in flight: shortly, to see its result.
    const until = breaker.opened ? (this.openedAt.get(key) ?? now) + this.options.resetTimeoutMs : now + 1_000;
    // Spread the deferred tasks so they do not all come back in the same millisecond.
    return { admitted: false, until: Math.max(until, now) + Math.floor(Math.random() * 250) };
  }

  /** Runs `thunk` through the key's breaker. Rejects with code EOPENBREAKER if it was refused. */
  fire<T>(key: string, thunk: () => Promise<T>): Promise<T> {
    return this.breaker(key).fire(thunk) as Promise<T>;
  }

  shutdown(): void {
    for (const breaker of this.breakers.values()) breaker.shutdown();
  }
}
