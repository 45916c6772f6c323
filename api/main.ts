import type { Config } from '../config/load.js';
import { BullFleetMonitor } from '../lib/adapters/bullmq/fleet.js';
import { BullSchedules } from '../lib/adapters/bullmq/schedules.js';
import { listenForRevocations, RedisRevocationNotices } from '../lib/adapters/redis/key-revocations.js';
import { KeyService } from '../lib/engine/keys.js';
import { createLogger } from '../lib/obs/logger.js';
import { Metrics } from '../lib/obs/metrics.js';
import { createEngine } from '../lib/runtime/engine.js';
import { exitOnFatalErrors, shutdownOnSignals } from '../lib/runtime/lifecycle.js';
import { BULK_LIMITS } from '../lib/core/bulk.js';
import { every } from '../lib/runtime/periodic.js';
import { announce } from '../lib/runtime/presence.js';
import { fleetReadinessChecks } from '../lib/runtime/readiness.js';
import { buildServer } from './server.js';

/** How long /ready reports "draining" before the server stops accepting, so balancers notice. */
const DRAIN_NOTICE_MS = 5_000;

/** Composition root of `workfleet api`. */
export async function runApi(config: Config): Promise<void> {
  const logger = createLogger({ level: config.log.level, name: 'api' });
  exitOnFatalErrors(logger);
  const metrics = new Metrics('api');
  const engine = await createEngine(config, logger, metrics);
  const monitor = new BullFleetMonitor(engine.queues, config.redis.prefix);
  // A key revoked through any API process (or the CLI) is forgotten by every one at once.
  const keys = new KeyService(engine.store, engine.clock, new RedisRevocationNotices(engine.queues.connection, config.redis.prefix, logger));
  const revocations = await listenForRevocations(engine.queues.connection, config.redis.prefix, keys, logger);
  let draining = false;
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
    isDraining: () => draining,
    checks: fleetReadinessChecks({ store: engine.store, redisHealth: () => monitor.redisHealth() }),
  });
  const address = await app.listen({ host: config.api.host, port: config.api.port });
  const presence = announce(monitor, { role: 'api', queues: [], concurrency: 0 }, engine.clock, logger);
  // Bulk operations whose API process died are resumed by whichever API process looks first.
  const resume = every(BULK_LIMITS.resumeEveryMs, 'bulk-resume', logger, async () => void (await engine.bulk.resumeStalled()));
  shutdownOnSignals(
    logger,
    [
      {
        name: 'drain',
        run: async () => {
          draining = true;
          await new Promise((resolve) => setTimeout(resolve, config.env === 'production' ? DRAIN_NOTICE_MS : 0));
        },
      },
      { name: 'http', run: () => app.close() },
      {
        name: 'bulk',
        run: async () => {
          await resume.stop();
          await engine.bulk.close();
        },
      },
      { name: 'presence', run: () => presence.stop() },
      { name: 'revocations', run: () => revocations.close() },
      { name: 'engine', run: () => engine.close() },
    ],
    30_000,
  );
  logger.info({ address }, 'api listening');
}
