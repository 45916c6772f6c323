import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../lib/adapters/memory/store.js';
import { MongoClient, type Collection } from 'mongodb';
import { decodeCase, type CaseDocument } from '../../lib/adapters/mongo/documents.js';
import { MongoStore } from '../../lib/adapters/mongo/store.js';
import type { CaseEvent, CaseState, TraceEvent } from '../../lib/core/state.js';
import { createCase, transition } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import type { CaseQuery, CaseRecord, Store } from '../../lib/ports/store.js';
import { order, orderDefinition, T0 } from '../unit/fixtures.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * The Store port's contract, run against every adapter: MongoDB's driver (on FerretDB, or on a
 * real MongoDB when MONGO_URL is set) and the in-memory store. Each test gets a store of its own.
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

/** Appends a transition and, if the store wants one for it, writes the case document's projection: the writes of the engine's case repository. */
async function commit(store: Store, previous: CaseState, next: CaseState, events: readonly TraceEvent[]): Promise<'committed' | 'conflict'> {
  const outcome = await store.appendTransition(previous, next, events);
  if (outcome === 'committed' && store.projects(previous, next)) await store.writeProjection(previous, next);
  return outcome;
}

/** Reads a case and writes its document's projection if that lags its history, as the case repository catches a case up. */
async function catchUp(store: Store, id: string): Promise<CaseState | undefined> {
  const read = await store.readCase(id);
  if (read && read.projected.revision < read.record.revision) await store.writeProjection(read.projected, read.record);
  return read?.record;
}

/** Applies one event to a stored case and commits it; the state committed. */
async function advance(store: Store, id: string, event: CaseEvent, now: number): Promise<CaseState> {
  const current = (await store.getCase(id)) as CaseState;
  const next = transition(order, current, [event], now);
  expect(await commit(store, current, next.state, next.events)).toBe('committed');
  return next.state;
}

