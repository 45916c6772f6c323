import type { FastifyInstance } from 'fastify';
import { redisPolicyCheck } from '../../api/routes/health.js';
import { buildServer } from '../../api/server.js';
import { loadConfig, type Config } from '../../config/load.js';
import { BullFleetMonitor } from '../../lib/adapters/bullmq/fleet.js';
import { BullSchedules } from '../../lib/adapters/bullmq/schedules.js';
import { listenForRevocations, RedisRevocationNotices } from '../../lib/adapters/redis/key-revocations.js';
import { KeyService } from '../../lib/engine/keys.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import type { Clock } from '../../lib/ports/clock.js';
import type { KeyStore } from '../../lib/ports/store.js';
import { createEngine, type Engine } from '../../lib/runtime/engine.js';
import type { TestServers } from './servers.js';

export interface TestApi {
  app: FastifyInstance;
  engine: Engine;
  keys: KeyService;
  monitor: BullFleetMonitor;
  config: Config;
  prefix: string;
  mongoUrl: string;
  /** A request through inject(); JSON answers parsed, others as text. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers freely
  call: (method: string, url: string, options?: { payload?: unknown; headers?: Record<string, string> }) => Promise<{ status: number; headers: Record<string, unknown>; body: any }>;
  close: () => Promise<void>;
}

export interface StartApiOptions {
  /** Lets a test move time for key expiry. */
  keyClock?: Clock;
  /** Another instance's database and BullMQ prefix: two replicas of one API. */
  namespace?: { mongoUrl: string; prefix: string };
  /** Wraps the real store the keys are read from (to count its lookups). */
  keyStore?: (store: KeyStore) => KeyStore;
}

/**
 * The API on the real engine in its own namespace (database and BullMQ prefix), without a
 * socket, unless `options.namespace` names another instance's.
 */
export async function startApi(servers: TestServers, env: Record<string, string> = {}, options: StartApiOptions = {}): Promise<TestApi> {
  const { mongoUrl, prefix } = options.namespace ?? servers.namespace();
  const config = loadConfig({ REDIS_URL: servers.redis.url, MONGO_URL: mongoUrl, BULLMQ_PREFIX: prefix, LOG_LEVEL: 'silent', ...env });
  const logger = createLogger({ level: 'silent', name: 'test-api' });
  const metrics = new Metrics('api');
  const engine = await createEngine(config, logger, metrics);
  const monitor = new BullFleetMonitor(engine.queues, prefix);
  // Wired as api/main.ts wires it: revocations announced and heard on Redis.
  const notices = new RedisRevocationNotices(engine.queues.connection, prefix, logger);
  const keys = new KeyService(options.keyStore ? options.keyStore(engine.store) : engine.store, options.keyClock ?? engine.clock, notices);
  const revocations = await listenForRevocations(engine.queues.connection, prefix, keys, logger);
  const app = await buildServer({
    config,
    logger,
    metrics,
    clock: engine.clock,
    cases: engine.cases,
    bulk: engine.bulk,
    workflows: engine.workflows,
    store: engine.store,
    keys,
    schedules: new BullSchedules(engine.queues),
    fleet: { monitor, queues: engine.queues },
    limits: engine.limits,
    redis: engine.queues.connection,
    checks: [
      { name: 'mongodb', check: (timeoutMs) => engine.store.ping(timeoutMs) },
      { name: 'redis', check: redisPolicyCheck(() => monitor.redisHealth()) },
    ],
  });
  return {
    app,
    engine,
    keys,
    monitor,
    config,
    prefix,
    mongoUrl,
    call: async (method, url, { payload, headers } = {}) => {
      const response = await app.inject({ method: method as 'GET', url, headers: headers ?? {}, ...(payload === undefined ? {} : { payload: payload as string }) });
      const json = String(response.headers['content-type'] ?? '').startsWith('application/json');
      return { status: response.statusCode, headers: response.headers, body: json ? (JSON.parse(response.body) as unknown) : response.body };
    },
    close: async () => {
      await app.close();
      await revocations.close();
      await engine.close();
    },
  };
}
