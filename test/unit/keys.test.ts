import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../lib/adapters/memory/store.js';
import { KEY_CACHE_MS, KeyService, UNKNOWN_KEY_CACHE_MS } from '../../lib/engine/keys.js';
import type { StoredKey } from '../../lib/ports/store.js';
import { ManualClock } from '../helpers/memory-engine.js';
import { T0 } from './fixtures.js';

/** KeyService on the MemoryStore: what a key stands for, and how long a process trusts what it read. */

/** Counts the key reads, and can hold them until the test lets them answer. */
class KeyReads extends MemoryStore {
  reads = 0;
  private held: Array<() => void> | undefined;

  hold(): void {
    this.held = [];
  }

  release(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const answer of held) answer();
  }

  override async getKey(id: string): Promise<StoredKey | undefined> {
    this.reads += 1;
    // Read now, answered when released: what a slow read returns is what the store held when it was asked.
    const stored = await super.getKey(id);
    if (this.held) await new Promise<void>((resolve) => this.held?.push(resolve));
    return stored;
  }
}

function rig() {
  const store = new KeyReads();
  const clock = new ManualClock(T0);
  const published: string[] = [];
  const keys = new KeyService(store, clock, { publish: async (id) => void published.push(id) });
  return { store, clock, keys, published };
}

describe('KeyService', () => {
  it('makes a key that stands for its name and roles; any other key stands for nothing', async () => {
    const { keys } = rig();
    const { key, summary } = await keys.create({ name: 'ci producer', roles: ['producer', 'producer', 'viewer'] });
    expect(key).toMatch(/^wfk_[A-Za-z0-9]{12}_[\w-]{43}$/);
    expect(summary).toEqual({ id: expect.any(String), name: 'ci producer', roles: ['producer', 'viewer'], createdAt: T0 });
    expect(await keys.verify(key)).toEqual({ id: summary.id, name: 'ci producer', roles: ['producer', 'viewer'] });
    const wrongSecret = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    for (const presented of [wrongSecret, 'wfk_nope', undefined, `wfk_AAAAAAAAAAAA_${key.split('_')[2]}`]) expect(await keys.verify(presented)).toBeUndefined();
    expect((await keys.list()).map((listed) => Object.keys(listed))).toEqual([['id', 'name', 'roles', 'createdAt']]);
  });

  it('refuses a key without a role or with a name it cannot show', async () => {
    const { keys, store } = rig();
    await expect(keys.create({ name: 'ok', roles: [] })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    await expect(keys.create({ name: 'bad\nname', roles: ['viewer'] })).rejects.toMatchObject({ code: 'INPUT_INVALID' });
    expect(await store.listKeys()).toEqual([]);
  });

  it('stops honouring a key when it expires', async () => {
    const { keys, clock } = rig();
    const { key } = await keys.create({ name: 'short', roles: ['viewer'], expiresInMs: 60_000 });
    clock.time = T0 + 59_999;
    expect(await keys.verify(key)).toBeDefined();
    clock.time = T0 + 60_000;
    expect(await keys.verify(key)).toBeUndefined();
  });

  it('trusts a key it read for KEY_CACHE_MS: a revocation elsewhere whose notice is lost takes that long, a fresh read none', async () => {
    const { keys, store, clock } = rig();
    const { key, summary } = await keys.create({ name: 'k', roles: ['admin'] });
    expect(await keys.verify(key)).toBeDefined();
    expect(await keys.verify(key)).toBeDefined();
    expect(store.reads).toBe(1);
    // Another API process revokes it; this one never hears of it.
    const elsewhere = new KeyService(store, clock);
    expect(await elsewhere.revoke(summary.id)).toBe(true);
    expect(await keys.verify(key)).toBeDefined();
    expect(await keys.verify(key, { fresh: true })).toBeUndefined();
    clock.time = T0 + KEY_CACHE_MS + 1;
    expect(await keys.verify(key)).toBeUndefined();
  });

  it('forgets a key it revokes at once, and tells the other processes', async () => {
    const { keys, published } = rig();
    const { key, summary } = await keys.create({ name: 'k', roles: ['admin'] });
    expect(await keys.verify(key)).toBeDefined();
    expect(await keys.revoke(summary.id)).toBe(true);
    expect(published).toEqual([summary.id]);
    expect(await keys.verify(key)).toBeUndefined();
    // Revoking what is not there tells nobody.
    expect(await keys.revoke('AAAAAAAAAAAA')).toBe(false);
    expect(published).toEqual([summary.id]);
  });

  it('reads an unknown id once for a flood of it, and remembers it as unknown for a while', async () => {
    const { keys, store, clock } = rig();
    const unknown = `wfk_AAAAAAAAAAAA_${'x'.repeat(43)}`;
    store.hold();
    const flood = Array.from({ length: 20 }, () => keys.verify(unknown));
    store.release();
    expect(await Promise.all(flood)).toEqual(Array.from({ length: 20 }, () => undefined));
    expect(store.reads).toBe(1);
    expect(await keys.verify(unknown)).toBeUndefined();
    expect(store.reads).toBe(1);
    clock.time = T0 + UNKNOWN_KEY_CACHE_MS + 1;
    expect(await keys.verify(unknown)).toBeUndefined();
    expect(store.reads).toBe(2);
  });

  it('does not cache what a read begun before a revocation notice returns', async () => {
    const { keys, store, clock } = rig();
    const { key, summary } = await keys.create({ name: 'k', roles: ['admin'] });
    store.hold();
    const slow = keys.verify(key);
    // The read has the key as it was; meanwhile another process revokes it and the notice arrives.
    await new KeyService(store, clock).revoke(summary.id);
    keys.forget(summary.id);
    store.release();
    expect(await slow).toBeDefined();
    expect(await keys.verify(key)).toBeUndefined();
    expect(store.reads).toBe(2);
  });
});
