import { Job, Queue, Worker, type JobsOptions } from 'bullmq';
import { RetryLaterError, settleOutcome } from './settle.js';
import { GroupCommit } from '../../concurrency/group-commit.js';
import { ConsumerBackoff } from './consumer-backoff.js';
import { isClusterUrl } from '../redis/cluster-url.js';
import { redisConnection, type RedisClient } from '../redis/connection.js';
import { waitForReplicas } from '../redis/wait-replicas.js';
import { toStepPayload } from '../../core/step-payload.js';
import {
  CANCEL_REASON,
  RESULTS_QUEUE,
  SHUTDOWN_REASON,
  TIMERS_QUEUE,
  type Timer,
  type Consumer,
  type ConsumerOptions,
  type Delivery,
  type JobState,
  type Outcome,
  type Processor,
  type QueueConsumers,
  type StepJobInfo,
  type StepReport,
  type StepToEnqueue,
  type TaskQueues,
} from '../../ports/queues.js';

/** How long finished jobs stay visible in Bull Board before BullMQ removes them. */
export interface JobRetention {
  /** Seconds a completed job is kept. Default 3600. */
  keepCompletedSeconds: number;
  /** Completed jobs kept per queue at most. Default 1000. */
  keepCompletedCount: number;
  /** Seconds a failed job is kept. Default 604800 (7 days). */
  keepFailedSeconds: number;
  /** Entries kept in each queue's event stream. Default 1000 (BullMQ's own default is 10,000). */
  eventsMaxLength?: number;
}

export interface BullOptions {
  redisUrl: string;
  /** BullMQ key prefix. Default "workfleet". */
  prefix: string;
  retention: JobRetention;
  /** Replicas that must confirm each batch of added jobs (Redis WAIT) before it counts as added; 0 or absent: none. */
  waitReplicas?: { replicas: number; timeoutMs: number };
}

/** How long one batch of adds (with its WAIT) may take before its callers are told Redis is unavailable. */
const ENQUEUE_TIMEOUT_MS = 10_000;

/** BullMQ's highest priority number (the lowest priority). */
const MAX_PRIORITY = 2_097_152;

/** The backoff type of step jobs: the delay is decided by the worker and carried by the error. */
const BACKOFF_TYPE = 'workfleet';

/**
 * BullMQ's key prefix for `queue`. On one Redis it is the fleet's prefix, as it always was
 * (`workfleet:steps:wait`). On a Redis Cluster the queue's name follows as a hash tag
 * (`workfleet:{steps}:steps:wait`): BullMQ's scripts take several keys of one queue at once, which
 * a cluster allows only within one slot, and the tag puts all of a queue's keys in one slot while
 * different queues spread over the masters.
 */
export function queuePrefix(prefix: string, queue: string, cluster: boolean): string {
  return cluster ? `${prefix}:{${queue}}` : prefix;
}

/** The queue whose `meta` key `key` is, under `prefix`; undefined for any other key. */
export function queueOfMetaKey(prefix: string, key: string, cluster: boolean): string | undefined {
  if (!key.startsWith(`${prefix}:`) || !key.endsWith(':meta')) return undefined;
  const rest = key.slice(prefix.length + 1, -':meta'.length);
  if (!cluster) return rest;
  // `{name}:name`: the name is the second half; the first must say the same.
  const name = rest.slice((rest.length + 1) / 2 + 1);
  return rest === `{${name}}:${name}` ? name : undefined;
}

/** A report's job id: one job per distinct report, so a re-sent report is not queued twice. */
function reportJobId(report: StepReport): string {
  const { event } = report;
  const parts = [report.caseId, 'stepId' in event ? event.stepId : '_', event.type];
  if ('run' in event && event.run) parts.push(`r${event.run}`);
  if ('instance' in event && event.instance !== undefined) parts.push(`i${event.instance}`);
  if ('iteration' in event && event.iteration !== undefined) parts.push(`n${event.iteration}`);
  if ('compensation' in event && event.compensation) parts.push('undo');
  if ('attempt' in event) parts.push(String(event.attempt));
  parts.push(String(event.at));
  return parts.join('.');
}

