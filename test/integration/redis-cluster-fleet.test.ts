import { sampleStepJob } from '../helpers/samples.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthFailureLimiter } from '../../api/auth-limiter.js';
import { BullFleetMonitor } from '../../lib/adapters/bullmq/fleet.js';
import { BullQueues } from '../../lib/adapters/bullmq/queues.js';
import { BullSchedules } from '../../lib/adapters/bullmq/schedules.js';
import { masterConnections, redisConnection } from '../../lib/adapters/redis/connection.js';
import { RedisRevocationNotices, listenForRevocations } from '../../lib/adapters/redis/key-revocations.js';
import type { StepJob } from '../../lib/core/state.js';
import { startRedisCluster, type RedisCluster } from '../../lib/local-servers/redis-cluster.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Lease } from '../../lib/runtime/leadership.js';
import { isInfrastructureUnavailable } from '../../lib/adapters/unavailable.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The parts of the fleet that use Redis, on a real Redis Cluster (3 masters, a replica each):
 * every queue's keys in one slot, the queues spread over the masters, and the keys and channels
 * outside BullMQ (fleet members, leases, counters, pub/sub) working from any node.
 */

let cluster: RedisCluster;
const retention = { keepCompletedSeconds: 3600, keepCompletedCount: 1000, keepFailedSeconds: 3600 };
const closers: Array<() => Promise<unknown> | void> = [];
const logger = createLogger({ level: 'silent', name: 'test-cluster' });

const step = (stepId: string): StepJob =>
  sampleStepJob({ caseId: 'c1', stepId, task: 't', input: { n: 1 }, idempotencyKey: `c1:${stepId}`, backoff: { type: 'fixed', delayMs: 10, maxDelayMs: 10, jitter: 0 }, timeoutMs: 1_000, breaker: 't' });

beforeAll(async () => {
  cluster = await startRedisCluster();
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await cluster?.stop();
});

