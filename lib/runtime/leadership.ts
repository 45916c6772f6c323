import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../adapters/redis/connection.js';

/**
 * A lease in Redis that at most one process holds at a time: SET NX with an expiry, renewed
 * while held. Used for work that one scheduler should do for the fleet (queue depth metrics,
 * retention), where doing it twice is harmless but wasteful.
 */
export class Lease {
  private readonly token = randomUUID();
  private held = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly key: string,
    private readonly ttlMs: number,
  ) {}

  get isHeld(): boolean {
    return this.held;
  }

  /** Tries to take or renew the lease now, and again every third of its lifetime. */
  start(): this {
    const tick = async () => {
      try {
        const holder = await this.redis.get(this.key);
        if (holder === this.token) {
          await this.redis.pexpire(this.key, this.ttlMs);
          this.held = true;
        } else {
          this.held = (await this.redis.set(this.key, this.token, 'PX', this.ttlMs, 'NX')) === 'OK';
        }
      } catch {
        this.held = false;
      }
    };
    void tick();
    this.timer = setInterval(() => void tick(), Math.max(1_000, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
    return this;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.held && (await this.redis.get(this.key).catch(() => null)) === this.token) await this.redis.del(this.key).catch(() => 0);
    this.held = false;
  }
}