const adapters: Array<[string, () => Promise<Store>]> = [
  ['MongoStore', freshStore],
  ['MemoryStore', async () => new MemoryStore()],
];

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
      const results = await Promise.all(Array.from({ length: 6 }, (_, i) => store.saveWorkflow({ ...orderDefinition, description: `d${i}` }, `hash-${i}`, T0)));
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

    it('keeps a key unique within its scope only: another scope’s same key makes another case', async () => {
      const store = await makeStore();
      const made = ['01a00000-0000-7000-8000-000000000020', '01a00000-0000-7000-8000-000000000021', '01a00000-0000-7000-8000-000000000022'].map((id) => newCase(id));
      const [a, b, again] = made;
      if (!a || !b || !again) throw new Error('three cases expected');
      const keyed = (state: CaseState, scope: string): CaseRecord => ({ ...state, idempotencyKey: 'shared', idempotencyScope: scope, requestHash: 'h' });
      expect(await store.createCase(keyed(a.state, 'key:producerA'), a.events)).toEqual({ created: true });
      expect(await store.createCase(keyed(b.state, 'key:producerB'), b.events)).toEqual({ created: true });
      const replay = await store.createCase(keyed(again.state, 'key:producerB'), again.events);
      expect(replay).toEqual({ created: false, existing: expect.objectContaining({ id: b.state.id, idempotencyKey: 'shared', idempotencyScope: 'key:producerB' }) });
      expect(await store.getCase(a.state.id)).toMatchObject({ idempotencyKey: 'shared', idempotencyScope: 'key:producerA' });
    });

    it('answers a replayed idempotency key with the case at its latest revision', async () => {
      const store = await makeStore();
      const first = newCase('01a00000-0000-7000-8000-00000000000a');
      await store.createCase({ ...first.state, idempotencyKey: 'key-latest', requestHash: 'h' }, first.events);
      const moved = await advance(store, first.state.id, { type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: T0 + 1, startedAt: T0, output: { r: 1 } }, T0 + 2);
      const replay = newCase('01a00000-0000-7000-8000-00000000000b');
      const answer = await store.createCase({ ...replay.state, idempotencyKey: 'key-latest', requestHash: 'h' }, replay.events);
      // A replay carries out the work the case still has under way: judged on anything older, a step already done would run again.
      expect(answer).toEqual({ created: false, existing: { ...moved, idempotencyKey: 'key-latest', requestHash: 'h' } });
    });

    it('gives a key whose window is over to a new case; within the window the key answers with its case', async () => {
      const store = await makeStore();
      const ids = ['01a00000-0000-7000-8000-000000000030', '01a00000-0000-7000-8000-000000000031', '01a00000-0000-7000-8000-000000000032', '01a00000-0000-7000-8000-000000000033'];
      const [first, inside, after, again] = ids.map((id, n) => newCase(id, T0 + [0, 999, 1_000, 1_500][n]!));
      if (!first || !inside || !after || !again) throw new Error('four cases expected');
      const keyed = (state: CaseState, expiresAt?: number): CaseRecord => ({
        ...state,
        idempotencyKey: 'windowed',
        idempotencyScope: 'key:p',
        requestHash: 'h',
        ...(expiresAt === undefined ? {} : { idempotencyExpiresAt: expiresAt }),
      });
      expect(await store.createCase(keyed(first.state, T0 + 1_000), first.events)).toEqual({ created: true });
      // 1 ms before the window ends: the first case, whatever the replay's own window.
      expect(await store.createCase(keyed(inside.state, T0 + 5_000), inside.events)).toEqual({ created: false, existing: expect.objectContaining({ id: first.state.id }) });
      // At its end: a new case, which takes the key (with no window of its own: for ever).
      expect(await store.createCase(keyed(after.state), after.events)).toEqual({ created: true });
      expect(await store.createCase(keyed(again.state), again.events)).toEqual({ created: false, existing: expect.objectContaining({ id: after.state.id }) });
      // The first case keeps its key and scope as a record of how it was started.
      expect(await store.getCase(first.state.id)).toMatchObject({ idempotencyKey: 'windowed', idempotencyScope: 'key:p', idempotencyExpiresAt: T0 + 1_000 });
      expect(await store.getCase(inside.state.id)).toBeUndefined();
    });

    it('makes one case of racing starts with a key whose window is over', async () => {
      const store = await makeStore();
      const old = newCase('01a00000-0000-7000-8000-000000000040');
      await store.createCase({ ...old.state, idempotencyKey: 'raced', requestHash: 'h', idempotencyExpiresAt: T0 + 10 }, old.events);
      const racers = Array.from({ length: 6 }, (_, n) => newCase(`01a00000-0000-7000-8000-00000000005${n}`, T0 + 100));
      const answers = await Promise.all(racers.map((racer) => store.createCase({ ...racer.state, idempotencyKey: 'raced', requestHash: 'h', idempotencyExpiresAt: T0 + 60_000 }, racer.events)));
      const made = answers.filter((answer) => answer.created);
      expect(made).toHaveLength(1);
      const winner = racers[answers.indexOf(made[0]!)]!.state.id;
      expect(answers.filter((answer) => !answer.created)).toEqual(Array.from({ length: 5 }, () => ({ created: false, existing: expect.objectContaining({ id: winner }) })));
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
      expect(await commit(store, started.state, next.state, next.events)).toBe('committed');
      expect(await store.getCase(started.state.id)).toEqual(next.state);
      expect((await store.readTrace(started.state.id)).map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
    });

    it('keeps a case’s concurrency slot and priority, and a unit’s limit deferral, through its history and projection', async () => {
      const store = await makeStore();
      const keyed = compileWorkflow({ name: 'keyed', concurrency: { key: '${input.account}', limit: 1 }, steps: [{ id: 'pull', task: 'sync.pull', concurrency: { key: 'k', limit: 2 } }] }, 1);
      const started = createCase(keyed, { id: '01a00000-0000-7000-8000-0000000000c1', input: { account: 'acme' }, now: T0, priority: 7 });
      expect(started.state.concurrency).toEqual({ group: 'workflow:keyed', key: 'acme', limit: 1, strategy: 'queue', waiting: true });
      await store.createCase(started.state, started.events);
      expect(await store.getCase(started.state.id)).toEqual(started.state);
      const admitted = transition(keyed, started.state, [{ type: 'caseAdmitted', at: T0 + 1 }], T0 + 1);
      expect(await commit(store, started.state, admitted.state, admitted.events)).toBe('committed');
      const deferred = transition(
        keyed,
        admitted.state,
        [{ type: 'stepDeferred', stepId: 'pull', attempt: 1, at: T0 + 2, breaker: 'sync.pull', until: T0 + 5_000, limit: { kind: 'concurrency', group: 'sync.pull', key: 'k', ahead: 2 } }],
        T0 + 2,
      );
      expect(await commit(store, admitted.state, deferred.state, deferred.events)).toBe('committed');
      expect(await store.getCase(started.state.id)).toEqual(deferred.state);
      expect(await catchUp(store, started.state.id)).toEqual(deferred.state);
      expect(deferred.state).toMatchObject({ priority: 7, concurrency: { waiting: false }, steps: { pull: { deferredFor: { kind: 'concurrency', key: 'k', ahead: 2 } } } });
    });

    it('lets exactly one of many racing writers commit a revision', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000007');
      await store.createCase(started.state, started.events);
      const attempts = Array.from({ length: 12 }, (_, i) =>
        transition(order, started.state, [{ type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: T0 + i, startedAt: T0, output: { writer: i } }], T0 + 100),
      );
      const outcomes = await Promise.all(attempts.map((attempt) => commit(store, started.state, attempt.state, attempt.events)));
      expect(outcomes.filter((outcome) => outcome === 'committed')).toHaveLength(1);
      const winner = outcomes.indexOf('committed');
      const stored = await catchUp(store, started.state.id);
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
      const reserve = (state: CaseState, writer: number) => transition(order, state, [{ type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: T0 + 10, startedAt: T0 + 5, output: { writer } }], T0 + 11);
      // Concurrent commits are written as one batch; the second writer of case 0 loses alone.
      const commits = [...started.map((one) => reserve(one.state, 1)), reserve(started[0]?.state as CaseState, 2)];
      // Each append answers as soon as its history entry is in or refused, before any projection is written.
      const outcomes = await Promise.all(commits.map((next, i) => store.appendTransition((started[i] ?? started[0])?.state as CaseState, next.state, next.events)));
      expect(outcomes).toEqual([...ids.map(() => 'committed'), 'conflict']);
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
      expect(await commit(store, started.state, one.state, one.events)).toBe('committed');
      expect(await commit(store, one.state, two.state, two.events)).toBe('committed');
      // A writer that read revision 0 and raced for revision 1 loses, then finds the case caught up.
      expect(await commit(store, started.state, one.state, one.events)).toBe('conflict');
      expect(await catchUp(store, started.state.id)).toEqual(two.state);
      expect(await store.readCase('01a00000-0000-7000-8000-00000000ffff')).toBeUndefined();
    });

    it('keeps what a limit deferred a unit for, as history and as the projection', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000010');
      await store.createCase(started.state, started.events);
      const limit = { kind: 'concurrency' as const, group: 'customers', key: 'acme', ahead: 2 };
      const deferred = await advance(store, started.state.id, { type: 'stepDeferred', stepId: 'charge', attempt: 1, at: T0 + 1, breaker: 'payments', until: T0 + 5_000, limit }, T0 + 1);
      expect(deferred.steps.charge?.deferredFor).toEqual(limit);
      expect(await store.getCase(started.state.id)).toEqual(deferred);
      expect(await catchUp(store, started.state.id)).toEqual(deferred);
    });

    it('reads a case at its latest revision after hand-offs, and a status change after them projects it whole', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000009');
      await store.createCase(started.state, started.events);
      const done = (stepId: string, at: number) => ({ type: 'stepCompleted' as const, stepId, attempt: 1, at, startedAt: at - 1, output: { [stepId]: true } });
      await advance(store, started.state.id, done('reserve', T0 + 1), T0 + 2);
      const handedOff = await advance(store, started.state.id, done('charge', T0 + 3), T0 + 4);
      expect(handedOff.steps.ship?.status).toBe('scheduled');
      expect(await store.getCase(started.state.id)).toEqual(handedOff);
      expect((await store.readCase(started.state.id))?.record).toEqual(handedOff);
      const finished = await advance(store, started.state.id, done('ship', T0 + 5), T0 + 6);
      expect(finished.status).toBe('completed');
      expect(await store.getCase(started.state.id)).toEqual(finished);
      expect(await catchUp(store, started.state.id)).toEqual(finished);
      expect((await store.listCases({ limit: 5, status: 'completed' })).cases).toEqual([expect.objectContaining({ id: started.state.id, updatedAt: T0 + 6, finishedAt: finished.finishedAt })]);
      expect(finished.finishedAt).toBeTypeOf('number');
      expect((await store.readTrace(started.state.id)).map((event) => event.seq)).toEqual(Array.from({ length: finished.seq }, (_, i) => i + 1));
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
      await commit(store, failed as CaseState, failing.state, failing.events);

      const first = await store.listCases({ limit: 2 });
      expect(first.cases.map((item) => item.id)).toEqual([ids[4], ids[3]]);
      const second = await store.listCases({ limit: 2, cursor: first.nextCursor ?? '' });
      expect(second.cases.map((item) => item.id)).toEqual([ids[2], ids[1]]);
      const third = await store.listCases({ limit: 2, cursor: second.nextCursor ?? '' });
      expect(third.cases.map((item) => item.id)).toEqual([ids[0]]);
      expect(third.nextCursor).toBeUndefined();
      expect((await store.listCases({ limit: 10, status: 'failed' })).cases).toEqual([expect.objectContaining({ id: ids[2], status: 'failed', error: expect.objectContaining({ code: 'DEADLINE_EXCEEDED' }) })]);
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

    it('refuses a taken case id unless an idempotency key names the case that took it', async () => {
      const store = await makeStore();
      const first = newCase('01a00000-0000-7000-8000-000000000400');
      await store.createCase(first.state, first.events);
      const again = newCase(first.state.id, T0 + 1, { sku: 'other' });
      for (const record of [again.state, { ...again.state, idempotencyKey: 'unused', requestHash: 'h' }]) {
        await expect(store.createCase(record, again.events)).rejects.toMatchObject({ code: 'CASE_ID_TAKEN', retryable: true });
      }
      expect((await store.getCase(first.state.id))?.input).toEqual(first.state.input);
    });

    it('keeps what it stores apart from the objects callers hold', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000401', T0, { sku: 'book', nested: { list: [1, 2] } });
      const original = structuredClone(started);
      await store.createCase(started.state, started.events);
      (started.state.input as { nested: { list: number[] } }).nested.list.push(3);
      (started.events[0] as { data: Record<string, unknown> }).data.changed = true;
      const read = (await store.getCase(started.state.id)) as CaseState;
      expect(read).toEqual(original.state);
      (read.input as { sku: string }).sku = 'changed';
      (read.steps as Record<string, unknown>).reserve = 'changed';
      (await store.readTrace(started.state.id)).splice(0);
      expect(await store.getCase(started.state.id)).toEqual(original.state);
      expect(await store.readTrace(started.state.id)).toEqual(original.events);

      const next = transition(order, original.state, [{ type: 'stepCompleted', stepId: 'reserve', attempt: 1, at: T0 + 10, startedAt: T0 + 5, output: { id: 'r' } }], T0 + 11);
      const committed = structuredClone(next);
      await commit(store, original.state, next.state, next.events);
      (next.state.steps.reserve?.output as { id: string }).id = 'changed';
      (next.events[0] as { data: Record<string, unknown> }).data.changed = true;
      expect(await store.getCase(started.state.id)).toEqual(committed.state);
      expect(await store.readTrace(started.state.id)).toEqual([...original.events, ...committed.events]);

      const definition = structuredClone(orderDefinition);
      const saved = await store.saveWorkflow(definition, 'hash-a', T0);
      definition.steps.pop();
      saved.workflow.definition.steps.pop();
      expect((await store.getWorkflow('order'))?.definition).toEqual(orderDefinition);
    });

    it('lists cases by who started them, by business key and by creation time', async () => {
      const store = await makeStore();
      const made: Array<{ id: string; at: number; startedBy: string; businessKeys: Record<string, string> }> = [
        { id: '01a00000-0000-7000-8000-000000000410', at: T0, startedBy: 'key-a', businessKeys: { order: 'o-1', 'dotted.name': 'x' } },
        { id: '01a00000-0000-7000-8000-000000000411', at: T0 + 1_000, startedBy: 'key-b', businessKeys: { order: 'o-2' } },
        { id: '01a00000-0000-7000-8000-000000000412', at: T0 + 2_000, startedBy: 'key-a', businessKeys: { order: 'o-1', customer: 'c=1' } },
      ];
      for (const { id, at, startedBy, businessKeys } of made) {
        const started = newCase(id, at);
        await store.createCase({ ...started.state, startedBy, businessKeys }, started.events);
      }
      const ids = async (query: Omit<CaseQuery, 'limit'>) => (await store.listCases({ limit: 10, ...query })).cases.map((item) => item.id);
      const [a, b, c] = made.map((one) => one.id);
      expect(await ids({ startedBy: 'key-a' })).toEqual([c, a]);
      expect(await ids({ businessKey: { name: 'order', value: 'o-1' } })).toEqual([c, a]);
      expect(await ids({ businessKey: { name: 'dotted.name', value: 'x' } })).toEqual([a]);
      expect(await ids({ businessKey: { name: 'customer', value: 'c=1' } })).toEqual([c]);
      expect(await ids({ businessKey: { name: 'order', value: 'o-3' } })).toEqual([]);
      expect(await ids({ createdAfter: T0 + 1_000 })).toEqual([c, b]);
      expect(await ids({ createdBefore: T0 + 1_000 })).toEqual([a]);
      expect(await ids({ createdAfter: T0 + 500, createdBefore: T0 + 2_000, workflow: 'order', status: 'running' })).toEqual([b]);
      const page = await store.listCases({ limit: 1, startedBy: 'key-a' });
      expect(page.cases).toEqual([{ id: c, workflow: 'order', version: 1, status: 'running', createdAt: T0 + 2_000, updatedAt: T0 + 2_000 }]);
      expect((await store.listCases({ limit: 1, startedBy: 'key-a', cursor: page.nextCursor ?? '' })).cases.map((item) => item.id)).toEqual([a]);
      expect((await store.getCase(a ?? ''))?.businessKeys).toEqual(made[0]?.businessKeys);
    });

    it("filters by error code (the case error's or its cause's) and by update time, and counts matches by status up to a bound", async () => {
      const store = await makeStore();
      const ids = ['01a00000-0000-7000-8000-000000000440', '01a00000-0000-7000-8000-000000000441', '01a00000-0000-7000-8000-000000000442'];
      for (const id of ids) {
        const started = newCase(id);
        await store.createCase(started.state, started.events);
      }
      const [a, b, c] = ids as [string, string, string];
      const fail = (id: string, code: string, at: number) => advance(store, id, { type: 'stepFailed', stepId: 'reserve', attempt: 1, at, startedAt: at - 1, error: { code, message: 'down' } }, at);
      await fail(a, 'UPSTREAM_UNAVAILABLE', T0 + 5_000);
      await fail(b, 'CARD.DECLINED', T0 + 6_000);
      const ids2 = async (query: Omit<CaseQuery, 'limit'>) => (await store.listCases({ limit: 10, ...query })).cases.map((item) => item.id);
      expect(await ids2({ errorCode: 'UPSTREAM_UNAVAILABLE' })).toEqual([a]);
      expect(await ids2({ errorCode: 'CARD.DECLINED' })).toEqual([b]);
      // A regular expression's dot is taken as a dot.
      expect(await ids2({ errorCode: 'CARDXDECLINED' })).toEqual([]);
      expect(await ids2({ errorCode: 'STEP_FAILED' })).toEqual([b, a]);
      expect(await ids2({ updatedAfter: T0 + 5_500 })).toEqual([b]);
      expect(await ids2({ updatedBefore: T0 + 5_500 })).toEqual([c, a]);
      expect(await store.countCases({}, 10)).toEqual({ total: 3, byStatus: { failed: 2, running: 1 } });
      // Bounded: the newest two only.
      expect(await store.countCases({}, 2)).toEqual({ total: 2, byStatus: { failed: 1, running: 1 } });
      expect(await store.countCases({ workflow: 'order', errorCode: 'STEP_FAILED' }, 10)).toEqual({ total: 2, byStatus: { failed: 2 } });
    });

    it('stores each page of a bulk operation once, and a stop outlives what its runner writes next', async () => {
      const store = await makeStore();
      const operation = {
        id: '01a00000-0000-7000-8000-000000000450',
        params: { action: 'signal' as const, name: 'go', payload: { 'a.b': 1, $c: 2 } },
        filter: { status: 'waiting' as const, businessKey: { name: 'batch', value: 'x' } },
        limit: 10,
        status: 'running' as const,
        total: 3,
        done: 0,
        counts: { ok: 0, skipped: 0, error: 0 },
        pages: 0,
        createdAt: T0,
        updatedAt: T0,
        createdBy: 'key-a',
      };
      await store.insertBulkOperation(operation);
      expect(await store.getBulkOperation(operation.id)).toEqual(operation);
      const page = { ...operation, pages: 1, done: 1, counts: { ok: 1, skipped: 0, error: 0 }, cursor: 'abc', updatedAt: T0 + 1 };
      const results = [{ caseId: 'c1', outcome: 'ok' as const, status: 'running' as const }];
      expect(await store.saveBulkPage(page, results)).toBe('saved');
      expect(await store.saveBulkPage({ ...page, updatedAt: T0 + 2 }, [])).toBe('taken');
      expect(await store.readBulkResults(operation.id, 0)).toEqual(results);
      expect(await store.readBulkResults(operation.id, 1)).toBeUndefined();
      expect(await store.findStalledBulkOperations(T0 + 2, 10)).toEqual([page]);
      expect(await store.stopBulkOperation(operation.id, T0 + 3)).toMatchObject({ status: 'stopped', finishedAt: T0 + 3 });
      await store.saveBulkPage({ ...page, pages: 2, done: 2, updatedAt: T0 + 4 }, []);
      expect(await store.getBulkOperation(operation.id)).toMatchObject({ status: 'stopped', done: 2, finishedAt: T0 + 3 });
      expect(await store.findStalledBulkOperations(T0 + 10, 10)).toEqual([]);
      expect(await store.stopBulkOperation('01a00000-0000-7000-8000-000000000451', T0)).toBeUndefined();
    });

    it('finds the children a case started', async () => {
      const store = await makeStore();
      const parent = newCase('01a00000-0000-7000-8000-000000000420');
      const link = { caseId: parent.state.id, stepId: 'ship', run: 0 };
      const child = createCase(order, { id: '01a00000-0000-7000-8000-000000000421', input: {}, now: T0, parent: link, depth: 1 });
      const stranger = createCase(order, { id: '01a00000-0000-7000-8000-000000000422', input: {}, now: T0, parent: { ...link, caseId: 'someone-else' }, depth: 1 });
      for (const started of [parent, child, stranger]) await store.createCase(started.state, started.events);
      expect(await store.findChildren(parent.state.id)).toEqual([{ id: child.state.id, status: 'running', parent: link }]);
      expect(await store.findChildren(child.state.id)).toEqual([]);
    });

    it('counts the cases marked stuck and lists the longest stuck first', async () => {
      const store = await makeStore();
      const ids = ['01a00000-0000-7000-8000-000000000430', '01a00000-0000-7000-8000-000000000431', '01a00000-0000-7000-8000-000000000432'];
      for (const id of ids) {
        const started = newCase(id);
        await store.createCase(started.state, started.events);
      }
      await advance(store, ids[0] ?? '', { type: 'stuck', reason: 'job lost', at: T0 + 2_000 }, T0 + 2_000);
      await advance(store, ids[1] ?? '', { type: 'stuck', reason: 'job lost', at: T0 + 1_000 }, T0 + 1_000);
      expect(await store.findStuckCases(1)).toEqual({ count: 2, cases: [expect.objectContaining({ id: ids[1], stuck: { reason: 'job lost', since: T0 + 1_000 } })] });
      expect(await store.findStuckCases(0)).toEqual({ count: 2, cases: [] });
      // Any progress clears the mark.
      await advance(store, ids[1] ?? '', { type: 'stepStarted', stepId: 'reserve', attempt: 1, at: T0 + 3_000 }, T0 + 3_000);
      expect((await store.findStuckCases(10)).cases.map((record) => record.id)).toEqual([ids[0]]);
    });

    it('finds a retried case open again and counts it by its new status', async () => {
      const store = await makeStore();
      const started = newCase('01a00000-0000-7000-8000-000000000440');
      await store.createCase(started.state, started.events);
      const error = { code: 'DECLINED', message: 'no', retryable: false };
      await advance(store, started.state.id, { type: 'stepFailed', stepId: 'charge', attempt: 1, at: T0 + 5, error }, T0 + 5);
      expect(await store.countByStatus()).toEqual({ failed: 1 });
      expect(await store.findStaleCases(T0 + 1_000, 10)).toEqual([]);
      await advance(store, started.state.id, { type: 'retry', at: T0 + 10 }, T0 + 10);
      expect(await store.countByStatus()).toEqual({ running: 1 });
      expect((await store.findStaleCases(T0 + 1_000, 10)).map((record) => record.id)).toEqual([started.state.id]);
      expect(await store.deleteFinishedCases(T0 + 1_000, 10)).toBe(0);
    });

    it('deletes cases that finished before the cutoff, with their history, and frees their idempotency keys', async () => {
      const store = await makeStore();
      const ids = ['01a00000-0000-7000-8000-000000000450', '01a00000-0000-7000-8000-000000000451', '01a00000-0000-7000-8000-000000000452'];
      for (const [i, id] of ids.entries()) {
        const started = newCase(id);
        await store.createCase({ ...started.state, idempotencyKey: `key-${i}`, requestHash: 'h' }, started.events);
      }
      await advance(store, ids[0] ?? '', { type: 'deadlineExceeded', at: T0 + 5 }, T0 + 5);
      await advance(store, ids[1] ?? '', { type: 'deadlineExceeded', at: T0 + 50 }, T0 + 50);
      expect(await store.deleteFinishedCases(T0 + 10, 10)).toBe(1);
      expect(await store.getCase(ids[0] ?? '')).toBeUndefined();
      expect(await store.readTrace(ids[0] ?? '')).toEqual([]);
      expect((await store.listCases({ limit: 10 })).cases.map((item) => item.id)).toEqual([ids[2], ids[1]]);
      expect(await store.countByStatus()).toEqual({ failed: 1, running: 1 });
      const reused = newCase('01a00000-0000-7000-8000-000000000453');
      expect(await store.createCase({ ...reused.state, idempotencyKey: 'key-0', requestHash: 'h' }, reused.events)).toEqual({ created: true });
      expect(await store.deleteFinishedCases(T0 + 1_000, 10)).toBe(1);
      expect(await store.deleteFinishedCases(T0 + 1_000, 10)).toBe(0);
    });

    it('deletes finished cases day by day up to the cutoff, leaving later and open ones, and goes on where it stopped', async () => {
      const store = await makeStore();
      const DAY = 86_400_000;
      const ids = Array.from({ length: 5 }, (_, i) => `01a00000-0000-7000-8000-00000000046${i}`);
      for (const id of ids) {
        const started = newCase(id);
        await store.createCase(started.state, started.events);
      }
      // Finished on three days; the last case stays open.
      const finishedAt = [T0 + 1, T0 + 2 * DAY, T0 + 2 * DAY + 7, T0 + 4 * DAY];
      for (const [i, at] of finishedAt.entries()) await advance(store, ids[i] ?? '', { type: 'deadlineExceeded', at }, at);
      expect(await store.deleteFinishedCases(T0 + 2 * DAY + 5, 10)).toBe(2);
      expect(await store.getCase(ids[2] ?? '')).toBeDefined();
      // A full batch stops early; the next run takes the rest of that day and no more.
      expect(await store.deleteFinishedCases(T0 + 5 * DAY, 1)).toBe(1);
      expect(await store.deleteFinishedCases(T0 + 5 * DAY, 10)).toBe(1);
      expect(await store.deleteFinishedCases(T0 + 5 * DAY, 10)).toBe(0);
      expect((await store.listCases({ limit: 10 })).cases.map((item) => item.id)).toEqual([ids[4]]);
      expect(await store.readTrace(ids[3] ?? '')).toEqual([]);
    });

    it('finds expired cases soonest first, up to the limit', async () => {
      const store = await makeStore();
      const ids = ['01a00000-0000-7000-8000-000000000460', '01a00000-0000-7000-8000-000000000461', '01a00000-0000-7000-8000-000000000462'];
      const starts = [T0 + 2_000, T0, T0 + 1_000];
      for (const [i, id] of ids.entries()) {
        const started = newCase(id, starts[i]);
        await store.createCase(started.state, started.events);
      }
      await advance(store, ids[1] ?? '', { type: 'deadlineExceeded', at: T0 + 5 }, T0 + 5);
      expect(await store.findExpiredCases(T0 + order.deadlineMs + 5_000, 1)).toEqual([{ id: ids[2] }]);
      expect(await store.findExpiredCases(T0 + order.deadlineMs + 5_000, 10)).toEqual([{ id: ids[2] }, { id: ids[0] }]);
    });

    it('answers a ping', async () => {
      const store = await makeStore();
      await expect(store.ping(2_000)).resolves.toBeUndefined();
    });
  });

  describe('keys', () => {
    it('stores keys unrevoked, lists them oldest first and revokes them', async () => {
      const store = await makeStore();
      const key = (id: string, createdAt: number) => ({ id, name: `name-${id}`, roles: ['admin' as const], hash: `hash-${id}`, createdAt });
      await store.insertKey({ ...key('k2', T0 + 1), expiresAt: T0 + 10_000 });
      await store.insertKey({ ...key('k1', T0), revokedAt: T0 });
      expect(await store.getKey('k1')).toEqual(key('k1', T0));
      expect((await store.listKeys()).map((stored) => stored.id)).toEqual(['k1', 'k2']);
      expect(await store.revokeKey('k2', T0 + 5)).toBe(true);
      expect(await store.getKey('k2')).toEqual({ ...key('k2', T0 + 1), expiresAt: T0 + 10_000, revokedAt: T0 + 5 });
      expect(await store.revokeKey('nobody', T0 + 5)).toBe(false);
      expect(await store.getKey('nobody')).toBeUndefined();
      await expect(store.insertKey(key('k1', T0 + 2))).rejects.toThrow();
    });
  });
});

