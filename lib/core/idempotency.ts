/**
 * Whose an idempotency key is. A case's key is unique within its scope only, so that:
 * - two producers (API keys) using one key get a case each, and neither learns of the other's;
 * - keys the engine derives (a key-less intake job's, a sub-workflow's) live apart from every
 *   key a producer can send, so no producer can claim one in advance.
 * A scope never contains "|": stores join scope and key as `<scope>|<key>`.
 */
export type IdempotencyScope = string;

/** Keys the engine derives itself; no request can name this scope. */
export const DERIVED_SCOPE: IdempotencyScope = 'engine';

/**
 * Producers without an identity: the intake queue (anyone who can write to the fleet's Redis) and,
 * with auth off, every HTTP caller (the anonymous administrator). They share one scope, so that
 * in development a key still makes one case whichever door it came through.
 */
const OPEN_SCOPE: IdempotencyScope = 'open';

/** `startedBy` of cases from the intake queue. */
export const INTAKE_STARTER = 'intake';
/** `startedBy` of HTTP requests with auth off. */
const ANONYMOUS_STARTER = 'anonymous';

/** The scope of a key a producer sent: its API key's id, or the open scope for producers without one. */
export function producerScope(startedBy: string | undefined): IdempotencyScope {
  return startedBy === undefined || startedBy === INTAKE_STARTER || startedBy === ANONYMOUS_STARTER ? OPEN_SCOPE : `key:${startedBy}`;
}

/** The one string a store keeps unique: scope and key, joined where no scope has the separator. */
export function scopedKey(scope: IdempotencyScope | undefined, key: string): string {
  return `${scope ?? ''}|${key}`;
}

/** The scope part of `scopedKey`'s answer. */
export function scopeOf(scoped: string): IdempotencyScope | undefined {
  const at = scoped.indexOf('|');
  return at > 0 ? scoped.slice(0, at) : undefined;
}

/**
 * The scope of a key stored before keys had scopes (the store's upgrade gives each one): keys
 * the engine derived then (`intake:<job id>` of a key-less job, `child:…` of a sub-workflow) go
 * to the derived scope, every other key to its producer's.
 */
export function legacyScope(doc: { idempotencyKey: string; startedBy?: string; requestId?: string; parent?: unknown }): IdempotencyScope {
  const { idempotencyKey: key, startedBy, requestId, parent } = doc;
  if (key.startsWith('child:') && parent !== undefined && parent !== null) return DERIVED_SCOPE;
  if (startedBy === INTAKE_STARTER && key.startsWith('intake:') && requestId === key) return DERIVED_SCOPE;
  return producerScope(startedBy);
}

/** The longest `idempotencyWindow` a start may ask for: 365 days (without one, a key is kept for ever). */
export const MAX_IDEMPOTENCY_WINDOW_MS = 365 * 86_400_000;

/**
 * Whether a case's idempotency key has stopped answering for it at `now`: its start gave the key
 * a window (`idempotencyWindow`, stored as `idempotencyExpiresAt`) and the window is over. The
 * next start with the key then makes a new case, and the key moves to it. Without a window a key
 * answers for ever (until retention deletes its case).
 */
export function keyExpired(record: { idempotencyExpiresAt?: number }, now: number): boolean {
  return record.idempotencyExpiresAt !== undefined && record.idempotencyExpiresAt <= now;
}
