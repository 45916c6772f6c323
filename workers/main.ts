import type { Config } from '../config/load.js';
import { BullFleetMonitor } from '../lib/adapters/bullmq/fleet.js';
import { BullConsumers } from '../lib/adapters/bullmq/queues.js';
import { AdvancingReports } from '../lib/engine/advancing-reports.js';
import { infrastructureReason } from '../lib/adapters/unavailable.js';
import { EpisodeLog } from '../lib/obs/episode-log.js';
import { createLogger } from '../lib/obs/logger.js';
import { startMetricsServer } from '../lib/obs/metrics-server.js';
import { Metrics } from '../lib/obs/metrics.js';
import { systemClock } from '../lib/ports/clock.js';
import type { Store } from '../lib/ports/store.js';
import { createEngine } from '../lib/runtime/engine.js';
import { exitOnFatalErrors, runShutdownSteps, shutdownOnSignals, type RunningRole, type ShutdownStep } from '../lib/runtime/lifecycle.js';
import { announce, processId } from '../lib/runtime/presence.js';
import { fleetReadinessChecks } from '../lib/runtime/readiness.js';
import { Breakers } from './breakers.js';
import { loadHandlers } from './handlers.js';
import { taskProcessor } from './run-task.js';
import { expandingStepJobs } from './step-jobs.js';
import { UnitLimits } from './unit-limits.js';

const BREAKER_STATE = { closed: 0, halfOpen: 1, open: 2 } as const;

export interface WorkerOptions {
  /**
   * Whether the worker owns its process (default true): it exits on a fatal error, and shuts
   * down and exits on SIGTERM or SIGINT. With false (several roles in one process) it installs no
   * process handlers; its host stops it with the returned handle.
   */
  ownsProcess?: boolean;
  /** The store to read workflows from and advance cases in, instead of the configured MongoDB (its owner closes it). */
  store?: Store;
}

/** Composition root of `workfleet worker`: one BullMQ consumer per configured queue. */
export async function runWorker(config: Config, { ownsProcess = true, store }: WorkerOptions = {}): Promise<RunningRole> {
  const logger = createLogger({ level: config.log.level, name: 'worker' });
  if (ownsProcess) exitOnFatalErrors(logger);
  const handlers = await loadHandlers(config.worker.handlers);
  // Logged once per episode: Redis out of memory fails every fetch, and each failure used to be a line.
  const episodes = new EpisodeLog(logger);
  const metrics = new Metrics('worker');
  const bull = { redisUrl: config.redis.url, prefix: config.redis.prefix, retention: config.jobs };
  // The engine (store, workflows, advancer): step jobs name their workflow version and the worker
  // reads its settings there; with `advancesCases` it also applies the reports of the steps it
  // finishes. Its queues serve the consumers too.
  const engine = await createEngine(config, logger, metrics, store ? { store } : {});
  const { queues } = engine;
  const reports = config.worker.advancesCases
    ? new AdvancingReports({
        advancer: engine.advancer,
        queues,
        logger,
        onApplied: (result) => result === 'duplicate' && metrics.transitions.inc({ outcome: 'duplicate' }),
      })
    : queues;
  const breakers = new Breakers(config.breaker, (breaker, state) => {
    metrics.breakerState.set({ breaker }, BREAKER_STATE[state]);
    metrics.breakerTransitions.inc({ breaker, state });
    logger.warn({ breaker, state }, 'circuit breaker changed state');
  });
  // A keyed unit's slot is leased for the worker's lock duration: a worker killed while holding it
  // loses it within that time (plus the scheduler's sweep), as it loses the job's lock.
  const limits = new UnitLimits(
    {
      gate: engine.limits,
      rates: engine.limits,
      dispatch: (admissions) => engine.steps.dispatch(admissions),
      clock: systemClock,
      onError: (error) => episodes.failure('limits:renew', error, 'concurrency slot leases not renewed'),
    },
    { leaseMs: config.worker.lockDurationMs },
  );
  const processor = expandingStepJobs(
    { workflows: engine.workflows, reports, clock: systemClock, logger },
    taskProcessor({
      handlers,
      breakers,
      logger,
      metrics,
      queues: reports,
      clock: systemClock,
      workerId: processId(),
      startReportDelayMs: config.worker.startReportDelayMs,
      limits,
    }),
  );
  const consumers = new BullConsumers(bull, {
    onError: (err, queue) => episodes.failure(`consumer:${queue}:${infrastructureReason(err) ?? err.name}`, err, `queue consumer error on ${queue}`, { queue }),
  });
  const running = config.worker.queues.map((queue) =>
    consumers.consume(queue, processor, {
      concurrency: config.worker.concurrency,
      lockDurationMs: config.worker.lockDurationMs,
      maxStalls: config.worker.maxStalls,
      stalledCheckIntervalMs: config.worker.stalledCheckIntervalMs,
    }),
  );
  const monitor = new BullFleetMonitor(queues, config.redis.prefix);
  const presence = announce(monitor, { role: 'worker', queues: [...config.worker.queues], concurrency: config.worker.concurrency }, systemClock, logger);
  const probes = await startMetricsServer(config.metrics, metrics, fleetReadinessChecks({ store: engine.store, redisHealth: () => monitor.redisHealth() }));
  const grace = config.worker.shutdownGraceMs;
  const steps: ShutdownStep[] = [
    { name: 'presence', run: () => presence.stop() },
    { name: 'consumers', run: () => Promise.all(running.map((consumer) => consumer.close(grace))) },
    { name: 'probes', run: async () => void probes?.close() },
    { name: 'breakers', run: async () => breakers.shutdown() },
    { name: 'limits', run: async () => limits.close() },
    { name: 'engine', run: () => engine.close() },
    { name: 'episodes', run: async () => episodes.close() },
  ];
  if (ownsProcess) shutdownOnSignals(logger, steps, grace + 15_000);
  logger.info(
    { queues: config.worker.queues, concurrency: config.worker.concurrency, advancesCases: config.worker.advancesCases, tasks: [...handlers.keys()], metricsPort: config.metrics.port || null },
    'worker started',
  );
  return { stop: async () => void (await runShutdownSteps(logger, steps)) };
}
