import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../lib/adapters/mongo/store.js';
import type { CaseState } from '../../lib/core/state.js';
import { createCase, transition } from '../../lib/core/transition.js';
import type { CaseRecord, Store } from '../../lib/ports/store.js';
import { order, orderDefinition, T0 } from '../unit/fixtures.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * The Store port's contract, run against every adapter (today: MongoDB's driver, on FerretDB or
 * on a real MongoDB when MONGO_URL is set). Each test gets a database of its own.
 */

let servers: TestServers;
const stores: Store[] = [];

async function freshStore(): Promise<Store> {
  const store = new MongoStore({ url: servers.namespace().mongoUrl });
  await store.init();
  stores.push(store);
  return store;
}

function newCase(id: string, now = T0, input: Record<string, unknown> = { sku: 'book', amount: 25 }) {
  return createCase(order, { id, input, now });
}

const adapters: Array<[string, () => Promise<Store>]> = [['MongoStore', freshStore]];

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await servers?.stop();
});

describe.each(adapters)('Store contract: %s', (_name, makeStore) => {
  describe('workflows', () => {
    it('numbers versions from 1 and keeps an identical definition on its version', async () => {
      const store = await makeStore();
      const first = await store.saveWorkflow(orderDefinition, 'hash-a', T0);
      const again = await store.saveWorkflow(orderDefinition, 'hash-a', T0 + 1);
      const changed = await store.saveWorkflow({ ...orderDefinition, description: 'v2' }, 'hash-b', T0 + 2);
      expect([first.workflow.version, first.created]).toEqual([1, true]);
      expect([again.workflow.version, again.created]).toEqual([1, false]);
      expect([changed.workflow.version, changed.created]).toEqual([2, true]);
      expect((await store.getWorkflow('order'))?.version).toBe(2);
      expect((await store.getWorkflow('order', 1))?.definition).toEqual(orderDefinition);
      expect(await store.getWorkflow('order', 3)).toBeUndefined();
      expect((await store.listVersions('order')).map((version) => version.version)).toEqual([2, 1]);
      expect(await store.listWorkflows()).toEqual([expect.objectContaining({ name: 'order', latestVersion: 2, versions: 2, description: 'v2' })]);
    });

    it('gives racing writers of different definitions distinct versions', async () => {
      const store = await makeStore();
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => store.saveWorkflow({ ...orderDefinition, description: `d${i}` }, `hash-${i}`, T0)),
      );
      expect(results.map((result) => result.workflow.version).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    });
  });

  describe('cases', () => {
    it('stores a new case with its creation trace and reads it back unchanged', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000001', T0, { 'dotted.key': 1, $dollar: { deep: [1, { 'a.b': null }] } });
      expect(await store.createCase(started.state, started.events)).toEqual({ created: true });
      expect(await store.getCase(started.state.id)).toEqual(started.state);
      expect(await store.readTrace(started.state.id)).toEqual(started.events);
    });

    it('returns the case an idempotency key already made', async () => {
      const store = await makeStore();
      const first = newCase('01a00000-0000-7000-8000-000000000002');
      const second = newCase('01a00000-0000-7000-8000-000000000003');
      const record = (state: CaseState): CaseRecord => ({ ...state, idempotencyKey: 'key-1', requestHash: 'h' });
      expect(await store.createCase(record(first.state), first.events)).toEqual({ created: true });
      const replay = await store.createCase(record(second.state), second.events);
      expect(replay).toEqual({ created: false, existing: expect.objectContaining({ id: first.state.id, idempotencyKey: 'key-1' }) });
      expect(await store.getCase(second.state.id)).toBeUndefined();
    });

    it('lets cases without an idempotency key coexist', async () => {
      const store = await makeStore();
      for (const id of ['01a00000-0000-7000-8000-000000000004', '01a00000-0000-7000-8000-000000000005']) {
        const started = newCase(id);
        expect(await store.createCase(started.state, started.events)).toEqual({ created: true });
      }
    });

    it('commits a transition and appends its events to the trace', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000006');
      await store.createCase(started.state, started.events);
      const next = transition(order, started.state, [{ type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: T0 + 10, startedAt: T0 + 5, output: { id: 'r' } }], T0 + 11);
      expect(await store.commitTransition(started.state, next.state, next.events)).toBe('committed');
      expect(await store.getCase(started.state.id)).toEqual(next.state);
      expect((await store.readTrace(started.state.id)).map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
    });

    it('lets exactly one of many racing writers commit a revision', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000007');
      await store.createCase(started.state, started.events);
      const attempts = Array.from({ length: 12 }, (_, i) =>
        transition(order, started.state, [{ type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: T0 + i, startedAt: T0, output: { writer: i } }], T0 + 100),
      );
      const outcomes = await Promise.all(attempts.map((attempt) => store.commitTransition(started.state, attempt.state, attempt.events)));
      expect(outcomes.filter((outcome) => outcome === 'committed')).toHaveLength(1);
      const winner = outcomes.indexOf('committed');
      const stored = await store.catchUp(started.state.id);
      expect(stored?.steps.reserve?.output).toEqual({ writer: winner });
      expect(stored?.revision).toBe(1);
      expect((await store.readTrace(started.state.id)).filter((event) => event.type === 'step.completed')).toHaveLength(1);
    });

    it('commits many cases at once, a conflict failing only its own case', async () => {
      const store = await makeStore();
      const ids = Array.from({ length: 8 }, (_, i) => `01a00000-0000-7000-8000-00000000020${i}`);
      const started = ids.map((id) => newCase(id));
      const created = await Promise.all(started.map((one) => store.createCase(one.state, one.events)));
      expect(created).toEqual(started.map(() => ({ created: true })));
      const reserve = (state: CaseState, writer: number) =>
        transition(order, state, [{ type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: T0 + 10, startedAt: T0 + 5, output: { writer } }], T0 + 11);
      // Concurrent commits are written as one batch; the second writer of case 0 loses alone.
      const commits = [...started.map((one) => reserve(one.state, 1)), reserve(started[0]?.state as CaseState, 2)];
      const told: number[] = [];
      const outcomes = await Promise.all(
        commits.map((next, i) => store.commitTransition((started[i] ?? started[0])?.state as CaseState, next.state, next.events, () => told.push(i))),
      );
      expect(outcomes).toEqual([...ids.map(() => 'committed'), 'conflict']);
      // Told as soon as each revision was theirs; the loser never.
      expect(told.sort((a, b) => a - b)).toEqual(ids.map((_, i) => i));
      for (const [i, id] of ids.entries()) {
        expect(await store.getCase(id)).toEqual(commits[i]?.state);
      }
    });

    it('inserts many cases at once, a replayed idempotency key answering with the case it made', async () => {
      const store = await makeStore();
      const record = (id: string, key: string): { state: CaseRecord; events: ReturnType<typeof newCase>['events'] } => {
        const made = newCase(id);
        return { state: { ...made.state, idempotencyKey: key, requestHash: 'h' }, events: made.events };
      };
      const first = record('01a00000-0000-7000-8000-000000000300', 'k-0');
      expect(await store.createCase(first.state, first.events)).toEqual({ created: true });
      const batch = [record('01a00000-0000-7000-8000-000000000301', 'k-1'), record('01a00000-0000-7000-8000-000000000302', 'k-0'), record('01a00000-0000-7000-8000-000000000303', 'k-3')];
      const results = await Promise.all(batch.map((one) => store.createCase(one.state, one.events)));
      expect(results).toEqual([{ created: true }, { created: false, existing: expect.objectContaining({ id: first.state.id }) }, { created: true }]);
      expect(await store.getCase('01a00000-0000-7000-8000-000000000302')).toBeUndefined();
    });

    it('catches a case document up with history a crashed writer committed', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000008');
      await store.createCase(started.state, started.events);
      const one = transition(order, started.state, [{ type: 'stepStarted', stepId: 'reserve', attempt: 1, at: T0 + 1 }], T0 + 2);
      const two = transition(order, one.state, [{ type: 'stepStarted', stepId: 'charge', attempt: 1, at: T0 + 3 }], T0 + 4);
      expect(await store.commitTransition(started.state, one.state, one.events)).toBe('committed');
      expect(await store.commitTransition(one.state, two.state, two.events)).toBe('committed');
      // A writer that read revision 0 and raced for revision 1 loses, then finds the case caught up.
      expect(await store.commitTransition(started.state, one.state, one.events)).toBe('conflict');
      expect(await store.catchUp(started.state.id)).toEqual(two.state);
      expect(await store.catchUp('01a00000-0000-7000-8000-00000000ffff')).toBeUndefined();
    });

    it('pages through cases newest first, filtered by status and workflow', async () => {
      const store = await makeStore();
      const ids = Array.from({ length: 5 }, (_, i) => `01a00000-0000-7000-8000-00000000010${i}`);
      for (const id of ids) {
        const started = newCase(id);
        await store.createCase(started.state, started.events);
      }
      const failed = await store.getCase(ids[2] ?? '');
      const failing = transition(order, failed as CaseState, [{ type: 'deadlineExceeded', at: T0 + 5 }], T0 + 5);
      await store.commitTransition(failed as CaseState, failing.state, failing.events);

      const first = await store.listCases({ limit: 2 });
      expect(first.cases.map((item) => item.id)).toEqual([ids[4], ids[3]]);
      const second = await store.listCases({ limit: 2, cursor: first.nextCursor ?? '' });
      expect(second.cases.map((item) => item.id)).toEqual([ids[2], ids[1]]);
      const third = await store.listCases({ limit: 2, cursor: second.nextCursor ?? '' });
      expect(third.cases.map((item) => item.id)).toEqual([ids[0]]);
      expect(third.nextCursor).toBeUndefined();
      expect((await store.listCases({ limit: 10, status: 'failed' })).cases).toEqual([
        expect.objectContaining({ id: ids[2], status: 'failed', error: expect.objectContaining({ code: 'DEADLINE_EXCEEDED' }) }),
      ]);
      expect((await store.listCases({ limit: 10, workflow: 'other' })).cases).toEqual([]);
      expect(await store.countByStatus()).toEqual({ running: 4, failed: 1 });
    });

    it('finds open cases past their deadline and cases that stopped moving', async () => {
      const store = await makeStore();
      const early = newCase('01a00000-0000-7000-8000-000000000201', T0);
      const late = newCase('01a00000-0000-7000-8000-000000000202', T0 + 60_000);
      for (const started of [early, late]) await store.createCase(started.state, started.events);
      expect(await store.findExpiredCases(T0 + order.deadlineMs + 1, 10)).toEqual([{ id: early.state.id }]);
      expect((await store.findStaleCases(T0 + 1, 10)).map((record) => record.id)).toEqual([early.state.id]);
      expect((await store.findStaleCases(T0 + 120_000, 10, early.state.id)).map((record) => record.id)).toEqual([late.state.id]);
    });

    it('answers a ping', async () => {
      const store = await makeStore();
      await expect(store.ping(2_000)).resolves.toBeUndefined();
    });
  });
});
