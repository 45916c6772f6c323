import type { Config } from '../config/load.js';
import { BullFleetMonitor } from '../lib/adapters/bullmq/fleet.js';
import { BullConsumers } from '../lib/adapters/bullmq/queues.js';
import { infrastructureReason } from '../lib/adapters/unavailable.js';
import { EpisodeLog } from '../lib/obs/episode-log.js';
import { createLogger } from '../lib/obs/logger.js';
import { startMetricsServer } from '../lib/obs/metrics-server.js';
import { Metrics } from '../lib/obs/metrics.js';
import type { Store } from '../lib/ports/store.js';
import { INTAKE_QUEUE, RESULTS_QUEUE, TIMERS_QUEUE } from '../lib/ports/queues.js';
import { createEngine } from '../lib/runtime/engine.js';
import { Lease } from '../lib/runtime/leadership.js';
import { exitOnFatalErrors, runShutdownSteps, shutdownOnSignals, type RunningRole, type ShutdownStep } from '../lib/runtime/lifecycle.js';
import { every } from '../lib/runtime/periodic.js';
import { announce } from '../lib/runtime/presence.js';
import { fleetReadinessChecks } from '../lib/runtime/readiness.js';
import { enforceDeadlines } from './deadlines.js';
import { intakeProcessor } from './intake.js';
import { Reconciler } from './reconciler.js';
import { resultsProcessor } from './results.js';
import { RetentionSchedule } from './retention.js';

export interface SchedulerOptions {
  /** A store instead of the MongoDB one the config names (the benchmark's in-memory fleet); its owner closes it. */
  store?: Store;
  /**
   * Whether the scheduler owns its process (default true): it exits on a fatal error, and shuts
   * down and exits on SIGTERM or SIGINT. With false (several roles in one process) it installs no
   * process handlers; its host stops it with the returned handle.
   */
  ownsProcess?: boolean;
}

/** How often the lease holder frees lapsed concurrency slots: a dead worker's slots return within its lease plus this. */
const LIMITS_SWEEP_MS = 2_000;
/** Composition root of `workfleet scheduler`: intake, step reports, deadlines, reconciliation, fleet duties. */
export async function runScheduler(config: Config, { store: injected, ownsProcess = true }: SchedulerOptions = {}): Promise<RunningRole> {
  const logger = createLogger({ level: config.log.level, name: 'scheduler' });
  if (ownsProcess) exitOnFatalErrors(logger);
  const metrics = new Metrics('scheduler');
  const engine = await createEngine(config, logger, metrics, injected ? { store: injected } : {});
  const { cases, repository, advancer, store, queues, steps: stepQueues, limits, workflows, clock } = engine;
  const bull = { redisUrl: config.redis.url, prefix: config.redis.prefix, retention: config.jobs };
  // Logged once per episode: Redis out of memory fails every fetch, and each failure used to be a line.
  const episodes = new EpisodeLog(logger);
  const consumers = new BullConsumers(bull, {
    onError: (err, queue) => episodes.failure(`consumer:${queue}:${infrastructureReason(err) ?? err.name}`, err, `queue consumer error on ${queue}`, { queue }),
  });
  // Reports and starts take milliseconds and applying one twice is harmless: a short lock and
  // frequent stall checks get a dead scheduler's jobs to a living one quickly, and a job may be
  // orphaned several times before it is given up on.
  const options = {
    concurrency: config.scheduler.concurrency,
    lockDurationMs: config.scheduler.lockDurationMs,
    stalledCheckIntervalMs: Math.max(1_000, Math.round(config.scheduler.lockDurationMs / 2)),
    maxStalls: 5,
  };
  const intake = consumers.consume(INTAKE_QUEUE, intakeProcessor({ cases, clock, logger, metrics }), options);
  const results = consumers.consume(RESULTS_QUEUE, resultsProcessor({ advancer, clock, logger, metrics }), options);
  // Timer jobs carry the same {caseId, event} as reports: a sleep ends, a signal wait times out.
  const timers = consumers.consume(TIMERS_QUEUE, resultsProcessor({ advancer, clock, logger, metrics }), options);
  const monitor = new BullFleetMonitor(queues, config.redis.prefix);
  const presence = announce(monitor, { role: 'scheduler', queues: [INTAKE_QUEUE, RESULTS_QUEUE, TIMERS_QUEUE], concurrency: options.concurrency }, clock, logger);
  // One scheduler does the fleet's chores (queue depth metrics, retention): whoever holds the lease.
  const lease = new Lease(queues.connection, `${config.redis.prefix}:scheduler:lease`, 15_000).start();
  metrics.watchQueues(async () => (lease.isHeld ? monitor.queueCounts(await monitor.queueNames()) : undefined));
  metrics.watchConcurrency(async () => (lease.isHeld ? (await limits.stats(1)).groups : undefined));
  metrics.watchStuckCases(async () => (lease.isHeld ? (await store.findStuckCases(0)).count : undefined));
  const reconciler = new Reconciler({
    store,
    queues: stepQueues,
    gate: limits,
    workflows,
    repository,
    advancer,
    clock,
    logger,
    monitor,
    redis: queues.connection,
    lockKey: `${config.redis.prefix}:scheduler:reconciler-lock`,
    staleAfterMs: config.scheduler.staleAfterMs,
    stuckAfterMs: config.scheduler.stuckAfterMs,
    lockTtlMs: config.scheduler.reconcileIntervalMs * 4,
  });
  const retention = new RetentionSchedule({ store, clock, days: config.retention.finishedCaseDays });
  const loops = [
    every(config.scheduler.deadlineCheckIntervalMs, 'deadlines', logger, async () => void (await enforceDeadlines({ store, advancer, clock }))),
    every(config.scheduler.reconcileIntervalMs, 'reconciler', logger, async () => void (await reconciler.run())),
    // Slots whose lease lapsed (a worker killed while holding them) go to the next units in line.
    every(LIMITS_SWEEP_MS, 'limits', logger, async () => {
      if (lease.isHeld) await stepQueues.dispatch(await limits.sweep(clock.now()));
    }),
    every(60_000, 'retention', logger, async () => {
      if (lease.isHeld) await retention.runIfDue();
    }),
  ];
  const probes = await startMetricsServer(config.metrics, metrics, fleetReadinessChecks({ store, redisHealth: () => monitor.redisHealth() }));
  const steps: ShutdownStep[] = [
    { name: 'intake', run: () => intake.close(10_000) },
    { name: 'results', run: () => results.close(10_000) },
    { name: 'timers', run: () => timers.close(10_000) },
    { name: 'loops', run: () => Promise.all(loops.map((loop) => loop.stop())) },
    { name: 'fleet', run: () => Promise.all([presence.stop(), lease.stop()]) },
    { name: 'probes', run: async () => void probes?.close() },
    { name: 'engine', run: () => engine.close() },
    { name: 'episodes', run: async () => episodes.close() },
  ];
  if (ownsProcess) shutdownOnSignals(logger, steps, 60_000);
  logger.info({ queues: [INTAKE_QUEUE, RESULTS_QUEUE, TIMERS_QUEUE], concurrency: options.concurrency, metricsPort: config.metrics.port || null }, 'scheduler started');
  return { stop: async () => void (await runShutdownSteps(logger, steps)) };
}
