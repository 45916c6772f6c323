import { isIP } from 'node:net';
import convict from 'convict';
import { parseClusterUrl } from '../lib/adapters/redis/cluster-url.js';

/**
 * Every setting of every workfleet process, read from environment variables. The README's
 * configuration table is generated from this schema (`npm run docs:config`), and a test fails
 * when the two drift apart.
 */

const fail = (message: string): never => {
  throw new Error(message);
};

function strictInt(min: number, max: number) {
  return {
    validate(value: unknown) {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail('must be a whole number');
      if ((value as number) < min || (value as number) > max) fail(`must be between ${min} and ${max}`);
    },
    coerce(value: unknown) {
      const text = String(value).trim();
      return /^-?[0-9]+$/.test(text) ? Number(text) : value;
    },
  };
}

convict.addFormats({
  port: strictInt(0, 65_535),
  'positive-int': strictInt(1, 2_147_483_647),
  'non-negative-int': strictInt(0, 2_147_483_647),
  percent: strictInt(1, 100),
  // The bounds of CASE_BUDGET_LIMITS (lib/core/case-size.ts): a 1 MiB output must fit, and a history entry that repeats the case's outputs must stay under 16 MiB.
  'case-bytes': strictInt(2 * 1024 * 1024, 8 * 1024 * 1024),
  boolean: {
    validate(value: unknown) {
      if (typeof value !== 'boolean') fail('must be true or false');
    },
    coerce(value: unknown) {
      const text = String(value).trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(text)) return true;
      if (['false', '0', 'no', 'off'].includes(text)) return false;
      return value;
    },
  },
  'redis-url': {
    validate(value: unknown) {
      let protocol = '';
      try {
        protocol = new URL(String(value)).protocol;
      } catch {
        // not a URL at all: reported below
      }
      if (/^rediss?\+cluster:/.test(String(value))) {
        if (!parseClusterUrl(String(value))) fail("must be redis+cluster://[user:password@]host:port,host:port,… (a Redis Cluster's nodes; one is enough)");
        return;
      }
      if (!['redis:', 'rediss:'].includes(protocol)) fail('must be a redis:// or rediss:// URL, or redis+cluster:// for a Redis Cluster');
    },
  },
  'mongo-url': {
    validate(value: unknown) {
      const text = String(value);
      if (!/^mongodb(\+srv)?:\/\//.test(text)) fail('must be a mongodb:// or mongodb+srv:// URL');
      const path = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]*)/.exec(text)?.[1] ?? '';
      if (!/^[A-Za-z0-9_-]{1,63}$/.test(path)) fail('must name the database in its path, e.g. mongodb://host:27017/workfleet');
    },
  },
  'queue-list': {
    validate(value: unknown) {
      if (!Array.isArray(value) || value.length === 0) fail('must name at least one queue');
      for (const queue of value as unknown[]) {
        if (typeof queue !== 'string' || !/^[a-z][a-z0-9_-]*$/.test(queue)) fail(`"${String(queue)}" is not a queue name`);
        if (['cases', 'results', 'timers'].includes(queue as string)) fail(`"${String(queue)}" is reserved for workfleet itself`);
      }
    },
    coerce(value: unknown) {
      return String(value)
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
    },
  },
  'origin-list': {
    validate(value: unknown) {
      if (!Array.isArray(value)) fail('must be a comma-separated list of origins');
      for (const origin of value as unknown[]) {
        if (typeof origin !== 'string' || !/^https?:\/\/[^/\s]+$/.test(origin)) fail(`"${String(origin)}" is not an origin like https://app.example.com`);
      }
    },
    coerce(value: unknown) {
      return String(value)
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean);
    },
  },
  'trust-proxy': {
    validate(value: unknown) {
      const text = String(value).trim();
      if (text === '' || /^[0-9]+$/.test(text)) return;
      for (const entry of text.split(',').map((part) => part.trim())) {
        const [address = '', bits, ...rest] = entry.split('/');
        const version = isIP(address);
        const width = version === 4 ? 32 : 128;
        const ok = version !== 0 && rest.length === 0 && (bits === undefined || (/^[0-9]{1,3}$/.test(bits) && Number(bits) <= width));
        if (!ok) fail(`"${entry}" is not an address or CIDR range like 10.0.0.0/8; use addresses, ranges, or a number of proxy hops`);
      }
    },
  },
  prefix: {
    validate(value: unknown) {
      if (typeof value !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(value)) fail('must be 1-64 letters, digits, _ or -');
    },
  },
});

