import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { RedisClient } from '../lib/adapters/redis/connection.js';

/** One fixed window per key: the count, and the window's remaining time (its first request sets it). */
const COUNT_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
if current == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {current, redis.call('PTTL', KEYS[1])}
`;

type Counting = RedisClient & { workfleetRateCount?: (key: string, windowMs: number) => Promise<[number, number]> };

/**
 * Rate-limit counters in Redis that fail open: when Redis refuses the count (out of memory,
 * unreachable), the request goes through and `onError` hears of it. A limit that cannot be
 * counted must not turn every read into a 500 (the plugin's own Redis store does, and its
 * `skipOnError` would swallow the error where nobody sees it).
 */
export function failOpenRedisStore(redis: RedisClient, nameSpace: string, onError: (error: unknown) => void): FastifyRateLimitStoreCtor {
  const counting = redis as Counting;
  if (!counting.workfleetRateCount) counting.defineCommand('workfleetRateCount', { numberOfKeys: 1, lua: COUNT_SCRIPT });
  const store = (prefix: string): FastifyRateLimitStore => ({
    incr(key, callback, timeWindow) {
      const windowMs = typeof timeWindow === 'number' ? timeWindow : 60_000;
      const count = counting.workfleetRateCount;
      if (!count) return callback(null, { current: 0, ttl: windowMs });
      count.call(counting, `${prefix}${key}`, windowMs).then(
        ([current, ttl]) => callback(null, { current, ttl }),
        (error: unknown) => {
          onError(error);
          callback(null, { current: 0, ttl: windowMs });
        },
      );
    },
    child: (routeOptions) => store(`${prefix}${routeOptions.method.toString()}${routeOptions.url}-`),
  });
  return class {
    constructor(_options: FastifyRateLimitOptions) {
      return store(nameSpace);
    }
  } as unknown as FastifyRateLimitStoreCtor;
}
