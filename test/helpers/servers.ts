import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { startFerretDB, type FerretDB } from '../../lib/local-servers/ferretdb.js';
import { startRedisServer, type RedisServer } from '../../lib/local-servers/redis-server.js';
import { createDatabase, dropDatabase } from '../../lib/local-servers/postgres.js';

/**
 * The real servers a test suite talks to: its own redis-server and FerretDB (SQLite in a temp
 * dir) on free ports, or the MongoDB named by MONGO_URL. Each test takes a unique database and
 * BullMQ prefix from `namespace()`, so tests never see each other's data.
 */
export interface TestServers {
  redis: RedisServer;
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
  const redis = await startRedisServer({ dir: join(dir, 'redis') });
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
