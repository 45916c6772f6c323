import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type } from '@sinclair/typebox';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { RedisClient } from '../lib/adapters/redis/connection.js';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/load.js';
import type { BullQueues } from '../lib/adapters/bullmq/queues.js';
import { ErrorCode, httpStatusOf } from '../lib/core/error-codes.js';
import { acceptedRequestId } from '../lib/core/text.js';
import type { BulkService } from '../lib/engine/bulk.js';
import type { CaseService } from '../lib/engine/cases.js';
import type { KeyService } from '../lib/engine/keys.js';
import type { WorkflowRegistry } from '../lib/engine/workflows.js';
import { EpisodeLog } from '../lib/obs/episode-log.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Metrics } from '../lib/obs/metrics.js';
import type { Clock } from '../lib/ports/clock.js';
import type { FleetMonitor } from '../lib/ports/fleet.js';
import type { ConcurrencyGate, RateLimiter } from '../lib/ports/limits.js';
import type { Schedules } from '../lib/ports/schedules.js';
import type { CaseStore, WorkflowStore } from '../lib/ports/store.js';
import { declareAccess, installAuth, type Authenticator } from './auth.js';
import { AuthFailureLimiter } from './auth-limiter.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { mountBullBoard } from './bull-board.js';
import { clientErrorAnswer, frameworkErrors, installErrorHandling } from './errors.js';
import { LimitWaits } from './limit-waits.js';
import { failOpenRedisStore } from './rate-limit-store.js';
import { installRequestDeadline } from './request-deadline.js';
import { bulkRoutes } from './routes/bulk.js';
import { caseRoutes } from './routes/cases.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { keyRoutes } from './routes/keys.js';
import { scheduleRoutes } from './routes/schedules.js';
import { statusRoutes } from './routes/status.js';
import { workflowRoutes } from './routes/workflows.js';
import { explorerRoutes } from './routes/explorer.js';
import { uiRoutes } from './routes/ui.js';

export interface ApiDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  clock: Clock;
  cases: CaseService;
  /** Bulk operations over many cases. */
  bulk: BulkService;
  workflows: WorkflowRegistry;
  store: WorkflowStore & CaseStore;
  keys: KeyService;
  schedules: Schedules;
  /** The fleet's queues and processes, for /v1/status and Bull Board. */
  fleet: { monitor: FleetMonitor; queues: BullQueues };
  /** The concurrency gate and rate limiter: where keyed units stand in their key's line (a case's read), the busiest keys (/v1/status). */
  limits: Pick<ConcurrencyGate, 'position' | 'stats'> & Pick<RateLimiter, 'rateStats'>;
  /** Where rate-limit counters live, shared by every API replica; in memory when absent. */
  redis?: RedisClient;
  checks: readonly ReadinessCheck[];
  /** True once shutdown began: /ready answers 503 so load balancers stop sending traffic. */
  isDraining?: () => boolean;
}

/**
 * Fastify's `trustProxy` from API_TRUST_PROXY: off when empty (X-Forwarded-For is then ignored,
 * so a client cannot pick the address it is limited by), a number of hops, or addresses and ranges.
 */
function trustProxy(setting: string): false | string | ((address: string, hop: number) => boolean) {
  if (setting.trim() === '') return false;
  if (/^[0-9]+$/.test(setting.trim())) {
    const hops = Number(setting.trim());
    return (_address, hop) => hop < hops;
  }
  return setting;
}

