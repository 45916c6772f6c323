import { duplicateConnection, redisConnection, type RedisClient } from './connection.js';
import type { RevocationNotices } from '../../engine/keys.js';
import type { Logger } from '../../obs/logger.js';

/** The channel every API process of one fleet (one BullMQ prefix) hears revocations on. */
const revocationChannel = (prefix: string) => `${prefix}:workfleet:keys:revoked`;

/** Longest a revocation waits for its notice to go out; past it the cache window applies. */
const PUBLISH_TIMEOUT_MS = 1_000;

/** Longest a starting API waits to be subscribed before it serves anyway (on the cache window). */
const SUBSCRIBE_TIMEOUT_MS = 5_000;

/** `work`, or a rejection after `ms`; the timer never outlives it. */
async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`no answer from Redis in ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Revocation notices on Redis pub/sub: a revoked key's id, published once. */
export class RedisRevocationNotices implements RevocationNotices {
  constructor(
    private readonly connection: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
  ) {}

  async publish(id: string): Promise<void> {
    try {
      await within(PUBLISH_TIMEOUT_MS, this.connection.publish(revocationChannel(this.prefix), id));
    } catch (error) {
      // The key is revoked in the store already; the other processes' caches lapse on their own.
      this.logger.warn({ err: error, keyId: id }, 'could not announce a key revocation; other API processes refuse the key when their cache lapses (10 s)');
    }
  }
}

/**
 * Listens for revocations on a connection of its own (a subscribed connection can do nothing
 * else) and makes `keys` forget each revoked key. After a lost connection every cached key is
 * forgotten, since notices sent meanwhile were missed (ioredis subscribes again by itself).
 */
export async function listenForRevocations(connection: RedisClient, prefix: string, keys: { forget(id: string): void; forgetAll(): void }, logger: Logger): Promise<{ close(): Promise<void> }> {
  const subscriber = duplicateConnection(connection, { maxRetriesPerRequest: null });
  subscriber.on('error', () => undefined); // a lost connection shows as 'close' below
  let lost = false;
  subscriber.on('close', () => (lost = true));
  subscriber.on('ready', () => {
    if (!lost) return;
    lost = false;
    keys.forgetAll();
    logger.info('revocation notices heard again; cached keys forgotten');
  });
  subscriber.on('message', (channel: string, id: string) => {
    if (channel === revocationChannel(prefix)) keys.forget(id);
  });
  // ioredis keeps trying when Redis is away; the API serves meanwhile, on the cache window.
  await within(SUBSCRIBE_TIMEOUT_MS, subscriber.subscribe(revocationChannel(prefix))).catch((error: unknown) =>
    logger.warn({ err: error }, 'not yet subscribed to key revocations; until then a revoked key is refused when the cache lapses (10 s)'),
  );
  return {
    async close() {
      subscriber.disconnect();
    },
  };
}

/**
 * Announces a revocation from a process that holds no Redis connection (the CLI, which revokes
 * on the database directly): true when Redis took the notice.
 */
export async function announceRevocation(redisUrl: string, prefix: string, id: string): Promise<boolean> {
  const connection = redisConnection(redisUrl, { maxRetriesPerRequest: 1, connectTimeout: PUBLISH_TIMEOUT_MS });
  try {
    await within(PUBLISH_TIMEOUT_MS * 3, connection.publish(revocationChannel(prefix), id));
    return true;
  } catch {
    return false;
  } finally {
    connection.disconnect();
  }
}
