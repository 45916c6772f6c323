import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * Idempotency keys through the real API (auth on) on FerretDB and a private redis-server: a key
 * is its producer's, so two producers using one key get two cases and never learn of each
 * other's; strings that would collapse into one stored key are refused; a case stored before
 * keys had scopes is still found by its producer after the upgrade.
 */

let servers: TestServers;
const apis: TestApi[] = [];
const AUTH = { AUTH_ENABLED: 'true', API_RATE_LIMIT_PER_MINUTE: '0' };
const workflow = { name: 'w', steps: [{ id: 'a', task: 'demo.echo' }] };

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await Promise.all(apis.map((api) => api.close()));
  await servers?.stop();
});

async function api(namespace = servers.namespace()): Promise<TestApi> {
  const started = await startApi({ ...servers, namespace: () => namespace }, AUTH);
  apis.push(started);
  return started;
}

const as = (key: string) => ({ authorization: `Bearer ${key}` });

describe('keys of different producers', () => {
  it('make a case each, and a conflict never names the other producer’s case', async () => {
    const fleet = await api();
    await fleet.engine.workflows.apply(workflow);
    const a = (await fleet.keys.create({ name: 'producer a', roles: ['producer'] })).key;
    const b = (await fleet.keys.create({ name: 'producer b', roles: ['producer'] })).key;
    const start = (key: string, payload: unknown) => fleet.call('POST', '/v1/cases', { payload, headers: as(key) });

    const first = await start(a, { workflow: 'w', input: { n: 1 }, idempotencyKey: 'order-1' });
    expect(first.status).toBe(201);
    const same = await start(b, { workflow: 'w', input: { n: 1 }, idempotencyKey: 'order-1' });
    expect(same.status).toBe(201);
    expect(same.body.id).not.toBe(first.body.id);
    const other = await start(b, { workflow: 'w', input: { n: 2 }, idempotencyKey: 'order-1-b' });
    await start(a, { workflow: 'w', input: { n: 3 }, idempotencyKey: 'order-1-b' }).then((answer) => expect(answer.status).toBe(201));
    const conflict = await start(b, { workflow: 'w', input: { n: 4 }, idempotencyKey: 'order-1' });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.details.caseId).toBe(same.body.id);
    expect(JSON.stringify(conflict.body)).not.toContain(first.body.id);

    // Each producer's replay finds its own case.
    expect([(await start(a, { workflow: 'w', input: { n: 1 }, idempotencyKey: 'order-1' })).body.id]).toEqual([first.body.id]);
    expect((await start(b, { workflow: 'w', input: { n: 2 }, idempotencyKey: 'order-1-b' })).body.id).toBe(other.body.id);
    // The owner sees its key on its case.
    expect((await fleet.call('GET', `/v1/cases/${same.body.id}`, { headers: as(b) })).body.idempotencyKey).toBe('order-1');
  });
});

describe('strings that would collapse into one stored key', () => {
  it('are refused with INPUT_INVALID and their path', async () => {
    const fleet = await api();
    await fleet.engine.workflows.apply(workflow);
    const key = (await fleet.keys.create({ name: 'producer', roles: ['producer'] })).key;
    const post = (json: string) => fleet.call('POST', '/v1/cases', { payload: json, headers: { ...as(key), 'content-type': 'application/json' } });
    for (const [json, path] of [
      ['{"workflow":"w","idempotencyKey":"k-\\ud800"}', 'idempotencyKey'],
      ['{"workflow":"w","idempotencyKey":"\\udfffk"}', 'idempotencyKey'],
      ['{"workflow":"w","businessKeys":{"orderId":"A-\\ud83d"}}', 'businessKeys.orderId'],
    ] as const) {
      const answer = await post(json);
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('INPUT_INVALID');
      expect(answer.body.error.details.issues).toEqual([{ path, message: expect.stringContaining('UTF-16') }]);
    }
    // A well-formed pair (an emoji) is a string like any other.
    expect((await post('{"workflow":"w","idempotencyKey":"k-\\ud83d\\ude00"}')).status).toBe(201);
  });

  it('bounds X-Request-Id: a long or unsafe one is replaced by a generated id, a sane one is kept', async () => {
    const fleet = await api();
    await fleet.engine.workflows.apply(workflow);
    const key = (await fleet.keys.create({ name: 'producer', roles: ['producer'] })).key;
    const start = (requestId: string) => fleet.call('POST', '/v1/cases', { payload: { workflow: 'w' }, headers: { ...as(key), 'x-request-id': requestId } });
    for (const given of ['x'.repeat(8 * 1024), 'has spaces and "quotes"', 'x'.repeat(129)]) {
      const answer = await start(given);
      expect(answer.status).toBe(201);
      expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect((await fleet.engine.store.getCase(answer.body.id))?.requestId).toBe(answer.headers['x-request-id']);
    }
    const sane = await start('req-2024.06:17/abc_DEF');
    expect(sane.headers['x-request-id']).toBe('req-2024.06:17/abc_DEF');
    expect((await fleet.engine.store.getCase(sane.body.id))?.requestId).toBe('req-2024.06:17/abc_DEF');
  });
});