/** One job for a grouped addBulk. */
interface JobToAdd {
  queue: string;
  name: string;
  data: unknown;
  opts: JobsOptions;
}

/** The Redis channel where cancellations of active jobs are announced to every consumer. */
const cancelChannel = (prefix: string) => `${prefix}:workfleet:cancel`;

/** The TaskQueues port on BullMQ; one instance per process, sharing one Redis connection. */
export class BullQueues implements TaskQueues {
  private readonly queues = new Map<string, Queue>();
  readonly connection: RedisClient;
  /** Whether the Redis is a cluster (a `redis+cluster://` URL): queues' keys then carry hash tags. */
  readonly cluster: boolean;
  /**
   * Jobs added by concurrent callers (50 handlers finishing, 50 cases advancing) go out as one
   * addBulk per queue, one MULTI round trip, instead of one each. Each caller still returns only
   * once its own jobs are in Redis.
   */
  private readonly adds: GroupCommit<readonly JobToAdd[], void>;

  constructor(private readonly options: BullOptions) {
    // Producers should fail fast when Redis is away rather than hang an HTTP request.
    this.connection = redisConnection(options.redisUrl, { maxRetriesPerRequest: 3 });
    this.cluster = isClusterUrl(options.redisUrl);
    this.adds = new GroupCommit<readonly JobToAdd[], void>(
      async (batches) => {
        const byQueue = new Map<string, Array<{ name: string; data: unknown; opts: JobsOptions }>>();
        for (const { queue, name, data, opts } of batches.flat()) {
          const list = byQueue.get(queue) ?? [];
          list.push({ name, data, opts });
          byQueue.set(queue, list);
        }
        await Promise.all(
          [...byQueue].map(async ([queue, list]) => {
            await this.queue(queue).addBulk(list);
            const wait = this.options.waitReplicas;
            if (wait && wait.replicas > 0) await waitForReplicas(this.connection, `${queuePrefix(this.options.prefix, queue, this.cluster)}:${queue}:meta`, wait.replicas, wait.timeoutMs);
          }),
        );
        return batches.map(() => undefined);
      },
      // Bounded: an addBulk stuck on a connection to a node that died (a failover) must not hold
      // every later enqueue; its callers fail as Redis-unavailable and retry (adds are idempotent).
      { maxInFlight: 2, timeoutMs: ENQUEUE_TIMEOUT_MS },
    );
  }

  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, {
        connection: this.connection,
        prefix: queuePrefix(this.options.prefix, name, this.cluster),
        ...(this.options.retention.eventsMaxLength === undefined ? {} : { streams: { events: { maxLen: this.options.retention.eventsMaxLength } } }),
      });
      queue.on('error', () => undefined); // connection errors surface on the calls that fail
      this.queues.set(name, queue);
    }
    return queue;
  }

  async enqueueSteps(jobs: readonly StepToEnqueue[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.adds.submit(
      // The payload is the rendered input and the workflow version (lib/core/step-payload.ts);
      // how long finished jobs are kept is the consumers' setting: every field stays short.
      // A slot's rank becomes the job's BullMQ priority: the first slot of every key is served
      // before the second of any, so keys take turns (jobs without one come before all of them).
      jobs.map(({ queue, jobId, job, rank }) => ({
        queue,
        name: job.task,
        data: toStepPayload(job),
        opts: { jobId, attempts: job.maxAttempts, backoff: { type: BACKOFF_TYPE }, ...(rank === undefined ? {} : { priority: Math.min(Math.max(1, rank), MAX_PRIORITY) }) },
      })),
    );
  }

  async replaceSteps(jobs: readonly StepToEnqueue[]): Promise<void> {
    await this.removeSteps(jobs);
    await this.enqueueSteps(jobs);
  }

  async removeSteps(jobs: ReadonlyArray<{ queue: string; jobId: string }>): Promise<void> {
    await Promise.all(jobs.map(({ queue, jobId }) => this.queue(queue).remove(jobId)));
  }

  async promoteSteps(jobs: ReadonlyArray<{ queue: string; jobId: string }>): Promise<void> {
    await Promise.all(
      jobs.map(async ({ queue, jobId }) => {
        const job = await Job.fromId(this.queue(queue), jobId);
        // BullMQ's promote refuses a job that is not delayed (any more: it came back by itself, or
        // is running): nothing to do then, so the refusal is dropped instead of asked in advance.
        await job?.promote().catch(() => undefined);
      }),
    );
  }

  async scheduleTimers(timers: readonly Timer[]): Promise<void> {
    if (timers.length === 0) return;
    const now = Date.now();
    await this.queue(TIMERS_QUEUE).addBulk(
      timers.map((timer) => ({
        name: timer.event.kind,
        data: { caseId: timer.caseId, event: timer.event },
        opts: { jobId: timer.jobId, delay: Math.max(0, timer.at - now), removeOnComplete: true, removeOnFail: { age: this.options.retention.keepFailedSeconds } },
      })),
    );
  }

  async cancelJobs(jobs: ReadonlyArray<{ queue: string; jobId: string }>): Promise<{ running: readonly string[] }> {
    if (jobs.length === 0) return { running: [] };
    const active: string[] = [];
    const running: string[] = [];
    await Promise.all(
      jobs.map(async ({ queue, jobId }) => {
        const state = await this.queue(queue).getJobState(jobId);
        if (state === 'active') {
          active.push(`${queue}/${jobId}`);
          running.push(jobId);
        }
        // Removing refuses a locked (active) job; those are aborted by their worker instead.
        else if (state !== 'unknown' && state !== 'completed' && state !== 'failed')
          await this.queue(queue)
            .remove(jobId)
            .catch(() => 0);
      }),
    );
    if (active.length > 0) await this.connection.publish(cancelChannel(this.options.prefix), JSON.stringify(active));
    return { running };
  }

  async report(reports: readonly StepReport[]): Promise<void> {
    if (reports.length === 0) return;
    await this.adds.submit(
      reports.map((report) => ({
        queue: RESULTS_QUEUE,
        name: report.event.type,
        data: report,
        opts: { jobId: reportJobId(report), removeOnComplete: true, removeOnFail: { age: this.options.retention.keepFailedSeconds } },
      })),
    );
  }

  async stepJobState(queue: string, jobId: string): Promise<JobState['state']> {
    const state = await this.queue(queue).getJobState(jobId);
    return state === 'unknown' ? 'missing' : state;
  }

  async inspectStepJob(queue: string, jobId: string): Promise<StepJobInfo> {
    const job = await Job.fromId(this.queue(queue), jobId);
    if (!job) return { state: 'missing', stalls: 0, attemptsMade: 0 };
    const state = await job.getState();
    return {
      state: state === 'unknown' ? 'missing' : state,
      stalls: job.stalledCounter,
      attemptsMade: job.attemptsMade,
      ...(job.processedOn ? { processedAt: job.processedOn } : {}),
      enqueuedAt: job.timestamp,
      ...(state === 'delayed' ? { dueAt: job.timestamp + job.delay } : {}),
      ...(job.finishedOn ? { finishedAt: job.finishedOn } : {}),
      ...(state === 'completed' && job.returnvalue !== null && job.returnvalue !== undefined ? { result: job.returnvalue as unknown } : {}),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((queue) => queue.close()));
    this.connection.disconnect();
  }
}

