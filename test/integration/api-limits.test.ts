import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepLimitsView } from '../../lib/client/index.js';
import { MAX_PLACE_LOOKUPS } from '../../lib/core/limit-waits.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * Where keyed units stand, over HTTP on the real gate (Redis) and store: a case queued behind a
 * busy key says how many are ahead of it, a forEach of many keyed items costs a bounded number of
 * lookups to read, and /v1/status shows each key group with its busiest keys. No worker runs:
 * the first unit of a key is admitted and stays in its queue, holding the key's one slot.
 */

let servers: TestServers;
let api: TestApi;
let redis: Redis;

const start = async (workflow: string, input: Record<string, unknown>) => {
  const { status, body } = await api.call('POST', '/v1/cases', { payload: { workflow, input } });
  expect(status).toBe(201);
  return body.id as string;
};

/** Script calls Redis has run so far: each place in line looked up is one. */
async function scriptCalls(): Promise<number> {
  const info = await redis.info('commandstats');
  return [...info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
}

beforeAll(async () => {
  servers = await startServers();
  redis = new Redis(servers.redis.url);
  // Without the API's rate limiter, whose counting is a script too.
  api = await startApi(servers, { API_RATE_LIMIT_PER_MINUTE: '0' });
  await api.engine.workflows.apply({
    name: 'per-customer',
    steps: [{ id: 'call', task: 'demo.hold', queue: 'nobody', input: { ms: 10 }, concurrency: { key: '${input.customer}', limit: 1, group: 'customers' } }],
  });
  await api.engine.workflows.apply({
    name: 'per-customer-items',
    steps: [
      {
        id: 'each',
        task: 'demo.hold',
        queue: 'nobody',
        forEach: { items: '${input.items}', concurrency: 1000 },
        input: { ms: 10 },
        concurrency: { key: '${input.customer}', limit: 2, group: 'bulk' },
      },
    ],
  });
});

afterAll(async () => {
  await api?.close();
  redis?.disconnect();
  await servers?.stop();
});

describe('a case waiting behind a busy key', () => {
  it('says the first holds the slot, the second waits with 0 ahead, the third with 1 ahead', async () => {
    const [first, second, third] = [await start('per-customer', { customer: 'acme' }), await start('per-customer', { customer: 'acme' }), await start('per-customer', { customer: 'acme' })];
    const other = await start('per-customer', { customer: 'globex' });
    const limitsOf = async (id: string | undefined): Promise<StepLimitsView> => {
      const { status, body } = await api.call('GET', `/v1/cases/${id}`);
      expect(status).toBe(200);
      return body.steps.call.limits as StepLimitsView;
    };
    expect(await limitsOf(first)).toEqual({ queued: 1, rateLimited: 0, checked: 1, waitingForSlot: 0, holdingSlot: 1, waits: [] });
    expect(await limitsOf(second)).toEqual({
      queued: 1,
      rateLimited: 0,
      checked: 1,
      waitingForSlot: 1,
      holdingSlot: 0,
      waits: [{ kind: 'concurrency', group: 'customers', key: 'acme', ahead: 0, inUse: 1, limit: 1 }],
    });
    expect((await limitsOf(third)).waits).toEqual([{ kind: 'concurrency', group: 'customers', key: 'acme', ahead: 1, inUse: 1, limit: 1 }]);
    expect(await limitsOf(other)).toMatchObject({ holdingSlot: 1, waits: [] });

    // Cancelled, the second gives up its place: the third is next.
    expect((await api.call('POST', `/v1/cases/${second}/cancel`, { payload: {} })).status).toBe(200);
    expect((await limitsOf(third)).waits).toEqual([expect.objectContaining({ key: 'acme', ahead: 0 })]);
    const cancelled = await api.call('GET', `/v1/cases/${second}`);
    expect(cancelled.body.steps.call).not.toHaveProperty('limits');
  });

  it('reads a forEach of 300 keyed items with at most MAX_PLACE_LOOKUPS lookups, and counts the rest', async () => {
    const id = await start('per-customer-items', { customer: 'initech', items: Array.from({ length: 300 }, (_, i) => i) });
    const before = await scriptCalls();
    const { status, body } = await api.call('GET', `/v1/cases/${id}`);
    const calls = (await scriptCalls()) - before;
    expect(status).toBe(200);
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThanOrEqual(MAX_PLACE_LOOKUPS);
    const limits = body.steps.each.limits;
    expect(limits).toMatchObject({ queued: 300, rateLimited: 0, checked: MAX_PLACE_LOOKUPS, holdingSlot: 2, waitingForSlot: MAX_PLACE_LOOKUPS - 2 });
    // The first two items hold the key's two slots; the next are listed in item order, each at its own place in the line.
    const waits = limits.waits as Array<{ instance: number; ahead: number }>;
    expect(waits.map((wait) => wait.instance)).toEqual(Array.from({ length: MAX_PLACE_LOOKUPS - 2 }, (_, i) => i + 2));
    expect(new Set(waits.map((wait) => wait.ahead)).size).toBe(waits.length);
    expect(waits.every((wait) => wait.ahead >= 0 && wait.ahead < 298)).toBe(true);
  });
});

describe('GET /v1/status', () => {
  it('shows each key group with its slots in use, units waiting and busiest keys, never more than 10 of them', async () => {
    for (let i = 0; i < 12; i++) await start('per-customer', { customer: `many-${i}` });
    const { status, body } = await api.call('GET', '/v1/status');
    expect(status).toBe(200);
    type Group = { group: string; inUse: number; waiting: number; topKeys: Array<{ key: string; inUse: number; waiting: number; limit: number }> };
    const groups = Object.fromEntries((body.concurrency.groups as Group[]).map((group) => [group.group, group]));
    expect(groups.bulk).toEqual({ group: 'bulk', inUse: 2, waiting: 298, topKeys: [{ key: 'initech', inUse: 2, waiting: 298, limit: 2 }] });
    // acme: the first holds, the third waits (the second was cancelled); globex and 12 more keys hold one each.
    expect(groups.customers).toMatchObject({ group: 'customers', inUse: 14, waiting: 1 });
    expect(groups.customers?.topKeys).toHaveLength(10);
    expect(groups.customers?.topKeys[0]).toEqual({ key: 'acme', inUse: 1, waiting: 1, limit: 1 });
  });
});
