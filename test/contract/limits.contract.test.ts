import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryLimits } from '../../lib/adapters/memory/limits.js';
import { redisConnection, masterConnections, type RedisClient } from '../../lib/adapters/redis/connection.js';
import { RedisLimits } from '../../lib/adapters/redis/limits.js';
import type { ConcurrencyGate, GatedUnit, RateLimiter } from '../../lib/ports/limits.js';
import { startTestRedis, type TestRedis } from '../helpers/servers.js';

/**
 * The limits port's contract (lib/ports/limits.ts), run against every adapter: the Redis scripts
 * on a private redis-server (or cluster, under `npm run test:cluster`) and the in-memory gate.
 * Times are passed in, so leases and windows are tested without waiting.
 */

let redis: TestRedis;
let connection: RedisClient;

beforeAll(async () => {
  redis = await startTestRedis(mkdtempSync(join(tmpdir(), 'workfleet-limits-')));
  connection = redisConnection(redis.url, { maxRetriesPerRequest: 3 });
});

afterAll(async () => {
  connection?.disconnect();
  await redis?.stop();
});

type Limits = ConcurrencyGate & RateLimiter;

const adapters: Array<[string, () => { limits: Limits; prefix: string }]> = [
  ['memory', () => ({ limits: new MemoryLimits(60_000), prefix: '' })],
  [
    'redis',
    () => {
      const prefix = `wft-${randomBytes(4).toString('hex')}`;
      return { limits: new RedisLimits(connection, { prefix, admitLeaseMs: 60_000 }), prefix };
    },
  ],
];

const unit = (jobId: string, key = 'acme', extra: Partial<GatedUnit> = {}): GatedUnit => ({ group: 'crm', key, limit: 2, jobId, queue: 'default', priority: 0, payload: `{"job":"${jobId}"}`, ...extra });

