import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../lib/obs/metrics.js';
import { runReadinessChecks, type ReadinessCheck } from '../../lib/obs/readiness.js';
import { redisReadiness } from '../../lib/runtime/readiness.js';
import { errorResponses, ErrorResponseSchema } from '../schemas.js';

export type { ReadinessCheck } from '../../lib/obs/readiness.js';

/** Redis's readiness (answers, noeviction, room to write): the same check every process makes. */
export const redisPolicyCheck = redisReadiness;

const Health = Type.Object({ status: Type.Literal('ok') });
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('draining'), Type.Literal('not ready')]),
  checks: Type.Record(Type.String(), Type.String(), { description: 'Each dependency: "ok", or why it is not usable.' }),
});
const MetricsText = Type.String({ description: 'Prometheus text exposition.' });

export function healthRoutes(app: FastifyInstance, deps: { checks: readonly ReadinessCheck[]; metrics: Metrics; isDraining: () => boolean }): void {
  // Probes of load balancers and orchestrators carry no key.
  const probe = { rateLimit: false, permission: 'public' as const };
  app.get('/health', { schema: { hide: true, response: { 200: Health } }, config: probe }, async () => ({ status: 'ok' as const }));

  // 503: not ready or draining, or the request deadline's answer (ErrorResponse) when a check outlives it.
  const readyAnswer = { 200: Readiness, 503: Type.Union([Readiness, Type.Ref(ErrorResponseSchema)]) };
  app.get('/ready', { schema: { hide: true, response: readyAnswer }, config: probe }, async (_request, reply) => {
    const { ready: checked, checks } = await runReadinessChecks(deps.checks);
    const ready = !deps.isDraining() && checked;
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : deps.isDraining() ? 'draining' : 'not ready', checks });
  });

  app.get('/metrics', { schema: { hide: true, response: { 200: MetricsText, ...errorResponses(401, 403, 429) } }, config: { permission: 'fleet:read' } }, async (_request, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
