import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { MongoClient } from 'mongodb';
import { queuePrefix } from '../../lib/adapters/bullmq/queues.js';
import { isClusterUrl } from '../../lib/adapters/redis/cluster-url.js';
import { redisConnection, type RedisClient } from '../../lib/adapters/redis/connection.js';
import { startFerretDB, type FerretDB } from '../../lib/local-servers/ferretdb.js';
import { startRedisCluster, type RedisCluster } from '../../lib/local-servers/redis-cluster.js';
import { startRedisServer } from '../../lib/local-servers/redis-server.js';
import { createDatabase, dropDatabase } from '../../lib/local-servers/postgres.js';

/**
 * The Redis a suite talks to: its own redis-server, or with WORKFLEET_TEST_REDIS=cluster (`npm
 * run test:cluster`) its own Redis Cluster of 3 masters with a replica each; `url` is then a
 * `redis+cluster://` URL, which every part of the fleet takes as REDIS_URL.
 */
export interface TestRedis {
  url: string;
  /** The cluster's nodes (to find, kill or pause the master of a key); undefined on one Redis. */
  cluster: RedisCluster | undefined;
  stop(): Promise<void>;
}

/** Whether this run's suites get a Redis Cluster (WORKFLEET_TEST_REDIS=cluster) rather than one redis-server. */
const onRedisCluster = process.env.WORKFLEET_TEST_REDIS === 'cluster';

export async function startTestRedis(dir: string): Promise<TestRedis> {
  if (onRedisCluster) {
    const cluster = await startRedisCluster({ dir: join(dir, 'redis-cluster') });
    return { url: cluster.url, cluster, stop: () => cluster.stop() };
  }
  const server = await startRedisServer({ dir: join(dir, 'redis') });
  return { url: server.url, cluster: undefined, stop: () => server.stop() };
}

/** A Queue that disconnects, on close, the cluster connection it was given. */
class OwnedConnectionQueue extends Queue {
  constructor(
    name: string,
    prefix: string,
    private readonly owned: RedisClient,
  ) {
    super(name, { connection: owned, prefix });
  }

  override async close(): Promise<void> {
    await super.close();
    this.owned.disconnect();
  }
}

/**
 * A BullMQ Queue opened as an outside producer (or a test) opens it: on a cluster, with a
 * Cluster connection and the queue's hash-tagged prefix (lib/adapters/bullmq/queues.ts), as the fleet.
 */
export function producerQueue(redisUrl: string, name: string, prefix: string): Queue {
  if (!isClusterUrl(redisUrl)) return new Queue(name, { connection: { url: redisUrl }, prefix });
  return new OwnedConnectionQueue(name, queuePrefix(prefix, name, true), redisConnection(redisUrl));
}

/**
 * The real servers a test suite talks to: its own Redis (see TestRedis) and FerretDB (SQLite in
 * a temp dir) on free ports, or the MongoDB named by MONGO_URL. Each test takes a unique database
 * and BullMQ prefix from `namespace()`, so tests never see each other's data.
 */
export interface TestServers {
  redis: TestRedis;
  /** mongodb://host:port/ without a database. */
  mongoBase: string;
  /** The pid of this suite's FerretDB (to pause it); undefined with an external MONGO_URL. */
  storePid: number | undefined;
  /** A fresh database URL and BullMQ prefix. */
  namespace(): { mongoUrl: string; prefix: string; database: string };
  stop(): Promise<void>;
}

export async function startServers(): Promise<TestServers> {
  const dir = mkdtempSync(join(tmpdir(), 'workfleet-test-'));
  const redis = await startTestRedis(dir);
  let ferret: FerretDB | undefined;
  let mongoBase: string;
  let postgresDatabase: string | undefined;
  const external = process.env.MONGO_URL;
  if (external) {
    mongoBase = external.replace(/\/[^/?]*(\?.*)?$/, '/');
  } else {
    const bin = process.env.WORKFLEET_TEST_FERRETDB_BIN;
    if (!bin) throw new Error('the global setup did not provide a FerretDB binary');
    if (process.env.WORKFLEET_TEST_FERRET_BACKEND === 'postgresql') {
      postgresDatabase = `workfleet_test_${randomBytes(5).toString('hex')}`;
      // FerretDB opens a PostgreSQL connection per concurrent query, unbounded by default (40 were
      // seen under one suite): several suites at once then exhaust max_connections (100).
      ferret = await startFerretDB({ bin, backend: { postgresUrl: `${createDatabase(postgresDatabase)}?pool_max_conns=12` } });
    } else {
      ferret = await startFerretDB({ bin, backend: { sqliteDir: join(dir, 'ferretdb') } });
    }
    mongoBase = ferret.baseUrl;
  }
  const databases: string[] = [];
  return {
    redis,
    mongoBase,
    storePid: ferret?.child.process.pid,
    namespace() {
      const id = randomBytes(5).toString('hex');
      const database = `wf_test_${id}`;
      databases.push(database);
      return { mongoUrl: `${mongoBase}${database}`, prefix: `wft-${id}`, database };
    },
    async stop() {
      if (external) {
        const client = new MongoClient(mongoBase);
        await client.connect();
        for (const database of databases) await client.db(database).dropDatabase();
        await client.close();
      }
      await Promise.all([redis.stop(), ferret?.stop()]);
      if (postgresDatabase) dropDatabase(postgresDatabase);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
