import { BSON, MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CaseNotCommittableError } from '../../lib/core/errors.js';
import type { CaseEvent, CaseState, TraceEvent } from '../../lib/core/state.js';
import { transition } from '../../lib/core/transition.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * A case that grows towards MongoDB's 16 MiB document limit, on the real store (FerretDB):
 * large forEach outputs and many large signals. Before the case budget, such a case jammed (its
 * commits failed for ever with a BSON RangeError, it stayed running, cancel answered 500) and
 * each buffered signal rewrote the whole buffer into history. Step reports are applied through
 * the engine's advancer, as the worker that finished the step applies them.
 */

let servers: TestServers;
let api: TestApi;
let client: MongoClient;

beforeAll(async () => {
  servers = await startServers();
  // The default budget (4 MiB); a signal body may be 512 KiB.
  api = await startApi(servers);
  client = new MongoClient(api.config.mongo.url);
  await client.connect();
});

afterAll(async () => {
  await client?.close();
  await api?.close();
  await servers?.stop();
});

const text = (bytes: number) => 'x'.repeat(bytes);

/** The history entries of a case as stored, revision by revision, and their BSON sizes. */
async function historySizes(caseId: string): Promise<number[]> {
  const entries = await client.db().collection('history').find({ caseId }).toArray();
  return entries.sort((a, b) => Number(a.revision) - Number(b.revision)).map((entry) => BSON.calculateObjectSize(entry));
}

async function documentSize(caseId: string): Promise<number> {
  const doc = await client
    .db()
    .collection('cases')
    .findOne({ _id: caseId as never });
  return doc ? BSON.calculateObjectSize(doc) : 0;
}

async function start(workflow: object, input: object = {}): Promise<string> {
  expect((await api.call('POST', '/v1/workflows', { payload: workflow })).status).toBeLessThan(300);
  const started = await api.call('POST', '/v1/cases', { payload: { workflow: (workflow as { name: string }).name, input } });
  expect(started.status).toBe(201);
  return started.body.id as string;
}

const itemDone = (index: number, output: unknown): CaseEvent => {
  const at = Date.now();
  return { type: 'stepCompleted', stepId: 'each', instance: index, attempt: 1, at, startedAt: at - 5, output };
};

describe('signals', () => {
  it('a buffered signal adds its own payload to history, not the whole buffer again', async () => {
    const id = await start({
      name: 'buffered',
      steps: [
        { id: 'first', task: 'slow' },
        { id: 'wait', after: ['first'], waitFor: { signals: ['late'] } },
      ],
    });
    const before = (await historySizes(id)).length;
    for (let n = 0; n < 20; n++) expect((await api.call('POST', `/v1/cases/${id}/signals/late`, { payload: { n, blob: text(40_000) } })).status).toBe(200);
    const entries = (await historySizes(id)).slice(before);
    expect(entries).toHaveLength(20);
    // Linear: every entry carries one 40 KB payload (the 20th used to carry all twenty, 800 KB).
    for (const bytes of entries) expect(bytes).toBeGreaterThan(40_000);
    for (const bytes of entries) expect(bytes).toBeLessThan(42_000);
    const kept = await api.call('GET', `/v1/cases/${id}`);
    expect(kept.status).toBe(200);
    // Past the buffer's 1 MiB bound: refused with a code, nothing written.
    const statuses: number[] = [];
    let refusal: { code: string } | undefined;
    for (let n = 0; n < 10 && refusal === undefined; n++) {
      const answer = await api.call('POST', `/v1/cases/${id}/signals/late`, { payload: { blob: text(40_000) } });
      statuses.push(answer.status);
      if (answer.status !== 200) refusal = answer.body.error as { code: string };
    }
    expect(statuses.at(-1)).toBe(409);
    expect(refusal?.code).toBe('SIGNAL_BUFFER_FULL');
    // The case reads back whole, its kept signals in order: the appended entries fold into the document.
    const steps = await api.engine.store.getCase(id);
    expect(steps?.signals?.length).toBe(statuses.length - 1 + 20);
    expect((steps?.signals?.[0]?.payload as { n: number }).n).toBe(0);
    expect((steps?.signals?.[19]?.payload as { n: number }).n).toBe(19);
  });

  it('refuses with 413 CASE_TOO_LARGE the signal that would take the case past its budget; the case goes on', { timeout: 120_000 }, async () => {
    // Twelve steps each take one 400 KB signal as its output: 4.8 MB in all, past the 4 MiB budget.
    const steps = Array.from({ length: 12 }, (_, n) => ({ id: `part${n}`, waitFor: { signals: ['part'] } }));
    const id = await start({ name: 'parts', steps });
    const statuses: number[] = [];
    let refusal: { code: string; message: string } | undefined;
    for (let n = 0; n < 12 && refusal === undefined; n++) {
      const answer = await api.call('POST', `/v1/cases/${id}/signals/part`, { payload: { blob: text(400_000) } });
      statuses.push(answer.status);
      if (answer.status !== 200) refusal = answer.body.error as { code: string; message: string };
    }
    expect(statuses.slice(0, -1).every((status) => status === 200)).toBe(true);
    expect(statuses.at(-1)).toBe(413);
    expect(refusal?.code).toBe('CASE_TOO_LARGE');
    expect(refusal?.message).toMatch(/past its budget of 4\.00 MiB/);
    // Each delivered signal's entry holds its payload once (in the step that took it).
    const entries = await historySizes(id);
    expect(Math.max(...entries)).toBeLessThan(410_000);
    expect(await documentSize(id)).toBeLessThan(4.5 * 1024 * 1024);
    const cancel = await api.call('POST', `/v1/cases/${id}/cancel`, { payload: {} });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('cancelled');
  });
});

