import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyStore } from '../../lib/ports/store.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * A flood of keys that do not authenticate, through the real API (auth on) on real Redis and
 * FerretDB: it is refused by address before authentication once its budget of failures is
 * spent, and an unknown key id costs one store lookup however often it is presented.
 */

let servers: TestServers;
const started: TestApi[] = [];

/** The real store, with its key lookups counted by id. */
function counting(lookups: string[]): (store: KeyStore) => KeyStore {
  return (store) => ({
    insertKey: (key) => store.insertKey(key),
    listKeys: () => store.listKeys(),
    revokeKey: (id, at) => store.revokeKey(id, at),
    getKey: (id) => {
      lookups.push(id);
      return store.getKey(id);
    },
  });
}

async function api(env: Record<string, string>, options: Parameters<typeof startApi>[2] = {}): Promise<TestApi> {
  const instance = await startApi(servers, { AUTH_ENABLED: 'true', API_RATE_LIMIT_PER_MINUTE: '0', ...env }, options);
  started.push(instance);
  return instance;
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** A well-formed key nobody made: `wfk_<12>_<43>`, so that it reaches the store lookup. */
function randomKey(): string {
  const id = Array.from(randomBytes(12), (byte) => ALPHANUMERIC[byte % ALPHANUMERIC.length]).join('');
  return `wfk_${id}_${randomBytes(32).toString('base64url')}`;
}

async function get(instance: TestApi, key: string | undefined, remoteAddress: string, headers: Record<string, string> = {}, url = '/v1/workflows') {
  const response = await instance.app.inject({
    method: 'GET',
    url,
    remoteAddress,
    headers: { ...headers, ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
  });
  return { status: response.statusCode, headers: response.headers, body: response.body };
}

/** Sends `keys` with `concurrency` requests in flight at a time; the statuses in order. */
async function flood(instance: TestApi, keys: readonly string[], remoteAddress: string, concurrency: number): Promise<Array<Awaited<ReturnType<typeof get>>>> {
  const answers: Array<Awaited<ReturnType<typeof get>>> = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < keys.length) {
        const key = keys[next++];
        answers.push(await get(instance, key, remoteAddress));
      }
    }),
  );
  return answers;
}

const tally = (answers: ReadonlyArray<{ status: number }>) => {
  const out: Record<number, number> = {};
  for (const { status } of answers) out[status] = (out[status] ?? 0) + 1;
  return out;
};

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  for (const instance of started) await instance.close();
  await servers?.stop();
});

