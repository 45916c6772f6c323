import type { Config } from '../config/load.js';
import { createLogger } from '../lib/obs/logger.js';
import { Metrics } from '../lib/obs/metrics.js';
import { KeyService } from '../lib/engine/keys.js';
import { createEngine } from '../lib/runtime/engine.js';
import { exitOnFatalErrors, shutdownOnSignals } from '../lib/runtime/lifecycle.js';
import { buildServer } from './server.js';

/** How long /ready reports "draining" before the server stops accepting, so balancers notice. */
const DRAIN_NOTICE_MS = 2_000;

/** Composition root of `workfleet api`. */
export async function runApi(config: Config): Promise<void> {
  const logger = createLogger({ level: config.log.level, name: 'api' });
  exitOnFatalErrors(logger);
  const metrics = new Metrics('api');
  const engine = await createEngine(config, logger, metrics);
  let draining = false;
  const app = await buildServer({
    config, logger, metrics,
    cases: engine.cases,
    workflows: engine.workflows,
    store: engine.store,
    keys: new KeyService(engine.store, engine.clock),
    isDraining: () => draining,
    checks: [
      { name: 'mongodb', check: (timeoutMs) => engine.store.ping(timeoutMs) },
      { name: 'redis', check: async () => void (await engine.queues.connection.ping()) },
    ],
  });
  const address = await app.listen({ host: config.api.host, port: config.api.port });
  shutdownOnSignals(logger, [
    { name: 'drain', run: async () => { draining = true; await new Promise((resolve) => setTimeout(resolve, config.env === 'production' ? DRAIN_NOTICE_MS : 0)); } },
    { name: 'http', run: () => app.close() },
    { name: 'engine', run: () => engine.close() },
  ], 30_000);
  logger.info({ address }, 'api listening');
}