describe('a forEach whose items return large outputs', () => {
  it('fails the item that would take the case past its budget (CASE_TOO_LARGE); failFast fails the case', { timeout: 120_000 }, async () => {
    const id = await start({ name: 'fan', steps: [{ id: 'each', task: 'big', forEach: { items: '${input.items}', concurrency: 100 } }] }, { items: Array.from({ length: 10 }, (_, n) => n) });
    const results = [];
    for (let index = 0; index < 10; index++) results.push(await api.engine.advancer.apply(id, itemDone(index, text(600_000))));
    // Six items of 600 KB fit in 4 MiB, the seventh does not; the rest come to a finished case.
    expect(results.slice(0, 7)).toEqual(Array(7).fill('applied'));
    expect(results.slice(7).every((result) => result === 'duplicate')).toBe(true);
    const got = await api.call('GET', `/v1/cases/${id}`);
    expect(got.status).toBe(200);
    expect(got.body.status).toBe('failed');
    expect(got.body.error).toMatchObject({ code: 'STEP_FAILED', stepId: 'each' });
    const trace = (await api.call('GET', `/v1/cases/${id}/trace`)).body.events as Array<{ type: string; data: { error?: { code: string; retryable?: boolean } } }>;
    expect(trace.find((event) => event.type === 'step.failed' && event.data.error?.code === 'CASE_TOO_LARGE')?.data.error?.retryable).toBe(false);
    expect(await documentSize(id)).toBeLessThan(4.5 * 1024 * 1024);
    expect(Math.max(...(await historySizes(id)))).toBeLessThan(1024 * 1024);
    const cancel = await api.call('POST', `/v1/cases/${id}/cancel`, { payload: {} });
    expect(cancel.status).toBe(409);
    expect(cancel.body.error.code).toBe('CASE_STATE_CONFLICT');
  });

  it('with collect, the items past the budget fail one by one, and a cancel in between ends the case', async () => {
    const id = await start(
      { name: 'fan-collect', steps: [{ id: 'each', task: 'big', forEach: { items: '${input.items}', concurrency: 100, failure: 'collect' } }] },
      { items: Array.from({ length: 20 }, (_, n) => n) },
    );
    for (let index = 0; index < 10; index++) expect(await api.engine.advancer.apply(id, itemDone(index, text(600_000)))).toBe('applied');
    const running = await api.engine.store.getCase(id);
    expect(running?.status).toBe('running');
    const failed = Object.values(running?.steps.each?.instances ?? {}).filter((unit) => unit.status === 'failed');
    expect(failed).toHaveLength(4);
    expect(failed.every((unit) => unit.error?.code === 'CASE_TOO_LARGE')).toBe(true);
    const cancel = await api.call('POST', `/v1/cases/${id}/cancel`, { payload: { reason: 'too big' } });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('cancelled');
    expect(await documentSize(id)).toBeLessThan(4.5 * 1024 * 1024);
  });
});