describe('cases stored before keys had scopes', () => {
  it('are found by their producer after the upgrade, by nobody else', async () => {
    const namespace = servers.namespace();
    const before = await api(namespace);
    await before.engine.workflows.apply(workflow);
    const a = (await before.keys.create({ name: 'producer a', roles: ['producer'] })).key;
    const b = (await before.keys.create({ name: 'producer b', roles: ['producer'] })).key;
    const old = await before.call('POST', '/v1/cases', { payload: { workflow: 'w', input: { n: 1 }, idempotencyKey: 'legacy-1' }, headers: as(a) });
    const { record: intake } = await before.engine.cases.start({ workflow: 'w', input: { n: 2 } }, { fallbackIdempotencyKey: 'intake:7', startedBy: 'intake', requestId: 'intake:7' });
    await before.close();
    apis.splice(apis.indexOf(before), 1);

    // The database as the previous version left it: raw keys under one unique index, no scopes.
    const client = await MongoClient.connect(namespace.mongoUrl);
    try {
      const db = client.db();
      await db.collection('cases').updateMany({}, { $unset: { scopedIdempotencyKey: '' } });
      await db.collection('migrations').deleteMany({});
      await db.collection('cases').createIndex({ idempotencyKey: 1 }, { unique: true, sparse: true, name: 'idempotency_key' });
    } finally {
      await client.close();
    }

    const after = await api(namespace);
    const start = (key: string) => after.call('POST', '/v1/cases', { payload: { workflow: 'w', input: { n: 1 }, idempotencyKey: 'legacy-1' }, headers: as(key) });
    const replay = await start(a);
    expect([replay.status, replay.body.id]).toEqual([200, old.body.id]);
    const stranger = await start(b);
    expect(stranger.status).toBe(201);
    expect(stranger.body.id).not.toBe(old.body.id);
    // An intake producer sending what used to be a derived key gets a case of its own.
    const claimed = await after.engine.cases.start({ workflow: 'w', input: { n: 2 }, idempotencyKey: 'intake:7' }, { startedBy: 'intake' });
    expect(claimed.created).toBe(true);
    expect(claimed.record.id).not.toBe(intake.id);
    const indexes = await MongoClient.connect(namespace.mongoUrl).then(async (again) => {
      try {
        return (await again.db().collection('cases').indexes()).map((index) => index.name);
      } finally {
        await again.close();
      }
    });
    expect(indexes).toContain('scoped_idempotency_key');
    expect(indexes).not.toContain('idempotency_key');
  });
});

describe('the upgrade when the fleet starts together', () => {
  it('lets every process open a new database at once (the ones that lose the race find it done)', async () => {
    const { MongoStore } = await import('../../lib/adapters/mongo/store.js');
    for (let round = 0; round < 3; round++) {
      const { mongoUrl } = servers.namespace();
      const stores = Array.from({ length: 4 }, () => new MongoStore({ url: mongoUrl }));
      const opened = await Promise.allSettled(stores.map((store) => store.init()));
      await Promise.all(stores.map((store) => store.close()));
      expect(opened.filter((result) => result.status === 'rejected')).toEqual([]);
    }
  });
});
