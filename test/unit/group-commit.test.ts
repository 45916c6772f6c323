import { describe, expect, it } from 'vitest';
import { isInfrastructureUnavailable } from '../../lib/adapters/unavailable.js';
import { GroupCommit } from '../../lib/concurrency/group-commit.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** A write whose batches finish only when the test says so. */
function controlledWrite() {
  const batches: Array<{ items: readonly number[]; finish: (results?: Array<number | Error>) => void; fail: (error: Error) => void }> = [];
  const write = (items: readonly number[]) =>
    new Promise<ReadonlyArray<number | Error>>((resolve, reject) => {
      batches.push({ items, finish: (results) => resolve(results ?? items.map((item) => item * 10)), fail: reject });
    });
  return { batches, write };
}

describe('GroupCommit', () => {
  it('sends a lone call at once, and calls made meanwhile together in the next batch', async () => {
    const { batches, write } = controlledWrite();
    const group = new GroupCommit(write);
    const first = group.submit(1);
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1]]);
    const later = [group.submit(2), group.submit(3), group.submit(4)];
    await tick();
    // Nothing joins a batch already sent: they wait for the next one.
    expect(batches).toHaveLength(1);
    batches[0]?.finish();
    expect(await first).toBe(10);
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2, 3, 4]]);
    batches[1]?.finish();
    expect(await Promise.all(later)).toEqual([20, 30, 40]);
  });

  it('fails only the items the write answered with an error, and the whole batch when it throws', async () => {
    const { batches, write } = controlledWrite();
    const group = new GroupCommit(write);
    const calls = [group.submit(1), group.submit(2)].map((call) =>
      call.then(
        (value) => value,
        (error: Error) => error.message,
      ),
    );
    await tick();
    batches[0]?.finish([10, new Error('item 2 refused')]);
    expect(await Promise.all(calls)).toEqual([10, 'item 2 refused']);
    const failing = [group.submit(3), group.submit(4)].map((call) => call.catch((error: Error) => error.message));
    await tick();
    batches[1]?.fail(new Error('connection lost'));
    expect(await Promise.all(failing)).toEqual(['connection lost', 'connection lost']);
  });

  it('keeps at most maxInFlight batches on the wire and at most maxBatch items in one', async () => {
    const { batches, write } = controlledWrite();
    const group = new GroupCommit(write, { maxInFlight: 2, maxBatch: 2 });
    const calls = [1, 2, 3, 4, 5].map((item) => group.submit(item));
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([
      [1, 2],
      [3, 4],
    ]);
    batches[1]?.finish();
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1, 2], [3, 4], [5]]);
    batches[0]?.finish();
    batches[2]?.finish();
    expect(await Promise.all(calls)).toEqual([10, 20, 30, 40, 50]);
  });

  it('fails a batch that outlives its deadline as unavailable and lets the next batch go out', async () => {
    const { batches, write } = controlledWrite();
    const group = new GroupCommit(write, { maxInFlight: 1, timeoutMs: 50 });
    const stuck = group.submit(1);
    await tick();
    const next = group.submit(2);
    await tick();
    expect(batches).toHaveLength(1);
    await expect(stuck).rejects.toMatchObject({ name: 'GroupCommitTimeoutError', code: 'ETIMEDOUT' });
    expect(isInfrastructureUnavailable(await stuck.catch((error: unknown) => error))).toBe(true);
    await tick();
    expect(batches.map((batch) => batch.items)).toEqual([[1], [2]]);
    batches[1]?.finish();
    expect(await next).toBe(20);
    // The abandoned write finishing late changes nothing.
    batches[0]?.finish();
  });
});
