import type { FastifyInstance } from 'fastify';
import { formatDuration } from '../../lib/core/format.js';
import type { Metrics } from '../../lib/obs/metrics.js';

export interface ReadinessCheck {
  name: string;
  check: (timeoutMs: number) => Promise<void>;
}

/** How long a dependency may take to answer a readiness probe. */
const READY_TIMEOUT_MS = 2_000;

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${formatDuration(ms)}`)), ms);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

/** BullMQ loses jobs if Redis evicts keys: any other policy makes the API not ready, on purpose. */
export function redisPolicyCheck(health: () => Promise<{ maxmemoryPolicy: string }>): ReadinessCheck['check'] {
  return async () => {
    const { maxmemoryPolicy } = await health();
    if (maxmemoryPolicy !== 'noeviction') throw new Error(`maxmemory-policy is ${maxmemoryPolicy || 'unknown'}; BullMQ needs noeviction`);
  };
}

export function healthRoutes(app: FastifyInstance, deps: { checks: readonly ReadinessCheck[]; metrics: Metrics; isDraining: () => boolean }): void {
  const hidden = { schema: { hide: true } };
  app.get('/health', { ...hidden, config: { rateLimit: false } }, async () => ({ status: 'ok' }));

  app.get('/ready', { ...hidden, config: { rateLimit: false } }, async (_request, reply) => {
    const results = await Promise.all(
      deps.checks.map(async ({ name, check }) => {
        try {
          await withTimeout(check(READY_TIMEOUT_MS), READY_TIMEOUT_MS);
          return [name, 'ok'] as const;
        } catch (error) {
          return [name, (error as Error).message || 'failed'] as const;
        }
      }),
    );
    const checks = Object.fromEntries(results);
    const ready = !deps.isDraining() && results.every(([, result]) => result === 'ok');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : deps.isDraining() ? 'draining' : 'not ready', checks });
  });

  app.get('/metrics', { ...hidden, config: { permission: 'fleet:read' } }, async (_request, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
