import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { parseClusterUrl } from './cluster-url.js';

/** A connection to one Redis or to a Redis Cluster: both answer the same commands. */
export type RedisClient = Redis | Cluster;

/**
 * A connection this process owns (and must disconnect): an ioredis Cluster for a
 * `redis+cluster://` URL, else one Redis. `options` apply to each node's connection.
 */
export function redisConnection(url: string, options: RedisOptions = {}): RedisClient {
  const redisOptions: RedisOptions = { maxRetriesPerRequest: null, enableReadyCheck: true, ...options };
  const cluster = parseClusterUrl(url);
  const connection: RedisClient = cluster
    ? new Cluster(cluster.nodes, {
        redisOptions: {
          ...redisOptions,
          ...(cluster.username === undefined ? {} : { username: cluster.username }),
          ...(cluster.password === undefined ? {} : { password: cluster.password }),
          ...(cluster.tls ? { tls: {} } : {}),
        },
      })
    : new Redis(url, redisOptions);
  // Errors surface on the commands that fail; without a listener ioredis would print them raw.
  connection.on('error', () => undefined);
  return connection;
}

/** A new connection to the same Redis (or cluster), with `options` over the original's. */
export function duplicateConnection(connection: RedisClient, options: RedisOptions): RedisClient {
  return connection instanceof Cluster ? connection.duplicate(undefined, { redisOptions: { ...connection.options.redisOptions, ...options } }) : connection.duplicate(options);
}

/**
 * The connections to ask about the whole keyspace or every server (SCAN, INFO): each master of
 * a cluster, where a command sent to the cluster would reach one node only; the one Redis otherwise.
 */
export function masterConnections(connection: RedisClient): Redis[] {
  return connection instanceof Cluster ? connection.nodes('master') : [connection];
}