function toDelivery<T>(job: Job<T>, signal: AbortSignal): Delivery<T> {
  return {
    id: job.id ?? '',
    queue: job.queueName,
    name: job.name,
    data: job.data,
    enqueuedAt: job.timestamp,
    attempt: job.attemptsMade + 1,
    maxAttempts: job.opts.attempts ?? 1,
    signal,
    reportProgress: (progress) => job.updateProgress(progress),
  };
}

export interface ConsumerEvents {
  /** A consumer-level problem (lost connection, a failed move): logged by the caller. */
  onError?: (error: Error, queue: string) => void;
}

/** The QueueConsumers port on BullMQ Workers. */
export class BullConsumers implements QueueConsumers {
  constructor(
    private readonly options: BullOptions,
    private readonly events: ConsumerEvents = {},
  ) {}

  consume<T>(queue: string, processor: Processor<T>, consumerOptions: ConsumerOptions): Consumer {
    const active = new Map<AbortController, string>();
    // Cancellations are announced to every consumer; the one running the job aborts it.
    const subscriber = redisConnection(this.options.redisUrl);
    void subscriber.subscribe(cancelChannel(this.options.prefix)).catch((error: unknown) => this.events.onError?.(error as Error, queue));
    subscriber.on('message', (_channel: string, message: string) => {
      let ids: unknown;
      try {
        ids = JSON.parse(message);
      } catch {
        return;
      }
      if (!Array.isArray(ids)) return;
      for (const [controller, jobId] of active) if (ids.includes(`${queue}/${jobId}`)) controller.abort(CANCEL_REASON);
    });
    const cluster = isClusterUrl(this.options.redisUrl);
    // On a cluster BullMQ is given a Cluster connection (its options cannot name one); it
    // duplicates it for its blocking commands, and this consumer disconnects it after the worker.
    const connection = cluster ? redisConnection(this.options.redisUrl) : undefined;
    const worker = new Worker<T>(
      queue,
      async (job, token, bullSignal) => {
        const controller = new AbortController();
        const forward = () => controller.abort(bullSignal?.reason ?? 'cancelled');
        bullSignal?.addEventListener('abort', forward, { once: true });
        active.set(controller, job.id ?? '');
        let outcome: Outcome;
        try {
          outcome = await processor(toDelivery(job, controller.signal));
        } finally {
          active.delete(controller);
          bullSignal?.removeEventListener('abort', forward);
        }
        return settleOutcome(job, token, outcome, (error) => this.events.onError?.(error as Error, queue));
      },
      {
        // Options, not a connection: BullMQ then owns its connections and closes them with the worker.
        connection: connection ?? { url: this.options.redisUrl, maxRetriesPerRequest: null },
        prefix: queuePrefix(this.options.prefix, queue, cluster),
        concurrency: consumerOptions.concurrency,
        lockDuration: consumerOptions.lockDurationMs ?? 30_000,
        maxStalledCount: consumerOptions.maxStalls ?? 1,
        stalledInterval: consumerOptions.stalledCheckIntervalMs ?? 30_000,
        // For jobs that did not say (producers' intake jobs): without these, they would stay forever.
        removeOnComplete: { age: this.options.retention.keepCompletedSeconds, count: this.options.retention.keepCompletedCount },
        removeOnFail: { age: this.options.retention.keepFailedSeconds },
        settings: {
          backoffStrategy: (_attemptsMade: number, _type?: string, error?: Error) => (error instanceof RetryLaterError ? error.delayMs : 1_000),
        },
      },
    );
    const backoff = new ConsumerBackoff(worker);
    worker.on('error', (error) => {
      this.events.onError?.(error, queue);
      backoff.onError();
    });

    return {
      close: async (graceMs: number) => {
        backoff.close();
        const closing = worker.close();
        let timer: NodeJS.Timeout | undefined;
        const graceOver = new Promise<'grace'>((resolve) => {
          timer = setTimeout(() => resolve('grace'), graceMs);
          timer.unref();
        });
        if ((await Promise.race([closing.then(() => 'closed' as const), graceOver])) === 'grace') {
          // Handlers had their chance; abort them so their processors hand the jobs back.
          for (const controller of active.keys()) controller.abort(SHUTDOWN_REASON);
          await closing;
        }
        clearTimeout(timer);
        subscriber.disconnect();
        connection?.disconnect();
      },
    };
  }
}
