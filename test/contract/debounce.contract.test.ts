import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisStartDebouncer } from '../../lib/adapters/bullmq/debounce.js';
import { BullQueues } from '../../lib/adapters/bullmq/queues.js';
import { MemoryStartDebouncer } from '../../lib/adapters/memory/debounce.js';
import { DEBOUNCE_JOB, type BurstJoinRequest, type HeldStart, type StartDebouncer } from '../../lib/ports/debounce.js';
import { INTAKE_QUEUE } from '../../lib/ports/queues.js';
import { startTestRedis, type TestRedis } from '../helpers/servers.js';

/**
 * The StartDebouncer port's contract, run against the Redis adapter (its scripts on a private
 * redis-server, or a Redis Cluster with WORKFLEET_TEST_REDIS=cluster) and the memory adapter the
 * engine's unit tests use: the same answers for the same starts. Time is passed in, never waited for.
 */

let dir: string;
let redis: TestRedis;
const closers: Array<() => Promise<unknown>> = [];
const retention = { keepCompletedSeconds: 3600, keepCompletedCount: 1000, keepFailedSeconds: 3600 };
const T0 = 1_800_000_000_000;

function redisDebouncer(): { debouncer: StartDebouncer; queues: BullQueues; prefix: string } {
  const prefix = `wft-${randomBytes(5).toString('hex')}`;
  const queues = new BullQueues({ redisUrl: redis.url, prefix, retention });
  closers.push(() => queues.close());
  return { debouncer: new RedisStartDebouncer(queues, { prefix, retention }), queues, prefix };
}

const adapters: Array<[string, () => StartDebouncer]> = [
  ['RedisStartDebouncer', () => redisDebouncer().debouncer],
  ['MemoryStartDebouncer', () => new MemoryStartDebouncer()],
];

