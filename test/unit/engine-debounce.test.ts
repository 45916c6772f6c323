import { describe, expect, it } from 'vitest';
import type { SubmitResult } from '../../lib/engine/cases.js';
import type { DebouncedStart } from '../../lib/engine/debounced-starts.js';
import { memoryEngine } from '../helpers/memory-engine.js';
import { T0 } from './fixtures.js';

/** CaseService.submit and closeBurst on the MemoryStore and the memory debouncer: bursts of starts collapse into one case. */

const searchIndex = {
  name: 'search-index',
  debounce: { key: '${input.userId}', for: '5s', maxWait: '1m' },
  steps: [{ id: 'index', task: 'search.index', input: { userId: '${input.userId}', rev: '${input.rev}' } }],
};

async function engine() {
  const made = memoryEngine({ now: T0 });
  await made.workflows.apply(searchIndex);
  return made;
}

const start = (userId: unknown, rev: number, extra: Record<string, unknown> = {}) => ({ workflow: 'search-index', input: { userId, rev }, ...extra });

function debounced(result: SubmitResult): DebouncedStart {
  if (result.kind !== 'debounced') throw new Error(`a debounced start expected, got ${result.kind}`);
  return result.debounced;
}

describe('debounced starts', () => {
  it('collapse a burst into one case, made when the burst closes, with the last start and its business keys', async () => {
    const { cases, clock, debouncer, store, queues } = await engine();
    const first = debounced(await cases.submit(start('u-1', 1), { startedBy: 'key-a', requestId: 'r-1' }));
    expect(first).toMatchObject({ outcome: 'opened', key: 'u-1', workflow: 'search-index', version: 1, startsAt: T0 + 5_000, starts: 1 });
    clock.time = T0 + 3_000;
    const second = debounced(await cases.submit(start('u-1', 2, { businessKeys: { userId: 'u-1' } }), { startedBy: 'key-a', requestId: 'r-2' }));
    expect(second).toMatchObject({ id: first.id, outcome: 'joined', startsAt: T0 + 8_000, starts: 2 });
    expect(await store.getCase(first.id)).toBeUndefined();
    expect(queues.jobIds()).toEqual([]);

    // The close asked for at the first due time finds the burst put off.
    const [close] = debouncer.closes;
    expect(close).toEqual({ address: expect.any(String), burstId: first.id, at: T0 + 5_000 });
    clock.time = T0 + 5_000;
    expect(await cases.closeBurst(close)).toEqual({ kind: 'wait', dueAt: T0 + 8_000 });
    clock.time = T0 + 8_000;
    const closed = await cases.closeBurst(close);
    expect(closed).toMatchObject({ kind: 'started', created: true, record: { id: first.id, input: { userId: 'u-1', rev: 2 }, businessKeys: { userId: 'u-1' }, startedBy: 'key-a', requestId: 'r-2' } });
    expect(queues.job(`${first.id}.index`)).toMatchObject({ input: { userId: 'u-1', rev: 2 } });
    const [created] = await cases.trace(first.id);
    expect(created).toMatchObject({ type: 'case.created', data: { debounced: { key: 'u-1', starts: 2, firstAt: T0 } } });
    // Run again (a close job redelivered after its case was made): nothing more.
    expect(await cases.closeBurst(close)).toEqual({ kind: 'gone' });
    expect((await store.listCases({ limit: 10 })).cases).toHaveLength(1);
  });

  it('finds its case when a close dies between making it and forgetting the burst', async () => {
    const { cases, clock, debouncer, store } = await engine();
    const { id } = debounced(await cases.submit(start('u-1', 1)));
    clock.time = T0 + 5_000;
    const ref = debouncer.closes[0];
    const release = debouncer.release.bind(debouncer);
    debouncer.release = async () => {
      throw new Error('Redis went away');
    };
    await expect(cases.closeBurst(ref)).rejects.toThrow(/Redis went away/);
    debouncer.release = release;
    expect(await cases.closeBurst(ref)).toMatchObject({ kind: 'started', created: false, record: { id } });
    expect((await store.listCases({ limit: 10 })).cases).toHaveLength(1);
  });

  it('keeps bursts of different keys, and of different producers, apart', async () => {
    const { cases } = await engine();
    const a = debounced(await cases.submit(start('u-1', 1), { startedBy: 'key-a' }));
    const b = debounced(await cases.submit(start('u-2', 1), { startedBy: 'key-a' }));
    const c = debounced(await cases.submit(start('u-1', 1), { startedBy: 'key-b' }));
    // The intake queue and anonymous callers are one producer, as for idempotency keys.
    const d = debounced(await cases.submit(start('u-1', 1), { startedBy: 'intake' }));
    const e = debounced(await cases.submit(start('u-1', 2), { startedBy: 'anonymous' }));
    expect(new Set([a.id, b.id, c.id, d.id]).size).toBe(4);
    expect(e).toMatchObject({ id: d.id, outcome: 'joined' });
  });

  it('starts the burst that never goes quiet at maxWait after its first start', async () => {
    const { cases, clock } = await engine();
    const { id } = debounced(await cases.submit(start('u-1', 0)));
    let last: DebouncedStart | undefined;
    for (let n = 1; n <= 20; n++) {
      clock.time = T0 + n * 4_000;
      last = debounced(await cases.submit(start('u-1', n)));
    }
    expect(last).toMatchObject({ id, startsAt: T0 + 60_000, starts: 21 });
  });

  it('orders starts by when they were made: a late redelivery does not replace a newer input', async () => {
    const { cases, clock, debouncer } = await engine();
    await cases.submit(start('u-1', 2), { at: T0 });
    clock.time = T0 + 1_000;
    await cases.submit(start('u-1', 1), { at: T0 - 500 });
    clock.time = T0 + 6_000;
    expect(await cases.closeBurst(debouncer.closes[0])).toMatchObject({ kind: 'started', record: { input: { rev: 2 } } });
  });

  it('answers a repeated idempotency key with its burst, leaving the input alone, and refuses the key with another request', async () => {
    const { cases, clock, debouncer } = await engine();
    const first = debounced(await cases.submit(start('u-1', 1, { idempotencyKey: 'edit-1' })));
    await cases.submit(start('u-1', 2, { idempotencyKey: 'edit-2' }));
    clock.time = T0 + 1_000;
    expect(debounced(await cases.submit(start('u-1', 1, { idempotencyKey: 'edit-1' })))).toMatchObject({ id: first.id, outcome: 'replayed', starts: 2 });
    await expect(cases.submit(start('u-1', 3, { idempotencyKey: 'edit-1' }))).rejects.toMatchObject({ code: 'IDEMPOTENCY_CONFLICT', details: { caseId: first.id } });
    clock.time = T0 + 6_000;
    expect(await cases.closeBurst(debouncer.closes[0])).toMatchObject({ kind: 'started', record: { id: first.id, input: { rev: 2 } } });
    // After the burst closed, a repeat still names it (for 24 hours, or the start's idempotencyWindow).
    expect(debounced(await cases.submit(start('u-1', 1, { idempotencyKey: 'edit-1' })))).toEqual(expect.objectContaining({ id: first.id, outcome: 'replayed' }));
    clock.time = T0 + 86_400_000;
    expect(debounced(await cases.submit(start('u-1', 1, { idempotencyKey: 'edit-1' })))).toMatchObject({ outcome: 'opened' });
  });

  it('refuses a start whose key reads nothing, before anything is kept', async () => {
    const { cases, debouncer } = await engine();
    await expect(cases.submit({ workflow: 'search-index', input: { rev: 1 } })).rejects.toMatchObject({ code: 'DEBOUNCE_KEY_INVALID', details: { reference: 'input.userId' } });
    expect(debouncer.closes).toEqual([]);
  });

  it('starts a case at once through start(), and for a workflow without debounce through submit()', async () => {
    const { cases, workflows, store } = await engine();
    expect((await cases.start(start('u-1', 1))).created).toBe(true);
    await workflows.apply({ name: 'plain', steps: [{ id: 'a', task: 't.a' }] });
    expect(await cases.submit({ workflow: 'plain' })).toMatchObject({ kind: 'case', created: true });
    expect((await store.listCases({ limit: 10 })).cases).toHaveLength(2);
  });

  it('fails a close job that is not one', async () => {
    const { cases } = await engine();
    await expect(cases.closeBurst({ address: 'a' })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
  });
});
