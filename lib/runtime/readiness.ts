import { formatBytes } from '../core/format.js';
import type { ReadinessCheck } from '../obs/readiness.js';
import type { RedisHealth } from '../ports/fleet.js';
import type { Store } from '../ports/store.js';

/**
 * Redis is ready for the fleet when it answers, keeps every key (BullMQ loses jobs when Redis
 * evicts: any policy but noeviction is refused, on purpose) and has room: at maxmemory it refuses
 * every write, so nothing that enqueues can work.
 */
export function redisReadiness(health: () => Promise<Pick<RedisHealth, 'maxmemoryPolicy'> & Partial<RedisHealth>>): ReadinessCheck['check'] {
  return async () => {
    const { maxmemoryPolicy, usedMemoryBytes = 0, maxmemoryBytes = 0 } = await health();
    if (maxmemoryPolicy !== 'noeviction') throw new Error(`maxmemory-policy is ${maxmemoryPolicy || 'unknown'}; BullMQ needs noeviction`);
    if (maxmemoryBytes > 0 && usedMemoryBytes >= maxmemoryBytes) {
      throw new Error(`redis out of memory: used_memory ${formatBytes(usedMemoryBytes)} of maxmemory ${formatBytes(maxmemoryBytes)}; writes are refused`);
    }
  };
}

/** What every process checks before it says it is ready: both servers, each within the probe's time. */
export function fleetReadinessChecks(deps: { store: Pick<Store, 'ping'>; redisHealth: () => Promise<RedisHealth> }): ReadinessCheck[] {
  return [
    { name: 'mongodb', check: (timeoutMs) => deps.store.ping(timeoutMs) },
    { name: 'redis', check: redisReadiness(deps.redisHealth) },
  ];
}
