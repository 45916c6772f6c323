import type { Config } from '../../config/load.js';
import { RedisStartDebouncer } from '../adapters/bullmq/debounce.js';
import { BullQueues } from '../adapters/bullmq/queues.js';
import { RedisLimits } from '../adapters/redis/limits.js';
import { GatedQueues } from '../engine/gated-queues.js';
import { CaseSlots } from '../engine/case-slots.js';
import { MongoStore } from '../adapters/mongo/store.js';
import { isTerminalCase } from '../core/state.js';
import { CaseAdvancer } from '../engine/advancer.js';
import { BulkService } from '../engine/bulk.js';
import { CaseRepository } from '../engine/case-repository.js';
import { CaseService } from '../engine/cases.js';
import { DebouncedStarts } from '../engine/debounced-starts.js';
import { StartRequests } from '../engine/start-requests.js';
import { WorkflowRegistry } from '../engine/workflows.js';
import type { Logger } from '../obs/logger.js';
import type { Metrics } from '../obs/metrics.js';
import { systemClock } from '../ports/clock.js';
import type { Store } from '../ports/store.js';
import { uuidv7 } from './ids.js';
import { maskUrl, reachRedis, reachStore } from './reach.js';

/** The collaborators every process shares, wired from the config; `close` releases them in reverse. */
export type Engine = Awaited<ReturnType<typeof createEngine>>;

export interface EngineOptions {
  /**
   * The store to use instead of the MongoDB one `config.mongo.url` names (the benchmark's
   * in-memory runs, engine tests). It is initialised here but stays its owner's: `close` leaves it open.
   */
  store?: Store;
}

export async function createEngine(config: Config, logger: Logger, metrics: Metrics, options: EngineOptions = {}) {
  const owned = options.store === undefined;
  // Every store operation is bounded: a connection that hears nothing for this long is closed and
  // its operation fails (the driver's socketTimeoutMS; its timeoutMS has no effect since driver 7),
  // so a paused MongoDB fails requests and consumer jobs in time, to be retried, instead of holding them.
  const ms = config.mongo.operationTimeoutMs;
  const timeout = ms > 0 ? { socketTimeoutMS: ms, connectTimeoutMS: Math.min(ms, 10_000) } : {};
  const store: Store = options.store ?? new MongoStore({ url: config.mongo.url, client: timeout });
  // Said first, so that a process on the wrong servers is visible before anything else happens.
  logger.info({ redis: maskUrl(config.redis.url), mongodb: owned ? maskUrl(config.mongo.url) : 'the store given by the host' }, 'using Redis and MongoDB');
  const queues = new BullQueues({
    redisUrl: config.redis.url,
    prefix: config.redis.prefix,
    retention: config.jobs,
    waitReplicas: { replicas: config.redis.waitReplicas, timeoutMs: config.redis.waitTimeoutMs },
  });
  try {
    await Promise.all([reachStore(store, config.mongo.url), reachRedis(queues.connection, config.redis.url)]);
  } catch (error) {
    await queues.close().catch(() => undefined);
    if (owned) await store.close().catch(() => undefined);
    throw error;
  }
  const clock = systemClock;
  // Keyed units wait for their concurrency slot in the gate (Redis, shared by the fleet) before their job goes to its queue.
  const limits = new RedisLimits(queues.connection, { prefix: config.redis.prefix });
  const steps = new GatedQueues(queues, limits, clock);
  const workflows = new WorkflowRegistry(store, clock);
  const newId = () => uuidv7(clock.now());
  // Built in this order, nothing set afterwards: child cases are prepared by StartRequests (no
  // CaseService needed) and created by the repository, which the advancer and the service use.
  const starts = new StartRequests({ store, workflows, clock, newId });
  const repository = new CaseRepository({
    store,
    workflows,
    queues: steps,
    clock,
    children: starts,
    slots: new CaseSlots({ gate: limits, clock }),
    onCreated: (record) => metrics.casesStarted.inc({ workflow: record.workflow }),
  });
  const advancer = new CaseAdvancer({
    repository,
    workflows,
    clock,
    logger,
    budget: { maxCaseBytes: config.cases.maxBytes },
    hooks: {
      onConflict: () => metrics.transitions.inc({ outcome: 'conflict' }),
      onApplied: (before, after, events) => {
        metrics.transitions.inc({ outcome: 'applied' });
        metrics.traceEventsPerWrite.observe(events.length);
        if (!isTerminalCase(before.status) && isTerminalCase(after.status)) {
          metrics.casesFinished.inc({ workflow: after.workflow, status: after.status });
        }
      },
    },
  });
  // Bursts of debounced starts live in Redis, beside the intake queue that closes them: one burst fleet-wide.
  const debouncer = new RedisStartDebouncer(queues, { prefix: config.redis.prefix, retention: config.jobs, waitReplicas: { replicas: config.redis.waitReplicas, timeoutMs: config.redis.waitTimeoutMs } });
  const debounced = new DebouncedStarts({ debouncer, clock, newId });
  const cases = new CaseService({ store, workflows, starts, debounced, repository, advancer, clock });
  const bulk = new BulkService({ store, cases, clock, newId, logger });
  return {
    store,
    queues,
    /** The step queues behind the concurrency gate: what the engine enqueues to. */
    steps,
    limits,
    clock,
    workflows,
    repository,
    advancer,
    cases,
    bulk,
    async close() {
      await bulk.close();
      await queues.close();
      if (owned) await store.close();
    },
  };
}
