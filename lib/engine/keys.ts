import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseKey, type Principal, type Role } from '../core/auth.js';
import { InputInvalidError } from '../core/errors.js';
import type { Clock } from '../ports/clock.js';
import type { KeyStore, StoredKey } from '../ports/store.js';

/** How long a verified key is trusted without asking the store again (bounds revocation delay). */
export const KEY_CACHE_MS = 10_000;

const ID_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';

function randomId(length: number): string {
  const bytes = randomBytes(length);
  return Array.from(bytes, (byte) => ID_ALPHABET[byte % ID_ALPHABET.length]).join('');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/** A key as shown to administrators: never its secret or hash. */
export type KeySummary = Omit<StoredKey, 'hash'>;

export const summarize = ({ hash: _hash, ...rest }: StoredKey): KeySummary => rest;

/**
 * API keys: `wfk_<id>_<secret>`, 256 random bits of secret. Only the SHA-256 of the secret is
 * stored (a slow hash adds nothing to a secret of that strength); the presented secret's hash
 * is compared in constant time. Missing, unknown, wrong, revoked and expired keys are
 * indistinguishable to the caller.
 */
export class KeyService {
  private readonly cache = new Map<string, { key: StoredKey; until: number }>();

  constructor(
    private readonly store: KeyStore,
    private readonly clock: Clock,
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

  /** The principal a presented key stands for, or undefined for any key that is not valid now. */
  async verify(presented: string | undefined): Promise<Principal | undefined> {
    const parsed = presented === undefined ? undefined : parseKey(presented);
    if (!parsed) return undefined;
    const now = this.clock.now();
    let key = this.cache.get(parsed.id);
    if (!key || key.until < now) {
      const stored = await this.store.getKey(parsed.id);
      if (!stored) return undefined;
      key = { key: stored, until: now + KEY_CACHE_MS };
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(parsed.id, key);
    }
    const { key: stored } = key;
    const matches = timingSafeEqual(sha256(parsed.secret), Buffer.from(stored.hash, 'hex'));
    if (!matches || stored.revokedAt !== undefined || (stored.expiresAt !== undefined && stored.expiresAt <= now)) return undefined;
    return { id: stored.id, name: stored.name, roles: stored.roles };
  }

  async list(): Promise<KeySummary[]> {
    return (await this.store.listKeys()).map(summarize);
  }

  async revoke(id: string): Promise<boolean> {
    this.cache.delete(id);
    return this.store.revokeKey(id, this.clock.now());
  }
}
