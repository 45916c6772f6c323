import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { QueueCounts } from '../ports/fleet.js';

/** How long one reading of the concurrency gate serves the gauges: long enough for one scrape, short enough that the next reads again. */
const SHARED_READING_MS = 1_000;

/**
 * workfleet's Prometheus metrics: one registry per process, base units, `_total` counters,
 * labels bounded by workflow, task, queue and breaker names (never case or job ids). Its own
 * metrics are named `workfleet_*`; prom-client's process and runtime defaults keep their
 * standard `process_*` and `nodejs_*` names. Every series carries the `process` label.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly casesStarted = new Counter({
    name: 'workfleet_cases_started_total',
    help: 'Cases started, by workflow.',
    labelNames: ['workflow'] as const,
    registers: [this.registry],
  });

  readonly casesFinished = new Counter({
    name: 'workfleet_cases_finished_total',
    help: 'Cases that reached a terminal status, by workflow and status.',
    labelNames: ['workflow', 'status'] as const,
    registers: [this.registry],
  });

  readonly transitions = new Counter({
    name: 'workfleet_transitions_total',
    help: 'Case transitions applied, by outcome (applied, duplicate, conflict).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly stepDuration = new Histogram({
    name: 'workfleet_step_duration_seconds',
    help: 'Duration of step attempts in the worker, by task and outcome.',
    labelNames: ['task', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });

  readonly stepRetries = new Counter({
    name: 'workfleet_step_retries_total',
    help: 'Step attempts that failed and will be retried, by task.',
    labelNames: ['task'] as const,
    registers: [this.registry],
  });

  readonly stepDeferrals = new Counter({
    name: 'workfleet_step_deferrals_total',
    help: 'Step attempts deferred because their breaker was open, by breaker.',
    labelNames: ['breaker'] as const,
    registers: [this.registry],
  });

  readonly limitDeferrals = new Counter({
    name: 'workfleet_limit_deferrals_total',
    help: 'Step attempts deferred by a limit without spending an attempt, by kind (rate: over its rate limit; concurrency: no slot) and key group.',
    labelNames: ['kind', 'key_group'] as const,
    registers: [this.registry],
  });

  readonly breakerState = new Gauge({
    name: 'workfleet_breaker_state',
    help: 'Circuit breaker state in this process: 0 closed, 1 half-open, 2 open.',
    labelNames: ['breaker'] as const,
    registers: [this.registry],
  });

  readonly breakerTransitions = new Counter({
    name: 'workfleet_breaker_transitions_total',
    help: 'Circuit breaker state changes, by breaker and new state.',
    labelNames: ['breaker', 'state'] as const,
    registers: [this.registry],
  });

  readonly traceEventsPerWrite = new Histogram({
    name: 'workfleet_trace_events_per_write',
    help: 'Trace events written with one transition (one insert each).',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500],
    registers: [this.registry],
  });

  readonly intakeRejected = new Counter({
    name: 'workfleet_intake_rejected_total',
    help: 'Intake jobs failed as malformed or unstartable, by error code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });

  readonly httpDuration = new Histogram({
    name: 'workfleet_http_request_duration_seconds',
    help: 'HTTP request duration, by method, route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /**
   * Queue depth by queue and state. Only the process given a source reports it (the scheduler
   * holding the metrics lease), so that a sum over the fleet counts each job once.
   */
  watchQueues(source: () => Promise<Record<string, QueueCounts> | undefined>): void {
    new Gauge({
      name: 'workfleet_queue_jobs',
      help: 'Jobs in each BullMQ queue by state, reported by one scheduler for the fleet.',
      labelNames: ['queue', 'state'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const counts: Record<string, QueueCounts> = (await source().catch(() => undefined)) ?? {};
        for (const [queue, byState] of Object.entries(counts)) {
          for (const [state, value] of Object.entries(byState) as Array<[string, number]>) this.set({ queue, state }, value);
        }
      },
    });
  }

  /**
   * Concurrency slots in use and units waiting for one, by key group (the groups steps name, and
   * `workflow:<name>` for a workflow's own key: a bounded set; the keys themselves, unbounded, are
   * in /v1/status), reported by one scheduler for the fleet.
   */
  watchConcurrency(source: () => Promise<ReadonlyArray<{ group: string; inUse: number; waiting: number }> | undefined>): void {
    type Groups = ReadonlyArray<{ group: string; inUse: number; waiting: number }>;
    // Both gauges of one scrape share one reading: prom-client collects a registry's metrics
    // concurrently, so one gauge cannot wait for the other to have read.
    let reading: { at: number; groups: Promise<Groups> } | undefined;
    const read = (): Promise<Groups> => {
      const now = Date.now();
      if (!reading || now - reading.at > SHARED_READING_MS)
        reading = {
          at: now,
          groups: source().then(
            (groups) => groups ?? [],
            () => [],
          ),
        };
      return reading.groups;
    };
    const gauges = [
      { name: 'workfleet_concurrency_in_use', help: 'Concurrency slots held (units admitted or running), by key group, reported by one scheduler for the fleet.', field: 'inUse' },
      { name: 'workfleet_concurrency_waiting', help: 'Units waiting for a concurrency slot, by key group, reported by one scheduler for the fleet.', field: 'waiting' },
    ] as const;
    for (const { name, help, field } of gauges) {
      new Gauge({
        name,
        help,
        labelNames: ['key_group'] as const,
        registers: [this.registry],
        async collect() {
          const groups = await read();
          this.reset();
          for (const group of groups) this.set({ key_group: group.group }, group[field]);
        },
      });
    }
  }

  /** Open cases marked stuck; like queue depth, reported by the one scheduler holding the lease. */
  watchStuckCases(source: () => Promise<number | undefined>): void {
    new Gauge({
      name: 'workfleet_cases_stuck',
      help: 'Open cases that made no progress past SCHEDULER_STUCK_AFTER_MS, reported by one scheduler for the fleet.',
      registers: [this.registry],
      async collect() {
        this.reset();
        const count = await source().catch(() => undefined);
        if (count !== undefined) this.set(count);
      },
    });
  }

  constructor(processName: string) {
    this.registry.setDefaultLabels({ process: processName });
    // No prefix: process_* and nodejs_* keep the names stock Node.js dashboards and alerts use.
    collectDefaultMetrics({ register: this.registry });
  }
}
