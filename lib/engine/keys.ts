import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseKey, type Principal, type Role } from '../core/auth.js';
import { InputInvalidError } from '../core/errors.js';
import type { Clock } from '../ports/clock.js';
import type { KeyStore, StoredKey } from '../ports/store.js';

/**
 * How long a verified key is trusted without asking the store again. Revocations reach every
 * API process at once through `RevocationNotices`; this bounds the delay when a notice is lost
 * (Redis away).
 */
export const KEY_CACHE_MS = 10_000;

/**
 * How long an id the store does not know is remembered as unknown, so that a flood repeating
 * it costs one lookup. Ids are 12 random characters: a key created later never has an id
 * somebody presented before, so remembering it briefly refuses no real key.
 */
export const UNKNOWN_KEY_CACHE_MS = 30_000;

/** Entries each cache holds at most; the oldest goes first, so a flood never empties it. */
const CACHE_ENTRIES = 10_000;

/** Tells every API process that a key was revoked, so that each forgets it at once. */
export interface RevocationNotices {
  /** Never throws: a notice that cannot be sent leaves the other processes to `KEY_CACHE_MS`. */
  publish(id: string): Promise<void>;
}

const ID_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

function randomId(length: number): string {
  const bytes = randomBytes(length);
  return Array.from(bytes, (byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** A key as shown to administrators: never its secret or hash. */
export type KeySummary = Omit<StoredKey, 'hash'>;

const summarize = ({ hash: _hash, ...rest }: StoredKey): KeySummary => rest;

/**
 * API keys: `wfk_<id>_<secret>`, 256 random bits of secret. Only the SHA-256 of the secret is
 * stored (a slow hash adds nothing to a secret of that strength); the presented secret's hash
 * is compared in constant time. Missing, unknown, wrong, revoked and expired keys are
 * indistinguishable to the caller.
 */
export class KeyService {
  private readonly cache = new Map<string, { key: StoredKey; until: number }>();
  /** Ids the store did not have, until when. */
  private readonly unknown = new Map<string, number>();
  /** Lookups under way, so that concurrent requests with one id share one. */
  private readonly pending = new Map<string, Promise<StoredKey | undefined>>();
  /** Bumped by every `forget`: a lookup that began before one must not cache what it read. */
  private generation = 0;

  constructor(
    private readonly store: KeyStore,
    private readonly clock: Clock,
    private readonly notices?: RevocationNotices,
  ) {}

  async create(options: { name: string; roles: readonly Role[]; expiresInMs?: number }): Promise<{ key: string; summary: KeySummary }> {
    if (!/^[\w .:@/-]{1,100}$/.test(options.name)) {
      throw new InputInvalidError([{ path: 'name', message: 'must be 1-100 letters, digits, spaces or ._:@/-' }], 'key');
    }
    if (options.roles.length === 0) throw new InputInvalidError([{ path: 'roles', message: 'must name at least one role' }], 'key');
    const id = randomId(12);
    const secret = randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const stored: StoredKey = {
      id,
      name: options.name,
      roles: [...new Set(options.roles)],
      hash: sha256(secret).toString('hex'),
      createdAt: now,
      ...(options.expiresInMs === undefined ? {} : { expiresAt: now + options.expiresInMs }),
    };
    await this.store.insertKey(stored);
    return { key: `wfk_${id}_${secret}`, summary: summarize(stored) };
  }

  /**
   * The principal a presented key stands for, or undefined for any key that is not valid now.
   * `fresh` reads the key from the store whatever the cache holds: for the routes that manage
   * keys, so that a revoked key whose notice went astray cannot mint or revoke keys.
   */
  async verify(presented: string | undefined, options: { fresh?: boolean } = {}): Promise<Principal | undefined> {
    const parsed = presented === undefined ? undefined : parseKey(presented);
    if (!parsed) return undefined;
    const now = this.clock.now();
    const cached = this.cache.get(parsed.id);
    const stored = !options.fresh && cached && cached.until >= now ? cached.key : await this.lookup(parsed.id, now, options.fresh === true);
    if (!stored) return undefined;
    const matches = timingSafeEqual(sha256(parsed.secret), Buffer.from(stored.hash, 'hex'));
    if (!matches || stored.revokedAt !== undefined || (stored.expiresAt !== undefined && stored.expiresAt <= now)) return undefined;
    return { id: stored.id, name: stored.name, roles: stored.roles };
  }

  /** Drops a key from this process's cache: it is read from the store at its next use. */
  forget(id: string): void {
    this.generation++;
    this.cache.delete(id);
    this.pending.delete(id);
  }

  /** Drops every cached key (after notices may have been missed). */
  forgetAll(): void {
    this.generation++;
    this.cache.clear();
    this.pending.clear();
  }

  private async lookup(id: string, now: number, fresh: boolean): Promise<StoredKey | undefined> {
    if (!fresh) {
      const unknownUntil = this.unknown.get(id);
      if (unknownUntil !== undefined && unknownUntil >= now) return undefined;
      const shared = this.pending.get(id);
      if (shared) return shared;
    }
    const generation = this.generation;
    const read = this.store.getKey(id).then((stored) => {
      if (generation === this.generation) this.remember(id, stored, now);
      return stored;
    });
    if (!fresh) this.pending.set(id, read);
    try {
      return await read;
    } finally {
      if (this.pending.get(id) === read) this.pending.delete(id);
    }
  }

  private remember(id: string, stored: StoredKey | undefined, now: number): void {
    if (stored) {
      this.unknown.delete(id);
      bounded(this.cache, id, { key: stored, until: now + KEY_CACHE_MS });
    } else {
      bounded(this.unknown, id, now + UNKNOWN_KEY_CACHE_MS);
    }
  }

  async list(): Promise<KeySummary[]> {
    return (await this.store.listKeys()).map(summarize);
  }

  /** Revokes a key in the store, then tells every API process to forget it. */
  async revoke(id: string): Promise<boolean> {
    const revoked = await this.store.revokeKey(id, this.clock.now());
    this.forget(id);
    if (revoked) await this.notices?.publish(id);
    return revoked;
  }
}

/** Sets an entry, newest last, dropping the oldest when the map is full. */
function bounded<V>(map: Map<string, V>, id: string, value: V): void {
  map.delete(id);
  if (map.size >= CACHE_ENTRIES) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(id, value);
}