/**
 * What only the MongoDB adapter can show: the case document is a projection, written at
 * creation and when a transition changes what queries filter on, never between two steps.
 */
describe('MongoStore: the case document is a projection', () => {
  /** A store and, beside it, a plain driver reading its case documents as stored. */
  async function storeWithDocuments(test: (store: Store, documents: Collection<CaseDocument>) => Promise<void>): Promise<void> {
    const { mongoUrl } = servers.namespace();
    const store = new MongoStore({ url: mongoUrl });
    await store.init();
    stores.push(store);
    const raw = new MongoClient(mongoUrl);
    try {
      await test(store, raw.db().collection<CaseDocument>('cases'));
    } finally {
      await raw.close();
    }
  }

  it('appends history alone for a step end that schedules the next step, and writes the projection at the status change', async () => {
    await storeWithDocuments(async (store, documents) => {
      const started = newCase('01a00000-0000-7000-8000-000000000400');
      await store.createCase(started.state, started.events);
      const done = (stepId: string, at: number) => ({ type: 'stepCompleted' as const, stepId, attempt: 1, at, startedAt: at - 1, output: { [stepId]: 'x'.repeat(3) } });
      await advance(store, started.state.id, done('reserve', T0 + 1), T0 + 2);
      const handedOff = await advance(store, started.state.id, done('charge', T0 + 3), T0 + 4);
      // Two transitions committed, the document untouched: it is still the creation's.
      expect((await documents.findOne({ _id: started.state.id }))?.revision).toBe(0);
      expect((await store.getCase(started.state.id))?.revision).toBe(handedOff.revision);
      const finished = await advance(store, started.state.id, done('ship', T0 + 5), T0 + 6);
      const projected = await documents.findOne({ _id: started.state.id });
      expect(projected && decodeCase(projected)).toEqual(finished);
    });
  });

  it('writes the projection every 32 revisions, so a long case never leaves a read more than 31 entries to fold', async () => {
    await storeWithDocuments(async (store, documents) => {
      const started = newCase('01a00000-0000-7000-8000-000000000402');
      await store.createCase(started.state, started.events);
      let state = started.state;
      // Start reports that change nothing a query filters on: the case stays running throughout.
      for (let at = 1; state.revision < 33; at++) state = await advance(store, started.state.id, { type: 'stepStarted', stepId: at % 2 ? 'reserve' : 'charge', attempt: at, at: T0 + at }, T0 + at);
      expect((await documents.findOne({ _id: started.state.id }))?.revision).toBe(32);
      expect(await store.getCase(started.state.id)).toEqual(state);
    });
  });

  it('writes the projection when a breaker defers a step, for the fleet page that reads deferrals from the documents', async () => {
    await storeWithDocuments(async (store, documents) => {
      const started = newCase('01a00000-0000-7000-8000-000000000404');
      await store.createCase(started.state, started.events);
      const deferred = await advance(store, started.state.id, { type: 'stepDeferred', stepId: 'charge', attempt: 1, at: T0 + 1, breaker: 'payments', until: T0 + 5_000 }, T0 + 1);
      expect(deferred.status).toBe(started.state.status);
      expect(await documents.findOne({ _id: started.state.id })).toMatchObject({ revision: deferred.revision, steps: { charge: { deferredBy: 'payments', nextAttemptAt: T0 + 5_000 } } });
    });
  });

  it('writes the projection of any transition of a finished case, so retention finds all its history', async () => {
    await storeWithDocuments(async (store, documents) => {
      const started = newCase('01a00000-0000-7000-8000-000000000403');
      await store.createCase(started.state, started.events);
      const failed = await advance(store, started.state.id, { type: 'deadlineExceeded', at: T0 + 5 }, T0 + 5);
      const later = await advance(store, started.state.id, { type: 'breakerClosed', stepId: 'charge', at: T0 + 6, breaker: 'payments' }, T0 + 6);
      expect(later.revision).toBe(failed.revision + 1);
      expect((await documents.findOne({ _id: started.state.id }))?.revision).toBe(later.revision);
      expect(await store.deleteFinishedCases(T0 + 1_000_000, 10)).toBe(1);
      expect(await store.readTrace(started.state.id)).toEqual([]);
    });
  });

  it('lets the reconciler write a lagging projection lazily', async () => {
    await storeWithDocuments(async (store, documents) => {
      const started = newCase('01a00000-0000-7000-8000-000000000401');
      await store.createCase(started.state, started.events);
      const one = await advance(store, started.state.id, { type: 'stepStarted', stepId: 'reserve', attempt: 1, at: T0 + 1 }, T0 + 1);
      expect((await documents.findOne({ _id: started.state.id }))?.revision).toBe(0);
      expect(await store.readCase(started.state.id)).toEqual({ record: one, projected: started.state });
      expect(await catchUp(store, started.state.id)).toEqual(one);
      expect((await documents.findOne({ _id: started.state.id }))?.revision).toBe(one.revision);
      expect(await store.readCase(started.state.id)).toEqual({ record: one, projected: one });
      // Written over a document already there, a projection is refused.
      expect(await store.writeProjection(started.state, one)).toBe(false);
    });
  });
});