/** The HTTP API without a socket: main.ts listens, tests call `inject()`, the generator reads its OpenAPI. */
export async function buildServer(deps: ApiDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app: FastifyInstance = Fastify({
    // pino's Logger and Fastify's logger type differ only in generics; the instance is the same.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request log lines would drown the logs under load; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.api.bodyLimitBytes,
    trustProxy: trustProxy(config.api.trustProxy),
    http: { maxHeaderSize: config.api.maxHeaderBytes },
    clientErrorHandler: clientErrorAnswer(config.api.maxHeaderBytes),
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // A client's X-Request-Id is kept only when it is short and plain: it is logged, stored on the
    // case and carried by every step job, so an 8 KB one would be copied everywhere.
    requestIdHeader: false,
    genReqId: (request) => acceptedRequestId(request.headers['x-request-id']) ?? randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    frameworkErrors,
    // Unknown fields are refused, not silently dropped; types are not coerced in bodies.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  });
  // Trouble every request meets (a server away) is logged once per episode, not once per request.
  const episodes = new EpisodeLog(deps.logger);
  app.addHook('onClose', async () => episodes.close());
  installErrorHandling(app, episodes);
  // A request the servers behind it do not answer in time gets 503 rather than hanging with them.
  if (config.api.requestTimeoutMs > 0) installRequestDeadline(app, config.api.requestTimeoutMs);
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  const auth: Authenticator = {
    keys: deps.keys,
    ...(config.api.authFailuresPerMinute > 0
      ? { limiter: new AuthFailureLimiter({ budget: config.api.authFailuresPerMinute, clock: deps.clock, prefix: config.redis.prefix, ...(deps.redis ? { redis: deps.redis } : {}) }) }
      : {}),
  };
  // Before any plugin adds routes, so that its routes are guarded too (the docs page).
  installAuth(app, { enabled: config.api.authEnabled, ...auth });

  await app.register(swagger, {
    ...OPENAPI_DOCUMENT,
    // Shared schemas appear under their own names (ErrorResponse, …) rather than def-0, def-1.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  // The docs page and its OpenAPI document need a key like every route; the plugin's routes cannot say so themselves.
  await app.register(async (scope) => {
    declareAccess(scope, 'workflows:read');
    await scope.register(swaggerUi, { routePrefix: '/docs' });
  });
  // Security headers; the CSP allows the inline bootstrap scripts of the docs page and Bull Board.
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: { 'script-src': ["'self'", "'unsafe-inline'"], 'img-src': ["'self'", 'data:'], 'style-src': ["'self'", "'unsafe-inline'"] },
    },
  });
  if (config.api.corsOrigins.length > 0) {
    // A browser sends a preflight (the plugin's OPTIONS * route) without credentials, before the request that carries the key.
    declareAccess(app, 'public', (route) => route.method === 'OPTIONS' && route.url === '*');
    await app.register(cors, { origin: [...config.api.corsOrigins], credentials: false });
  }
  if (config.api.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      max: config.api.rateLimitPerMinute,
      timeWindow: 60_000,
      // After authentication, so that the limit is per key; requests without one count per address.
      hook: 'preHandler',
      keyGenerator: (request) => (request.principal && request.principal.id !== 'anonymous' ? `key:${request.principal.id}` : `ip:${request.ip}`),
      nameSpace: `${config.redis.prefix}:api:rate:`,
      // Counted in Redis across replicas; when Redis cannot count (out of memory, away), requests go through uncounted.
      ...(deps.redis
        ? {
            store: failOpenRedisStore(
              deps.redis,
              `${config.redis.prefix}:api:rate:`,
              (error) => void episodes.failure('rate-limit', error, 'rate limit not counted (Redis refused); requests go through uncounted'),
            ),
          }
        : {}),
      errorResponseBuilder: (_request, context) =>
        Object.assign(new Error(`rate limit of ${context.max} requests per minute exceeded; retry in ${context.after}`), {
          statusCode: httpStatusOf(ErrorCode.rateLimited),
          code: ErrorCode.rateLimited,
        }),
    });
  }

  // Definitions may be posted as YAML; the yaml package's default schema builds plain data only.
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseYaml(body as string, { maxAliasCount: 100 }));
    } catch (error) {
      done(Object.assign(new Error(`body is not valid YAML: ${(error as Error).message}`), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.httpDuration.observe({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  healthRoutes(app, { checks: deps.checks, metrics: deps.metrics, isDraining: deps.isDraining ?? (() => false) });
  statusRoutes(app, { monitor: deps.fleet.monitor, store: deps.store, limits: deps.limits, clock: deps.clock, stuckAfterMs: config.scheduler.stuckAfterMs });
  workflowRoutes(app, { workflows: deps.workflows, store: deps.store, monitor: deps.fleet.monitor, clock: deps.clock });
  caseRoutes(app, deps.cases, new LimitWaits({ gate: deps.limits, workflows: deps.workflows }));
  bulkRoutes(app, deps.bulk);
  keyRoutes(app, deps.keys);
  scheduleRoutes(app, { schedules: deps.schedules, workflows: deps.workflows });
  explorerRoutes(app, { authEnabled: config.api.authEnabled, cases: deps.cases, workflows: deps.workflows, store: deps.store, ...deps.fleet, clock: deps.clock });
  uiRoutes(app);
  await mountBullBoard(app, { ...deps.fleet, auth, authEnabled: config.api.authEnabled });
  const Links = Type.Object({ name: Type.String(), docs: Type.String(), openapi: Type.String(), queues: Type.String(), status: Type.String(), explorer: Type.String() });
  // Where things are: nothing a key would protect.
  app.get('/', { config: { permission: 'public' }, schema: { hide: true, response: { 200: Links } } }, async (_request, reply) =>
    reply.send({ name: 'workfleet', docs: '/docs', openapi: '/docs/json', queues: '/admin/queues', status: '/v1/status', explorer: '/ui' }),
  );
  await app.ready();
  return app;
}
