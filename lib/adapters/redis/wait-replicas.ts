import { Cluster, ReplyError, type Redis } from 'ioredis';
import type { RedisClient } from './connection.js';

/**
 * ioredis's class of Redis error replies (typed `any` there). The errors below are made as replies
 * with Redis's own kinds, so that callers treat them as Redis does (lib/adapters/unavailable.ts).
 */
const RedisReplyError = ReplyError as new (message: string) => Error;

/** The slot of each key asked about (CLUSTER KEYSLOT): a key's slot never changes. */
const slots = new Map<string, number>();

/**
 * The connection that took this process's writes to `key`: on a cluster, the pool's connection
 * to the master now serving `key`'s slot (WAIT counts the writes of the connection it is sent
 * on, so it must go there, not to any node); on one Redis, the connection itself.
 */
async function writerOf(connection: RedisClient, key: string): Promise<Redis> {
  if (!(connection instanceof Cluster)) return connection;
  let slot = slots.get(key);
  if (slot === undefined) {
    slot = Number(await connection.cluster('KEYSLOT', key));
    slots.set(key, slot);
  }
  const owner = connection.slots[slot]?.[0];
  const node = connection.nodes('master').find((candidate) => `${candidate.options.host}:${candidate.options.port}` === owner);
  if (!node) throw new RedisReplyError(`CLUSTERDOWN no known master serves slot ${slot} (key ${key})`);
  return node;
}

/**
 * Redis `WAIT replicas timeoutMs` after writes to `key`: resolves once at least `replicas`
 * replicas of the master that took them have them, so that a failover cannot lose them; fails
 * with a NOREPLICAS error (an unavailability: the API answers 503, consumers retry) when fewer
 * confirm within `timeoutMs`. The writes are done either way: a retry with the same key or job
 * id finds them.
 */
export async function waitForReplicas(connection: RedisClient, key: string, replicas: number, timeoutMs: number): Promise<void> {
  const writer = await writerOf(connection, key);
  const confirmed = Number(await writer.call('WAIT', replicas, timeoutMs));
  if (confirmed < replicas) throw new RedisReplyError(`NOREPLICAS ${confirmed} of ${replicas} replicas confirmed the write within ${timeoutMs} ms`);
}