export const configSchema = {
  env: {
    doc: 'development, test or production. production refuses unsafe settings (auth off, the embedded store).',
    format: ['development', 'test', 'production'],
    default: 'development',
    env: 'NODE_ENV',
  },
  log: {
    level: {
      doc: 'Log level: trace, debug, info, warn, error, fatal or silent.',
      format: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      default: 'info',
      env: 'LOG_LEVEL',
    },
  },
  redis: {
    url: {
      doc: 'Redis for the queues. Set maxmemory-policy noeviction on it. A Redis Cluster: `redis+cluster://host:port,host:port` (`rediss+cluster://` for TLS), any of its nodes; each queue then lives in one slot (docs/SCALING.md). `workfleet dev` starts its own when unset.',
      format: 'redis-url',
      default: 'redis://127.0.0.1:6379',
      env: 'REDIS_URL',
      sensitive: true,
    },
    prefix: {
      doc: 'Prefix of every BullMQ key; producers adding jobs to the `cases` queue must use the same one.',
      format: 'prefix',
      default: 'workfleet',
      env: 'BULLMQ_PREFIX',
    },
    waitReplicas: {
      doc: 'Replicas that must confirm every job the fleet adds (Redis `WAIT`) before the add counts as done: the first step jobs of a case before the API answers 201 and before an intake job is taken, and every later step job and report. Fewer within `REDIS_WAIT_TIMEOUT_MS` fails the add as Redis unavailable (503, consumers retry). 0: no wait, replication stays asynchronous. What it protects and what it costs: docs/RELIABILITY.md (Redis failover).',
      format: 'non-negative-int',
      default: 0,
      env: 'REDIS_WAIT_REPLICAS',
    },
    waitTimeoutMs: {
      doc: 'How long an add waits for `REDIS_WAIT_REPLICAS` replicas before it fails.',
      format: 'positive-int',
      default: 1_000,
      env: 'REDIS_WAIT_TIMEOUT_MS',
    },
  },
  mongo: {
    url: {
      doc: 'MongoDB (or FerretDB) with the database name in the path. `workfleet dev` starts an embedded FerretDB when unset.',
      format: 'mongo-url',
      default: 'mongodb://127.0.0.1:27017/workfleet',
      env: 'MONGO_URL',
      sensitive: true,
    },
    operationTimeoutMs: {
      doc: "How long one store operation may wait for an answer before it fails (the driver's socketTimeoutMS: the connection is closed), so that a paused MongoDB fails requests (503) and consumer jobs (retried) instead of holding them. Keep it above your slowest query. 0: no limit.",
      format: 'non-negative-int',
      default: 30_000,
      env: 'MONGO_OPERATION_TIMEOUT_MS',
    },
  },
  api: {
    host: {
      doc: 'Address the HTTP API binds to; 0.0.0.0 in containers.',
      format: String,
      default: '127.0.0.1',
      env: 'API_HOST',
    },
    port: {
      doc: 'Port of the HTTP API, Bull Board and /metrics.',
      format: 'port',
      default: 8080,
      env: 'API_PORT',
      arg: 'port',
    },
    requestTimeoutMs: {
      doc: 'A request not answered within this time gets 503 SERVICE_UNAVAILABLE with Retry-After (a server that hangs rather than fails, e.g. a paused MongoDB or Redis). A start answered so may have made its case: retry with the same idempotency key. 0: no limit.',
      format: 'non-negative-int',
      default: 15_000,
      env: 'API_REQUEST_TIMEOUT_MS',
    },
    bodyLimitBytes: {
      doc: 'Largest request body accepted; larger ones get 413.',
      format: 'positive-int',
      default: 1_048_576,
      env: 'API_BODY_LIMIT_BYTES',
    },
    rateLimitPerMinute: {
      doc: 'Requests one API key (or, without a key, one client address) may make per minute, across all API replicas (counted in Redis). 0: no limit.',
      format: 'non-negative-int',
      default: 1_200,
      env: 'API_RATE_LIMIT_PER_MINUTE',
    },
    authFailuresPerMinute: {
      doc: 'Failed authentications (missing, unknown, wrong, revoked or expired key) one client address may make per minute, across all API replicas; past it every request from the address that needs a key gets 429 with Retry-After, before its key is looked at. 0: no limit.',
      format: 'non-negative-int',
      default: 60,
      env: 'API_AUTH_FAILURES_PER_MINUTE',
    },
    trustProxy: {
      doc: 'Proxies whose X-Forwarded-For names the client address (for rate limits): comma-separated addresses or CIDR ranges (e.g. 10.0.0.0/8), or a number of proxy hops in front of the API. Empty: the connecting address is the client, and X-Forwarded-For is ignored.',
      format: 'trust-proxy',
      default: '',
      env: 'API_TRUST_PROXY',
    },
    maxHeaderBytes: {
      doc: 'Largest request head (request line and headers) accepted; larger ones get 431 HEADERS_TOO_LARGE.',
      format: 'positive-int',
      default: 16_384,
      env: 'API_MAX_HEADER_BYTES',
    },
    corsOrigins: {
      doc: 'Comma-separated origins allowed to call the API from browsers. Empty: CORS off.',
      format: 'origin-list',
      default: [],
      env: 'API_CORS_ORIGINS',
    },
    authEnabled: {
      doc: 'Require an API key on every route but /health and /ready. Must be true in production.',
      format: 'boolean',
      default: false,
      env: 'AUTH_ENABLED',
    },
  },
  metrics: {
    host: {
      doc: 'Address where a scheduler or worker serves /metrics, /health and /ready; 0.0.0.0 in containers (as API_HOST).',
      format: String,
      default: '127.0.0.1',
      env: 'METRICS_HOST',
    },
    port: {
      doc: 'Port where a scheduler or worker serves /metrics, /health and /ready (the API serves them on API_PORT). 0: off.',
      format: 'port',
      default: 9464,
      env: 'METRICS_PORT',
    },
  },
  cases: {
    maxBytes: {
      doc: "How large one case may grow (input, step outputs, buffered signals, as JSON), 2 to 8 MiB. A step output that would take a case past it fails the step with CASE_TOO_LARGE; a signal that would is refused (413). Keeps every case well under MongoDB's 16 MiB document limit.",
      format: 'case-bytes',
      default: 4 * 1024 * 1024,
      env: 'CASE_MAX_BYTES',
    },
  },
  retention: {
    finishedCaseDays: {
      doc: 'Finished cases and their history are deleted this many days after they finish (checked hourly, and again at once while a run leaves a backlog). 0: keep forever.',
      format: 'non-negative-int',
      default: 30,
      env: 'RETENTION_FINISHED_CASE_DAYS',
    },
  },
  worker: {
    queues: {
      doc: 'Comma-separated task queues this worker takes jobs from.',
      format: 'queue-list',
      default: ['default'],
      env: 'WORKER_QUEUES',
      arg: 'queues',
    },
    concurrency: {
      doc: 'Jobs one worker process runs at once, per queue.',
      format: 'positive-int',
      default: 10,
      env: 'WORKER_CONCURRENCY',
      arg: 'concurrency',
    },
    handlers: {
      doc: 'Path of the ES module whose default export maps task names to handler functions. Required by `workfleet worker`.',
      format: String,
      default: '',
      env: 'WORKER_HANDLERS',
      arg: 'handlers',
    },
    shutdownGraceMs: {
      doc: 'On SIGTERM, how long active handlers may run on before their jobs are handed back to the queue.',
      format: 'non-negative-int',
      default: 25_000,
      env: 'WORKER_SHUTDOWN_GRACE_MS',
    },
    advancesCases: {
      doc: 'The worker that finishes a step applies its report to the case itself (the transition, one history append, the next steps enqueued in one batch), so no results job, queue hop or scheduler sits between two steps; a report it cannot apply goes to the results queue for a scheduler. false: every report goes through the results queue (workers still read workflow definitions from MongoDB).',
      format: 'boolean',
      default: true,
      env: 'WORKER_ADVANCES_CASES',
    },
    startReportDelayMs: {
      doc: 'A handler still running after this long is reported as started; faster ones report start and end together.',
      format: 'non-negative-int',
      default: 200,
      env: 'WORKER_START_REPORT_DELAY_MS',
    },
    lockDurationMs: {
      doc: 'BullMQ job lock; a job whose worker stops renewing it for this long is given to another worker.',
      format: 'positive-int',
      default: 30_000,
      env: 'WORKER_LOCK_DURATION_MS',
    },
    maxStalls: {
      doc: 'Times a job may lose its worker (crash, kill, blocked event loop) and be run again; one more and it fails with WORKER_LOST.',
      format: 'non-negative-int',
      default: 2,
      env: 'WORKER_MAX_STALLS',
    },
    stalledCheckIntervalMs: {
      doc: 'How often each worker looks for jobs whose lock lapsed (their worker died) and hands them to the queue again.',
      format: 'positive-int',
      default: 30_000,
      env: 'WORKER_STALLED_CHECK_INTERVAL_MS',
    },
  },
  breaker: {
    errorThresholdPercent: {
      doc: 'Share of failed calls in the rolling window that opens a circuit breaker.',
      format: 'percent',
      default: 50,
      env: 'BREAKER_ERROR_THRESHOLD_PERCENT',
    },
    volumeThreshold: {
      doc: 'Calls in the rolling window before a breaker may open at all.',
      format: 'positive-int',
      default: 5,
      env: 'BREAKER_VOLUME_THRESHOLD',
    },
    resetTimeoutMs: {
      doc: 'How long an open breaker defers its tasks before letting one probe through.',
      format: 'positive-int',
      default: 30_000,
      env: 'BREAKER_RESET_TIMEOUT_MS',
    },
    rollingWindowMs: {
      doc: 'Length of the window over which a breaker counts failures.',
      format: 'positive-int',
      default: 10_000,
      env: 'BREAKER_ROLLING_WINDOW_MS',
    },
  },
  scheduler: {
    concurrency: {
      doc: 'Intake and result jobs one scheduler process handles at once.',
      format: 'positive-int',
      default: 50,
      env: 'SCHEDULER_CONCURRENCY',
    },
    reconcileIntervalMs: {
      doc: 'How often the scheduler looks for cases that stopped moving (lost step jobs, a case document behind its history, a report that never arrived).',
      format: 'positive-int',
      default: 15_000,
      env: 'SCHEDULER_RECONCILE_INTERVAL_MS',
    },
    deadlineCheckIntervalMs: {
      doc: 'How often the scheduler fails cases whose deadline has passed.',
      format: 'positive-int',
      default: 1_000,
      env: 'SCHEDULER_DEADLINE_CHECK_INTERVAL_MS',
    },
    staleAfterMs: {
      doc: 'A running case untouched for this long is checked by the reconciler.',
      format: 'positive-int',
      default: 60_000,
      env: 'SCHEDULER_STALE_AFTER_MS',
    },
    lockDurationMs: {
      doc: 'Job lock of intake and report jobs; a scheduler that dies holding some gives them to another scheduler after about 1.5x this long.',
      format: 'positive-int',
      default: 10_000,
      env: 'SCHEDULER_LOCK_DURATION_MS',
    },
    stuckAfterMs: {
      doc: 'An open case that made no progress for this long, with nothing legitimate to wait for, is reported stuck (API, metric, trace) with the reason the reconciler sees.',
      format: 'positive-int',
      default: 300_000,
      env: 'SCHEDULER_STUCK_AFTER_MS',
    },
  },
  jobs: {
    keepCompletedSeconds: {
      doc: 'Completed BullMQ jobs are kept this long (for Bull Board), then removed.',
      format: 'non-negative-int',
      default: 3_600,
      env: 'JOBS_KEEP_COMPLETED_SECONDS',
    },
    keepCompletedCount: {
      doc: 'At most this many completed jobs are kept per queue.',
      format: 'non-negative-int',
      default: 1_000,
      env: 'JOBS_KEEP_COMPLETED_COUNT',
    },
    eventsMaxLength: {
      doc: "Events kept in each queue's BullMQ event stream (Bull Board and QueueEvents read them live); bounds Redis memory.",
      format: 'positive-int',
      default: 1_000,
      env: 'JOBS_EVENTS_MAX_LENGTH',
    },
    keepFailedSeconds: {
      doc: 'Failed BullMQ jobs (malformed intake jobs, failed steps) are kept this long.',
      format: 'non-negative-int',
      default: 604_800,
      env: 'JOBS_KEEP_FAILED_SECONDS',
    },
  },
  dev: {
    dataDir: {
      doc: '`workfleet dev` only: where the embedded FerretDB and Redis keep their data.',
      format: String,
      default: '.workfleet',
      env: 'DEV_DATA_DIR',
    },
    ferretdbBin: {
      doc: 'A FerretDB v1 binary to use instead of building one from the Go module proxy.',
      format: String,
      default: '',
      env: 'FERRETDB_BIN',
    },
    exampleCases: {
      doc: '`workfleet dev` only: start a few example cases (retried and completed, failed, waiting for a signal) so the explorer has something to show; the same ones on every start.',
      format: 'boolean',
      default: true,
      env: 'DEV_EXAMPLE_CASES',
    },
  },
} as const;
