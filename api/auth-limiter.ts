import type { RedisClient } from '../lib/adapters/redis/connection.js';
import type { Clock } from '../lib/ports/clock.js';

/** The window failures are counted in; a budget is "per minute". */
const WINDOW_MS = 60_000;

/** Longest a failure waits for Redis's count before this process counts it alone. */
const REDIS_TIMEOUT_MS = 250;

/** Addresses remembered at most; the oldest goes first, so that a spread-out flood stays bounded. */
const ADDRESSES = 50_000;

/**
 * Failed authentications per client address, checked before a request is authenticated: once
 * an address has spent its budget in the window, its requests are refused without a look at
 * the key, so a flood of made-up keys costs no store lookups. Requests that authenticate
 * spend nothing.
 *
 * The count lives in Redis, shared by every API process; each process also remembers what the
 * count was when it last saw an address fail, which is what its check before authentication
 * reads (no Redis round trip on the way of a good request). A process that has not seen an
 * address fail learns of its spent budget at its first failure there. With Redis away, each
 * process counts alone.
 */
export class AuthFailureLimiter {
  private readonly seen = new Map<string, { count: number; until: number }>();

  constructor(private readonly options: { budget: number; clock: Clock; redis?: RedisClient; prefix: string }) {}

  /** Seconds the address must wait when it has spent its budget; undefined when it may try. */
  refusal(address: string): number | undefined {
    const entry = this.seen.get(address);
    const now = this.options.clock.now();
    if (!entry || entry.until <= now) return undefined;
    return entry.count >= this.options.budget ? Math.ceil((entry.until - now) / 1000) : undefined;
  }

  /** Counts a failed authentication; the seconds to wait when it is over the budget. */
  async fail(address: string): Promise<number | undefined> {
    const now = this.options.clock.now();
    const counted = (await this.countShared(address)) ?? this.countHere(address, now);
    // Answers may come back out of order: a smaller count of the same window never lowers a larger one.
    const known = this.seen.get(address);
    const count = known && known.until > now ? Math.max(known.count, counted.count) : counted.count;
    this.remember(address, { count, until: now + counted.ttlMs });
    return counted.count > this.options.budget ? Math.max(1, Math.ceil(counted.ttlMs / 1000)) : undefined;
  }

  private async countShared(address: string): Promise<{ count: number; ttlMs: number } | undefined> {
    const { redis, prefix } = this.options;
    if (!redis) return undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        // One transaction: the count, the window set only by the first failure (NX), what is left of it.
        redis
          .multi()
          .incr(`${prefix}:api:auth-failures:${address}`)
          .pexpire(`${prefix}:api:auth-failures:${address}`, WINDOW_MS, 'NX')
          .pttl(`${prefix}:api:auth-failures:${address}`)
          .exec()
          .then((results) => (results ? [results[0]?.[1], results[2]?.[1]] : undefined)),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), REDIS_TIMEOUT_MS))),
      ]);
      if (!Array.isArray(answer)) return undefined;
      const [count, ttlMs] = answer as [number, number];
      return { count, ttlMs };
    } catch {
      return undefined; // Redis away: counted here instead
    } finally {
      clearTimeout(timer);
    }
  }

  private countHere(address: string, now: number): { count: number; ttlMs: number } {
    const entry = this.seen.get(address);
    if (!entry || entry.until <= now) return { count: 1, ttlMs: WINDOW_MS };
    return { count: entry.count + 1, ttlMs: entry.until - now };
  }

  private remember(address: string, entry: { count: number; until: number }): void {
    this.seen.delete(address);
    if (this.seen.size >= ADDRESSES) {
      const oldest = this.seen.keys().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
    this.seen.set(address, entry);
  }
}