describe('the fleet on a Redis Cluster', () => {
  it("keeps each queue's keys in one slot and spreads the queues over the masters", async () => {
    const prefix = 'wfc';
    const queues = new BullQueues({ redisUrl: cluster.url, prefix, retention });
    closers.push(() => queues.close());
    const stepQueues = ['default', 'email', 'billing', 'reports', 'images'];
    await queues.enqueueSteps(stepQueues.map((queue) => ({ queue, jobId: `c1.${queue}`, job: step(queue) })));
    await queues.report([{ caseId: 'c1', event: { type: 'stepStarted', stepId: 'a', attempt: 1, at: 5 } }]);
    const at = Date.now() + 60_000;
    await queues.scheduleTimers([{ caseId: 'c1', jobId: 'c1.timer', at, event: { type: 'timerFired', stepId: 'wait', run: 1, kind: 'sleep', at } }]);
    await new BullSchedules(queues).upsert({ id: 's1', workflow: 'w', input: {}, everyMs: 60_000 });

    // Every key under the prefix, from every master, grouped by the queue its hash tag names.
    const slotsOfQueue = new Map<string, Set<number>>();
    for (const connection of masterConnections(queues.connection)) {
      const keys = await connection.keys(`${prefix}:*`);
      for (const key of keys) {
        const queue = /^wfc:\{([^}]+)\}:/.exec(key)?.[1];
        expect(queue, `${key} carries its queue as a hash tag`).toBeDefined();
        const slots = slotsOfQueue.get(queue ?? '') ?? new Set<number>();
        slots.add(Number(await connection.cluster('KEYSLOT', key)));
        slotsOfQueue.set(queue ?? '', slots);
      }
    }
    expect([...slotsOfQueue.keys()].sort()).toEqual(['cases', 'results', 'timers', ...stepQueues].sort());
    for (const [queue, slots] of slotsOfQueue) expect(slots.size, `${queue}'s keys in one slot`).toBe(1);
    const masterOfQueue = new Map<string, number>();
    for (const queue of slotsOfQueue.keys()) masterOfQueue.set(queue, (await cluster.masterOf(`${prefix}:{${queue}}:${queue}:meta`)).port);
    expect(new Set(masterOfQueue.values()).size).toBeGreaterThanOrEqual(2);

    // What /v1/status, Bull Board and the metrics read: every queue, found on all masters.
    const monitor = new BullFleetMonitor(queues, prefix);
    expect(await monitor.queueNames()).toEqual([...slotsOfQueue.keys()].sort());
    const counts = await monitor.queueCounts(['default', 'timers']);
    expect(counts.default?.waiting).toBe(1);
    expect(counts.timers?.delayed).toBe(1);
    expect((await monitor.redisHealth()).maxmemoryPolicy).toBe('noeviction');
    await monitor.heartbeat({ id: 'w1', role: 'worker', host: 'h', pid: 1, queues: ['default'], concurrency: 1, startedAt: Date.now(), seenAt: Date.now() });
    expect((await monitor.members(Date.now())).map((member) => member.id)).toEqual(['w1']);
    expect((await new BullSchedules(queues).list()).map((schedule) => schedule.id)).toEqual(['s1']);
  });

  it('holds a lease, counts failed authentications and carries revocation notices across the nodes', async () => {
    const connection = redisConnection(cluster.url, { maxRetriesPerRequest: 3 });
    closers.push(() => connection.disconnect());
    const lease = new Lease(connection, 'wfc:scheduler:lease', 15_000).start();
    closers.push(() => lease.stop());
    await waitFor('the lease', () => (lease.isHeld ? true : undefined));

    const limiter = new AuthFailureLimiter({ budget: 2, clock: { now: () => Date.now() }, prefix: 'wfc', redis: connection });
    expect(await limiter.fail('198.51.100.7')).toBeUndefined();
    expect(await limiter.fail('198.51.100.7')).toBeUndefined();
    expect(await limiter.fail('198.51.100.7')).toBeGreaterThan(0);

    const forgotten: string[] = [];
    const listener = await listenForRevocations(connection, 'wfc', { forget: (id) => forgotten.push(id), forgetAll: () => undefined }, logger);
    closers.push(() => listener.close());
    // Published on a connection of its own: PUBLISH reaches subscribers on every node of the cluster.
    const publisher = redisConnection(cluster.url);
    closers.push(() => publisher.disconnect());
    await new RedisRevocationNotices(publisher, 'wfc', logger).publish('key-1');
    await waitFor('the notice', () => (forgotten.includes('key-1') ? true : undefined));
  });

  it('waits for a replica of the master that took the jobs when told to (REDIS_WAIT_REPLICAS), and fails as unavailable when too few confirm', async () => {
    const waiting = new BullQueues({ redisUrl: cluster.url, prefix: 'wfw', retention, waitReplicas: { replicas: 1, timeoutMs: 2_000 } });
    closers.push(() => waiting.close());
    await waiting.enqueueSteps([{ queue: 'default', jobId: 'c1.a', job: step('a') }]);
    expect(await waiting.queue('default').getJobState('c1.a')).toBe('waiting');

    // Each master has one replica: two cannot confirm, and the add fails as Redis unavailable (503, retried).
    const greedy = new BullQueues({ redisUrl: cluster.url, prefix: 'wfw', retention, waitReplicas: { replicas: 2, timeoutMs: 200 } });
    closers.push(() => greedy.close());
    const failure = await greedy.enqueueSteps([{ queue: 'default', jobId: 'c1.b', job: step('b') }]).catch((error: unknown) => error);
    expect(String(failure)).toMatch(/NOREPLICAS 1 of 2 replicas/);
    expect(isInfrastructureUnavailable(failure)).toBe(true);
    // The job itself was written: a retry with the same job id finds it.
    expect(await greedy.queue('default').getJobState('c1.b')).toBe('waiting');
  });
});