describe('failed authentication, limited by address before authentication', () => {
  it('answers a flood of 3,000 random keys with 401 up to the budget, then 429, and looks up no more keys', async () => {
    const lookups: string[] = [];
    const instance = await api({ API_AUTH_FAILURES_PER_MINUTE: '30' }, { keyStore: counting(lookups) });
    const concurrency = 20;
    const startedAt = Date.now();
    const answers = await flood(instance, Array.from({ length: 3_000 }, randomKey), '203.0.113.7', concurrency);
    const elapsedMs = Date.now() - startedAt;
    const counts = tally(answers);
    console.log(`3,000 random keys in ${elapsedMs} ms: ${JSON.stringify(counts)}, ${lookups.length} store lookups`);
    // Exactly the budget is answered 401 (the shared counter decides); everything after it 429.
    expect(counts).toEqual({ 401: 30, 429: 2_970 });
    // Lookups: the budget, plus at most the requests already in flight when it ran out.
    expect(lookups.length).toBeLessThan(30 + concurrency);
    const refused = answers.find((answer) => answer.status === 429);
    expect(JSON.parse(refused?.body ?? '{}')).toEqual({ error: { code: 'RATE_LIMITED', message: expect.stringContaining('failed authentication') } });
    expect(Number(refused?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused?.headers['retry-after'])).toBeLessThanOrEqual(60);

    // The address is refused before authentication, valid key or not, without another lookup;
    // another address is not; health checks never are.
    const { key } = await instance.keys.create({ name: 'good', roles: ['viewer'] });
    const before = lookups.length;
    expect((await get(instance, key, '203.0.113.7')).status).toBe(429);
    expect(lookups.length).toBe(before);
    expect((await get(instance, key, '203.0.113.8')).status).toBe(200);
    expect((await get(instance, randomKey(), '203.0.113.8')).status).toBe(401);
    expect((await get(instance, undefined, '203.0.113.7', {}, '/health')).status).toBe(200);
  });

  it('does not spend the budget on requests that authenticate, and counts a missing key as a failure', async () => {
    const instance = await api({ API_AUTH_FAILURES_PER_MINUTE: '3' });
    const { key } = await instance.keys.create({ name: 'good', roles: ['viewer'] });
    for (let i = 0; i < 20; i++) expect((await get(instance, key, '198.51.100.20')).status).toBe(200);
    const statuses = [];
    for (const presented of [undefined, 'not-a-key', randomKey(), randomKey()]) statuses.push((await get(instance, presented, '198.51.100.20')).status);
    expect(statuses).toEqual([401, 401, 401, 429]);
  });

  it('shares the count between replicas through Redis', async () => {
    const lookupsA: string[] = [];
    const lookupsB: string[] = [];
    const a = await api({ API_AUTH_FAILURES_PER_MINUTE: '10' }, { keyStore: counting(lookupsA) });
    const b = await api({ API_AUTH_FAILURES_PER_MINUTE: '10' }, { namespace: { mongoUrl: a.mongoUrl, prefix: a.prefix }, keyStore: counting(lookupsB) });
    const first = await flood(a, Array.from({ length: 10 }, randomKey), '192.0.2.50', 1);
    expect(tally(first)).toEqual({ 401: 10 });
    // Replica b has never seen this address fail: it learns of the spent budget at its first failure.
    const second = await flood(b, Array.from({ length: 50 }, randomKey), '192.0.2.50', 1);
    expect(tally(second)).toEqual({ 429: 50 });
    expect(lookupsB.length).toBeLessThanOrEqual(1);
  });

  it('takes the address from X-Forwarded-For only from a configured proxy', async () => {
    const direct = await api({ API_AUTH_FAILURES_PER_MINUTE: '2' });
    // Without API_TRUST_PROXY a forged header does not make a new client.
    const forged = [];
    for (let i = 0; i < 4; i++) forged.push((await get(direct, randomKey(), '10.0.0.1', { 'x-forwarded-for': `198.51.100.${i}` })).status);
    expect(forged).toEqual([401, 401, 429, 429]);

    const proxied = await api({ API_AUTH_FAILURES_PER_MINUTE: '2', API_TRUST_PROXY: '10.0.0.1' });
    const client = (n: number) => ({ 'x-forwarded-for': `198.51.100.${n}` });
    const one = [];
    for (let i = 0; i < 3; i++) one.push((await get(proxied, randomKey(), '10.0.0.1', client(1))).status);
    expect(one).toEqual([401, 401, 429]);
    // Another client behind the same proxy has its own budget.
    expect((await get(proxied, randomKey(), '10.0.0.1', client(2))).status).toBe(401);
    // A sender that is not the proxy is counted by its own address, whatever it claims.
    const untrusted = [];
    for (let i = 0; i < 3; i++) untrusted.push((await get(proxied, randomKey(), '10.0.0.9', client(3 + i))).status);
    expect(untrusted).toEqual([401, 401, 429]);
  });
});

describe('unknown key ids', () => {
  it('cost one store lookup however often and however concurrently they are presented', async () => {
    const lookups: string[] = [];
    const instance = await api({ API_AUTH_FAILURES_PER_MINUTE: '0' }, { keyStore: counting(lookups) });
    const unknown = randomKey();
    const concurrent = await Promise.all(Array.from({ length: 50 }, (_, i) => get(instance, unknown, `192.0.2.${i}`)));
    const sequential = [];
    for (let i = 0; i < 50; i++) sequential.push(await get(instance, unknown, `192.0.2.${100 + i}`));
    expect(tally([...concurrent, ...sequential])).toEqual({ 401: 100 });
    const id = unknown.split('_')[1];
    expect(lookups.filter((looked) => looked === id)).toEqual([id]);
  });
});
