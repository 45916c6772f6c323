import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from '../../api/auth-limiter.js';
import { freePort } from '../../lib/local-servers/free-port.js';

/** The failed-authentication budget on its own: counted in this process when there is no Redis to count in. */

let now = 1_000_000;
const clock = { now: () => now };
const unreachable: Redis[] = [];

afterAll(() => {
  for (const connection of unreachable) connection.disconnect();
});

describe('AuthFailureLimiter without Redis', () => {
  it('refuses an address before authentication once it spent its budget, until its minute is over', async () => {
    const limiter = new AuthFailureLimiter({ budget: 3, clock, prefix: 't' });
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await limiter.fail('198.51.100.1'));
    expect(verdicts).toEqual([undefined, undefined, undefined, 60]);
    expect(limiter.refusal('198.51.100.1')).toBe(60);
    expect(limiter.refusal('198.51.100.2')).toBeUndefined();
    now += 45_000;
    expect(limiter.refusal('198.51.100.1')).toBe(15);
    now += 15_000;
    expect(limiter.refusal('198.51.100.1')).toBeUndefined();
    expect(await limiter.fail('198.51.100.1')).toBeUndefined();
  });

  it('counts here when Redis does not answer, without waiting long for it', async () => {
    // A port nobody listens on: the commands queue in ioredis, unanswered.
    const redis = new Redis({ port: await freePort(), host: '127.0.0.1', lazyConnect: false, maxRetriesPerRequest: null, retryStrategy: () => 1_000 });
    redis.on('error', () => undefined);
    unreachable.push(redis);
    const limiter = new AuthFailureLimiter({ budget: 1, clock, prefix: 't', redis });
    const startedAt = Date.now();
    expect(await limiter.fail('203.0.113.9')).toBeUndefined();
    expect(await limiter.fail('203.0.113.9')).toBe(60);
    expect(Date.now() - startedAt).toBeLessThan(2_000);
    expect(limiter.refusal('203.0.113.9')).toBe(60);
  });
});
