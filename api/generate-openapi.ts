import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/load.js';
import { createLogger } from '../lib/obs/logger.js';
import { Metrics } from '../lib/obs/metrics.js';
import { systemClock } from '../lib/ports/clock.js';
import { buildServer } from './server.js';

/** A server that is built but never calls a service: for its OpenAPI document and its route table. */
export async function buildOfflineServer(config: Config): Promise<FastifyInstance> {
  const unused = {} as never;
  return buildServer({
    config,
    logger: createLogger({ level: 'silent', name: 'generate' }),
    metrics: new Metrics('generate'),
    clock: systemClock,
    cases: unused,
    bulk: unused,
    workflows: unused,
    store: unused,
    keys: unused,
    schedules: unused,
    fleet: { monitor: { queueNames: async () => [] } as never, queues: unused },
    limits: unused,
    checks: [],
  });
}

/** The OpenAPI document of the routes, from a server that is built but never calls a service. */
export async function generateOpenApi(config: Config): Promise<Record<string, unknown>> {
  const app = await buildOfflineServer(config);
  try {
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    await app.close();
  }
}
