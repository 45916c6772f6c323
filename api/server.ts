import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import type { Config } from '../config/load.js';
import type { CaseService } from '../lib/engine/cases.js';
import type { KeyService } from '../lib/engine/keys.js';
import type { WorkflowRegistry } from '../lib/engine/workflows.js';
import type { Logger } from '../lib/obs/logger.js';
import type { Metrics } from '../lib/obs/metrics.js';
import type { WorkflowStore } from '../lib/ports/store.js';
import { installAuth } from './auth.js';
import { installErrorHandling } from './errors.js';
import { caseRoutes } from './routes/cases.js';
import { keyRoutes } from './routes/keys.js';
import { healthRoutes, type ReadinessCheck } from './routes/health.js';
import { workflowRoutes } from './routes/workflows.js';

export interface ApiDeps {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  cases: CaseService;
  workflows: WorkflowRegistry;
  store: WorkflowStore;
  keys: KeyService;
  checks: readonly ReadinessCheck[];
  /** True once shutdown began: /ready answers 503 so load balancers stop sending traffic. */
  isDraining?: () => boolean;
}

/** The HTTP API without a socket: main.ts listens, tests call `inject()`. */
export async function buildServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    // pino's Logger and Fastify's logger type differ only in generics; the instance is the same.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request log lines would drown the logs under load; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.config.api.bodyLimitBytes,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // Unknown fields are refused, not silently dropped; types are not coerced in bodies.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
  });
  installErrorHandling(app);
  installAuth(app, { enabled: deps.config.api.authEnabled, keys: deps.keys });

  // Definitions may be posted as YAML; the yaml package's default schema builds plain data only.
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseYaml(body as string, { maxAliasCount: 100 }));
    } catch (error) {
      done(Object.assign(new Error(`body is not valid YAML: ${(error as Error).message}`), { statusCode: 400 }), undefined);
    }
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    deps.metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  healthRoutes(app, { checks: deps.checks, metrics: deps.metrics, isDraining: deps.isDraining ?? (() => false) });
  workflowRoutes(app, { workflows: deps.workflows, store: deps.store });
  caseRoutes(app, deps.cases);
  keyRoutes(app, deps.keys);
  await app.ready();
  return app;
}