beforeAll(async () => {
  dir = mkdtempSync(joinPath(tmpdir(), 'workfleet-debounce-'));
  redis = await startTestRedis(dir);
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

afterAll(async () => {
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const held = (rev: number, extra: Partial<HeldStart> = {}): HeldStart => ({ request: { workflow: 'w', version: 1, input: { rev } }, key: 'k', startedBy: 'key-a', ...extra });

let ids = 0;
const join = (debouncer: StartDebouncer, now: number, rev: number, extra: Partial<BurstJoinRequest> = {}) =>
  debouncer.join({ address: 'addr-1', candidateId: `burst-${++ids}`, now, at: now, forMs: 1_000, maxWaitMs: 5_000, start: held(rev), ...extra });

describe.each(adapters)('StartDebouncer contract: %s', (_name, make) => {
  it('opens a burst, joins starts to it, and puts its close off by `for` after each', async () => {
    const debouncer = make();
    const first = await join(debouncer, T0, 1);
    expect(first).toEqual({ outcome: 'opened', burstId: expect.any(String), dueAt: T0 + 1_000, starts: 1 });
    expect(await join(debouncer, T0 + 600, 2)).toEqual({ outcome: 'joined', burstId: first.burstId, dueAt: T0 + 1_600, starts: 2 });
    expect(await join(debouncer, T0 + 700, 3, { address: 'addr-2' })).toMatchObject({ outcome: 'opened', starts: 1 });
    expect(await debouncer.close('addr-1', first.burstId, T0 + 1_000)).toEqual({ kind: 'wait', dueAt: T0 + 1_600 });
    expect(await debouncer.close('addr-1', first.burstId, T0 + 1_600)).toEqual({ kind: 'start', start: held(2), firstAt: T0, starts: 2 });
  });

  it('answers a closed burst with its start until it is released, and opens a new burst meanwhile', async () => {
    const debouncer = make();
    const { burstId } = await join(debouncer, T0, 1);
    const closed = await debouncer.close('addr-1', burstId, T0 + 1_000);
    expect(closed.kind).toBe('start');
    const next = await join(debouncer, T0 + 1_001, 2);
    expect(next).toMatchObject({ outcome: 'opened', dueAt: T0 + 2_001 });
    expect(next.burstId).not.toBe(burstId);
    // The close run again (a crash before its case was confirmed) finds the same start.
    expect(await debouncer.close('addr-1', burstId, T0 + 5_000)).toEqual(closed);
    await debouncer.release('addr-1', burstId);
    expect(await debouncer.close('addr-1', burstId, T0 + 5_000)).toEqual({ kind: 'gone' });
    expect(await debouncer.close('addr-1', next.burstId, T0 + 5_000)).toMatchObject({ kind: 'start', start: held(2) });
    expect(await debouncer.close('nowhere', 'none', T0)).toEqual({ kind: 'gone' });
  });

  it('closes a burst that never goes quiet at maxWait after its first start', async () => {
    const debouncer = make();
    const { burstId } = await join(debouncer, T0, 0);
    for (let n = 1; n <= 10; n++) expect(await join(debouncer, T0 + n * 800, n)).toMatchObject({ burstId, dueAt: Math.min(T0 + n * 800 + 1_000, T0 + 5_000) });
    expect(await debouncer.close('addr-1', burstId, T0 + 5_000)).toMatchObject({ kind: 'start', start: held(10), starts: 11 });
  });

  it('keeps the start made last, whatever order the starts arrive in', async () => {
    const debouncer = make();
    const { burstId } = await join(debouncer, T0, 2);
    await join(debouncer, T0 + 100, 1, { at: T0 - 50 });
    expect(await debouncer.close('addr-1', burstId, T0 + 1_100)).toMatchObject({ start: held(2) });
  });

  it('remembers an idempotency key: a repeat gets the burst and changes nothing, another request with it is a conflict', async () => {
    const debouncer = make();
    const keyed = (key: string, requestHash: string, memoryMs = 60_000) => ({ idempotency: { key, requestHash, memoryMs } });
    const { burstId } = await join(debouncer, T0, 1, keyed('edit-1', 'h1'));
    await join(debouncer, T0 + 10, 2, keyed('edit-2', 'h2'));
    expect(await join(debouncer, T0 + 20, 1, keyed('edit-1', 'h1'))).toEqual({ outcome: 'replayed', burstId, dueAt: T0 + 1_010, starts: 2 });
    expect(await join(debouncer, T0 + 30, 9, keyed('edit-1', 'other'))).toEqual({ outcome: 'conflict', burstId });
    expect(await debouncer.close('addr-1', burstId, T0 + 1_010)).toMatchObject({ start: held(2), starts: 2 });
    // Closed: a repeat still names the burst, without a due time.
    expect(await join(debouncer, T0 + 2_000, 1, keyed('edit-1', 'h1'))).toEqual({ outcome: 'replayed', burstId });
  });

  it('never brings a close forward: a start with a shorter quiet time keeps the due time already promised', async () => {
    const debouncer = make();
    const { burstId } = await join(debouncer, T0, 1, { forMs: 3_000 });
    expect(await join(debouncer, T0 + 100, 2, { forMs: 500 })).toMatchObject({ burstId, dueAt: T0 + 3_000 });
  });
});

describe('RedisStartDebouncer', () => {
  it('adds one delayed close job per burst on the intake queue, with the burst as its data', async () => {
    const { debouncer, queues } = redisDebouncer();
    const now = Date.now();
    const { burstId } = await join(debouncer, now, 1);
    await join(debouncer, now + 10, 2);
    const jobs = await queues.queue(INTAKE_QUEUE).getJobs(['delayed']);
    expect(jobs.map((job) => [job.id, job.name, job.data as unknown])).toEqual([[`debounce-${burstId}`, DEBOUNCE_JOB, { address: 'addr-1', burstId }]]);
    expect(jobs[0]?.delay).toBeGreaterThan(900);
    // Gone (its opener died before adding it): the next start adds it again.
    await queues.queue(INTAKE_QUEUE).remove(`debounce-${burstId}`);
    await join(debouncer, now + 20, 3);
    expect((await queues.queue(INTAKE_QUEUE).getJobs(['delayed'])).map((job) => job.id)).toEqual([`debounce-${burstId}`]);
  });

  it('lets the burst hash expire a week after its due time', async () => {
    const { debouncer, queues, prefix } = redisDebouncer();
    await join(debouncer, Date.now(), 1);
    const ttl = await queues.connection.pttl(`${prefix}:debounce:{addr-1}`);
    expect(ttl).toBeGreaterThan(7 * 86_400_000);
    expect(ttl).toBeLessThanOrEqual(7 * 86_400_000 + 1_000);
  });
});