describe.each(adapters)('the limits port on %s', (name, make) => {
  it('admits up to the limit per key and lines up the rest; a release admits the head with its payload', async () => {
    const { limits } = make();
    const { answers } = await limits.offer([unit('a'), unit('b'), unit('c'), unit('d'), unit('x', 'globex')], 1_000);
    expect(answers).toEqual([
      { jobId: 'a', admitted: true, rank: 1 },
      { jobId: 'b', admitted: true, rank: 2 },
      { jobId: 'c', admitted: false, ahead: 0 },
      { jobId: 'd', admitted: false, ahead: 1 },
      { jobId: 'x', admitted: true, rank: 1 },
    ]);
    const admitted = await limits.release([{ group: 'crm', jobId: 'a' }], 2_000);
    expect(admitted).toEqual([{ group: 'crm', key: 'acme', jobId: 'c', queue: 'default', payload: '{"job":"c"}', rank: 2 }]);
    expect(await limits.position({ group: 'crm', jobId: 'd' })).toEqual({ state: 'waiting', group: 'crm', key: 'acme', ahead: 0, inUse: 2, limit: 2 });
    expect(await limits.position({ group: 'crm', jobId: 'c' })).toEqual({ state: 'holding', group: 'crm', key: 'acme', inUse: 2, limit: 2 });
    expect(await limits.position({ group: 'crm', jobId: 'a' })).toEqual({ state: 'none' });
  });

  it('is idempotent by job id: a holder is admitted again, a waiting unit keeps its place', async () => {
    const { limits } = make();
    await limits.offer([unit('a'), unit('b'), unit('c')], 1_000);
    const again = await limits.offer([unit('c'), unit('a')], 1_500);
    expect(again.answers).toEqual([
      { jobId: 'c', admitted: false, ahead: 0 },
      { jobId: 'a', admitted: true, rank: 2 },
    ]);
    expect((await limits.stats(5)).groups).toEqual([{ group: 'crm', inUse: 2, waiting: 1 }]);
  });

  it('orders a line by priority, aged: a level is worth a second of waiting', async () => {
    const { limits } = make();
    await limits.offer([unit('busy1', 'k', { limit: 1 })], 0);
    await limits.offer([unit('old-low', 'k', { limit: 1 })], 1_000);
    // Priority 3, 2 s later: ahead of the unit that has waited only 2 s.
    await limits.offer([unit('new-high', 'k', { limit: 1, priority: 3 })], 3_000);
    // Priority 1, 5 s later: behind it (5 s of waiting beats 1 level).
    await limits.offer([unit('late-mid', 'k', { limit: 1, priority: 1 })], 6_000);
    const order: string[] = [];
    let holder = 'busy1';
    for (let step = 0; step < 3; step++) {
      const [next] = await limits.release([{ group: 'crm', jobId: holder }], 7_000 + step);
      if (!next) throw new Error('nothing admitted');
      order.push(next.jobId);
      holder = next.jobId;
    }
    expect(order).toEqual(['new-high', 'old-low', 'late-mid']);
  });

  it('keeps the units of one offer in the order given (the items of a forEach), not in job-id text order', async () => {
    const { limits } = make();
    const units = Array.from({ length: 12 }, (_, index) => unit(`c.each.i${index}`, 'k', { limit: 1 }));
    await limits.offer(units, 1_000);
    const order: string[] = [];
    let holder = 'c.each.i0';
    for (let step = 0; step < 11; step++) {
      const [next] = await limits.release([{ group: 'crm', jobId: holder }], 2_000 + step);
      if (!next) throw new Error('nothing admitted');
      order.push(next.jobId);
      holder = next.jobId;
    }
    expect(order).toEqual(units.slice(1).map((entry) => entry.jobId));
  });

  it('lets a worker claim: the holder renews, a free slot is taken, else the job is parked at the head and promoted when admitted', async () => {
    const { limits } = make();
    await limits.offer([unit('a'), unit('b'), unit('c')], 1_000);
    expect((await limits.claim(unit('a'), 1_100, 30_000)).answer).toEqual({ run: true });
    // A job the gate lost track of (its admission lease lapsed) comes back through a worker: no slot, parked first in line.
    expect((await limits.claim(unit('late'), 1_200, 30_000)).answer).toEqual({ run: false, ahead: 0 });
    const admitted = await limits.release([{ group: 'crm', jobId: 'a' }], 1_300);
    expect(admitted).toEqual([{ group: 'crm', key: 'acme', jobId: 'late', queue: 'default', rank: 2 }]);
    expect((await limits.claim(unit('late'), 1_400, 30_000)).answer).toEqual({ run: true });
  });

  it('frees the slot of a lease that ran out (a dead worker) and admits the next', async () => {
    const { limits } = make();
    await limits.offer([unit('a', 'k', { limit: 1 }), unit('b', 'k', { limit: 1 })], 1_000);
    await limits.claim(unit('a', 'k', { limit: 1 }), 1_000, 5_000);
    await limits.renew([{ group: 'crm', jobId: 'a' }], 10_000);
    expect(await limits.sweep(9_000)).toEqual([]);
    const admitted = await limits.sweep(10_001);
    expect(admitted.map((entry) => entry.jobId)).toEqual(['b']);
    expect(admitted[0]?.payload).toBe('{"job":"b"}');
  });

  it('withdraws waiting units and leaves nothing behind once every unit is gone', async () => {
    const { limits, prefix } = make();
    await limits.offer([unit('a'), unit('b'), unit('c')], 1_000);
    expect(await limits.release([{ group: 'crm', jobId: 'c' }], 1_100)).toEqual([]);
    expect(
      await limits.release(
        [
          { group: 'crm', jobId: 'a' },
          { group: 'crm', jobId: 'b' },
        ],
        1_200,
      ),
    ).toEqual([]);
    expect(await limits.stats(5)).toEqual(name === 'memory' ? { groups: [], topKeys: [] } : { groups: [{ group: 'crm', inUse: 0, waiting: 0 }], topKeys: [] });
    if (prefix) {
      const left: string[] = [];
      for (const node of masterConnections(connection)) left.push(...(await node.keys(`${prefix}:*`)));
      // The group's totals and the list of groups stay; nothing per key or per unit does.
      expect(left.sort()).toEqual([`${prefix}:limits:groups`, `${prefix}:limits:{crm}:count`]);
    }
  });

  it('admits none of the units it releases together (a cancelled case gives back its slots and places at once)', async () => {
    const { limits } = make();
    // a and b hold the key's two slots; c and d wait behind them (one case), e after them (another case).
    await limits.offer([unit('a'), unit('b'), unit('c'), unit('d')], 1_000);
    await limits.offer([unit('e')], 1_001);
    const admitted = await limits.release(
      ['a', 'b', 'c', 'd'].map((jobId) => ({ group: 'crm', jobId })),
      1_100,
    );
    // Only e: a slot given to c or d would put a job of the cancelled case back in its queue.
    expect(admitted).toEqual([{ group: 'crm', key: 'acme', jobId: 'e', queue: 'default', payload: '{"job":"e"}', rank: 1 }]);
    expect((await limits.stats(5)).groups).toEqual([{ group: 'crm', inUse: 1, waiting: 0 }]);
  });

  it('names the busiest keys in its stats, and stores a long key as a digest', async () => {
    const { limits } = make();
    const long = 'k'.repeat(300);
    await limits.offer([unit('a', 'acme', { limit: 1 }), unit('b', 'acme', { limit: 1 }), unit('c', 'acme', { limit: 1 }), unit('d', long)], 1_000);
    const stats = await limits.stats(1);
    expect(stats.groups).toEqual([{ group: 'crm', inUse: 2, waiting: 2 }]);
    expect(stats.topKeys).toEqual([{ group: 'crm', key: 'acme', inUse: 1, waiting: 2, limit: 1 }]);
    const position = await limits.position({ group: 'crm', jobId: 'd' });
    if (name === 'redis') expect(position).toMatchObject({ state: 'holding', key: expect.stringMatching(/^#[0-9a-f]{32}$/) });
  });

  it('lists the holders of a key, longest held first, and of a whole group by lease', async () => {
    const { limits } = make();
    await limits.offer([unit('a', 'k1', { limit: 2 }), unit('b', 'k2', { limit: 2 })], 1_000);
    await limits.offer([unit('c', 'k1', { limit: 2 }), unit('d', 'k1', { limit: 2 })], 2_000);
    expect(await limits.holders('crm', 'k1')).toEqual(['a', 'c']);
    expect(await limits.holders('crm', 'none')).toEqual([]);
    expect(await limits.heldIn('crm', 2)).toEqual(['a', 'b']);
    expect((await limits.heldIn('crm', 10)).sort()).toEqual(['a', 'b', 'c']);
    // Paged: from an offset on, so that a pass can go on where the last one stopped.
    expect(await limits.heldIn('crm', 2, 2)).toHaveLength(1);
    expect(await limits.heldIn('crm', 2, 3)).toEqual([]);
    expect([...(await limits.heldIn('crm', 2)), ...(await limits.heldIn('crm', 2, 2))].sort()).toEqual(['a', 'b', 'c']);
  });

  it('takes the limit of the latest offer before filling: a raised limit admits the head of the line at once', async () => {
    const { limits } = make();
    await limits.offer([unit('a', 'k', { limit: 1 }), unit('b', 'k', { limit: 1 })], 1_000);
    const { answers, admitted } = await limits.offer([unit('c', 'k', { limit: 3 })], 2_000);
    expect(admitted.map((admission) => admission.jobId)).toEqual(['b']);
    expect(answers).toEqual([{ jobId: 'c', admitted: true, rank: 3 }]);
  });

  it('withdraws units from their lines at once, keeping the slots of those that hold one', async () => {
    const { limits } = make();
    await limits.offer([unit('a', 'k', { limit: 1 }), unit('b', 'k', { limit: 1 }), unit('c', 'k', { limit: 1 })], 1_000);
    await limits.withdraw([
      { group: 'crm', jobId: 'a' },
      { group: 'crm', jobId: 'b' },
      { group: 'crm', jobId: 'unknown' },
    ]);
    expect(await limits.position({ group: 'crm', jobId: 'a' })).toMatchObject({ state: 'holding' });
    expect(await limits.position({ group: 'crm', jobId: 'b' })).toEqual({ state: 'none' });
    expect(await limits.position({ group: 'crm', jobId: 'c' })).toMatchObject({ state: 'waiting', ahead: 0 });
    expect((await limits.stats(10)).groups).toEqual([{ group: 'crm', inUse: 1, waiting: 1 }]);
    // Released, a's slot goes to c, never to the withdrawn b.
    expect((await limits.release([{ group: 'crm', jobId: 'a' }], 2_000)).map((admission) => admission.jobId)).toEqual(['c']);
  });

  it('reserves starts so that no window of `per` holds more than `max`, the same member keeping its time', async () => {
    const { limits } = make();
    const request = (member: string) => ({ group: 'partner', key: 'p1', max: 3, perMs: 1_000, member });
    const times: number[] = [];
    for (let n = 0; n < 7; n++) times.push(await limits.reserve(request(`m${n}`), 10_000));
    expect(times).toEqual([10_000, 10_000, 10_000, 11_000, 11_000, 11_000, 12_000]);
    expect(await limits.reserve(request('m4'), 10_500)).toBe(11_000);
    // Another key has its own window.
    expect(await limits.reserve({ ...request('z'), key: 'p2' }, 10_000)).toBe(10_000);
    // Later, the old reservations have left the window.
    expect(await limits.reserve(request('m7'), 20_000)).toBe(20_000);
  });

  it('holds the limit on starts, not only reservations: a unit back late and the next one on time never share a window past max', async () => {
    const { limits } = make();
    const at = (member: string, now: number) => limits.reserve({ group: 'partner', key: 'p', max: 2, perMs: 1_000, member }, now);
    expect([await at('m0', 10_000), await at('m1', 10_000), await at('m2', 10_000), await at('m3', 10_000)]).toEqual([10_000, 10_000, 11_000, 11_000]);
    expect([await at('m4', 10_500), await at('m5', 10_500)]).toEqual([12_000, 12_000]);
    expect(await at('m3', 11_000)).toBe(11_000);
    // m2 comes back half a second late (a busy worker); it starts then.
    expect(await at('m2', 11_500)).toBe(11_500);
    expect(await at('m4', 12_000)).toBe(12_000);
    // Reserved for 12 000 too, m5 would make three starts in (11 000, 12 000]: it waits for m2's to leave.
    expect(await at('m5', 12_000)).toBe(12_500);
    expect(await at('m5', 12_200)).toBe(12_500);
    expect(await at('m5', 12_500)).toBe(12_500);
    // A unit delivered again after it started is let go at once and not counted twice.
    expect(await at('m4', 12_600)).toBe(12_000);
    expect(await at('m6', 13_100)).toBe(13_100);
  });

  it('lists the groups with live windows and their busiest keys: starts used in the window, starts deferred, the limit', async () => {
    const { limits } = make();
    const reserve = (group: string, key: string, members: number, now: number, max = 2) =>
      Promise.all(Array.from({ length: members }, (_, n) => limits.reserve({ group, key, max, perMs: 1_000, member: `${key}-${n}-${now}` }, now)));
    expect(await limits.rateStats(10, 0)).toEqual({ groups: [], topKeys: [] });
    await reserve('partner', 'busy', 5, 10_000); // 2 now, 2 at 11 000, 1 at 12 000
    await reserve('partner', 'calm', 1, 10_000);
    await reserve('search', 'idx', 1, 10_000, 100);
    const stats = await limits.rateStats(1, 10_500);
    expect(stats.groups).toEqual([
      { group: 'partner', keys: 2, deferred: 3 },
      { group: 'search', keys: 1, deferred: 0 },
    ]);
    expect(stats.topKeys).toEqual([
      { group: 'partner', key: 'busy', max: 2, perMs: 1_000, used: 2, deferred: 3 },
      { group: 'search', key: 'idx', max: 100, perMs: 1_000, used: 1, deferred: 0 },
    ]);
    // The deferred come back at their time and start: they count as used; keys gone quiet leave the list.
    for (const member of ['busy-2-10000', 'busy-3-10000']) expect(await limits.reserve({ group: 'partner', key: 'busy', max: 2, perMs: 1_000, member }, 11_000)).toBe(11_000);
    const later = await limits.rateStats(10, 11_500);
    expect(later.groups).toEqual([{ group: 'partner', keys: 1, deferred: 1 }]);
    expect(later.topKeys).toEqual([{ group: 'partner', key: 'busy', max: 2, perMs: 1_000, used: 2, deferred: 1 }]);
    expect(await limits.rateStats(10, 13_001)).toEqual({ groups: [], topKeys: [] });
  });
});
