import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../lib/obs/metrics.js';
import { runReadinessChecks, type ReadinessCheck } from '../../lib/obs/readiness.js';
import { redisReadiness } from '../../lib/runtime/readiness.js';

export type { ReadinessCheck } from '../../lib/obs/readiness.js';

/** Redis's readiness (answers, noeviction, room to write): the same check every process makes. */
export const redisPolicyCheck = redisReadiness;

export function healthRoutes(app: FastifyInstance, deps: { checks: readonly ReadinessCheck[]; metrics: Metrics; isDraining: () => boolean }): void {
  const hidden = { schema: { hide: true } };
  app.get('/health', { ...hidden, config: { rateLimit: false } }, async () => ({ status: 'ok' }));

  app.get('/ready', { ...hidden, config: { rateLimit: false } }, async (_request, reply) => {
    const { ready: checked, checks } = await runReadinessChecks(deps.checks);
    const ready = !deps.isDraining() && checked;
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : deps.isDraining() ? 'draining' : 'not ready', checks });
  });

  app.get('/metrics', { ...hidden, config: { permission: 'fleet:read' } }, async (_request, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
