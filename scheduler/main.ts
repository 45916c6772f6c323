import type { Config } from '../config/load.js';
import { BullConsumers } from '../lib/adapters/bullmq/queues.js';
import { createLogger } from '../lib/obs/logger.js';
import { Metrics } from '../lib/obs/metrics.js';
import { INTAKE_QUEUE, RESULTS_QUEUE } from '../lib/ports/queues.js';
import { createEngine } from '../lib/runtime/engine.js';
import { exitOnFatalErrors, shutdownOnSignals } from '../lib/runtime/lifecycle.js';
import { every } from '../lib/runtime/periodic.js';
import { enforceDeadlines } from './deadlines.js';
import { intakeProcessor } from './intake.js';
import { Reconciler } from './reconciler.js';
import { resultsProcessor } from './results.js';

/** Composition root of `workfleet scheduler`: intake, step reports, deadlines, reconciliation. */
export async function runScheduler(config: Config): Promise<void> {
  const logger = createLogger({ level: config.log.level, name: 'scheduler' });
  exitOnFatalErrors(logger);
  const metrics = new Metrics('scheduler');
  const engine = await createEngine(config, logger, metrics);
  const { cases, advancer, store, queues, workflows, clock } = engine;
  const consumers = new BullConsumers(
    { redisUrl: config.redis.url, prefix: config.redis.prefix, retention: config.jobs },
    { onError: (err, queue) => logger.warn({ err, queue }, 'queue consumer error') },
  );
  const options = { concurrency: config.scheduler.concurrency };
  const intake = consumers.consume(INTAKE_QUEUE, intakeProcessor({ cases, clock, logger, metrics }), options);
  const results = consumers.consume(RESULTS_QUEUE, resultsProcessor({ advancer, clock, logger, metrics }), options);
  const deadlines = every(config.scheduler.deadlineCheckIntervalMs, 'deadlines', logger, async () => {
    await enforceDeadlines({ store, advancer, clock });
  });
  const reconciler = new Reconciler({
    store, queues, workflows, clock, logger,
    redis: queues.connection,
    lockKey: `${config.redis.prefix}:scheduler:reconciler-lock`,
    staleAfterMs: config.scheduler.staleAfterMs,
    lockTtlMs: config.scheduler.reconcileIntervalMs * 4,
  });
  const reconciling = every(config.scheduler.reconcileIntervalMs, 'reconciler', logger, async () => void (await reconciler.run()));
  shutdownOnSignals(logger, [
    { name: 'intake', run: () => intake.close(10_000) },
    { name: 'results', run: () => results.close(10_000) },
    { name: 'deadlines', run: () => deadlines.stop() },
    { name: 'reconciler', run: () => reconciling.stop() },
    { name: 'engine', run: () => engine.close() },
  ], 60_000);
  logger.info({ queues: [INTAKE_QUEUE, RESULTS_QUEUE], concurrency: options.concurrency }, 'scheduler started');
}