describe('a case whose next transition the store refuses', () => {
  const solo = {
    name: 'solo',
    steps: [
      { id: 'only', task: 'work' },
      { id: 'next', task: 'work', after: ['only'] },
    ],
  };
  const done = (output: unknown): CaseEvent => ({ type: 'stepCompleted', stepId: 'only', attempt: 1, at: Date.now(), startedAt: Date.now() - 5, output });

  it('refuses an entry over the document limit alone, with a code; the other commits of its batch go in', async () => {
    const [a, b] = [await start(solo), await start(solo)];
    const { store, workflows } = api.engine;
    const [first, second] = [(await store.getCase(a)) as CaseState, (await store.getCase(b)) as CaseState];
    const workflow = await workflows.compiled('solo', 1);
    // Past any budget (as a case from before budgets, or one whose budget was set too high, could be).
    const big = transition(workflow, first, [done(text(17 * 1024 * 1024))], Date.now(), { maxCaseBytes: 64 * 1024 * 1024 });
    const small = transition(workflow, second, [done('fine')], Date.now());
    const [refused, committed] = await Promise.allSettled([store.appendTransition(first, big.state, big.events), store.appendTransition(second, small.state, small.events)]);
    expect(refused.status).toBe('rejected');
    expect((refused as PromiseRejectedResult).reason).toMatchObject({ code: 'CASE_NOT_COMMITTABLE' });
    expect(committed).toEqual({ status: 'fulfilled', value: 'committed' });
    expect((await store.getCase(a))?.revision).toBe(first.revision);
    expect((await store.getCase(b))?.steps.only?.status).toBe('completed');
  });

  it('is marked stuck with the reason, and a cancel answers 503 with a code while it cannot commit, 200 once it can', async () => {
    const id = await start(solo);
    const store = api.engine.store;
    const append = store.appendTransition.bind(store);
    let refusing = true;
    // The store refuses every transition of this case but a stuck mark (as it refuses one too large to store).
    store.appendTransition = (previous: CaseState, next: CaseState, events: readonly TraceEvent[]) =>
      refusing && next.id === id && !events.every((event) => event.type === 'case.stuck')
        ? Promise.reject(new CaseNotCommittableError(id, 'the store refused its next history entry: document too large'))
        : append(previous, next, events);
    try {
      await expect(api.engine.advancer.apply(id, done('x'))).rejects.toMatchObject({ code: 'CASE_NOT_COMMITTABLE' });
      const stuck = await api.call('GET', `/v1/cases/${id}`);
      expect(stuck.body.status).toBe('running');
      expect(stuck.body.stuck.reason).toBe('its next transition cannot be committed: the store refused its next history entry: document too large');
      // Applied again (the report's retry): the same reason, no second mark.
      await expect(api.engine.advancer.apply(id, done('x'))).rejects.toMatchObject({ code: 'CASE_NOT_COMMITTABLE' });
      const marks = ((await api.call('GET', `/v1/cases/${id}/trace`)).body.events as Array<{ type: string }>).filter((event) => event.type === 'case.stuck');
      expect(marks).toHaveLength(1);
      const refusedCancel = await api.call('POST', `/v1/cases/${id}/cancel`, { payload: {} });
      expect(refusedCancel.status).toBe(503);
      expect(refusedCancel.headers['retry-after']).toBe('30');
      expect(refusedCancel.body.error.code).toBe('CASE_NOT_COMMITTABLE');
      refusing = false;
      const cancelled = await api.call('POST', `/v1/cases/${id}/cancel`, { payload: {} });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('cancelled');
      expect(cancelled.body.stuck ?? null).toBeNull();
    } finally {
      store.appendTransition = append;
    }
  });
});
