import type { Config } from '../config/load.js';
import { createLogger } from '../lib/obs/logger.js';
import { Metrics } from '../lib/obs/metrics.js';
import { systemClock } from '../lib/ports/clock.js';
import { buildServer } from './server.js';

/** The OpenAPI document of the routes, from a server that is built but never calls a service. */
export async function generateOpenApi(config: Config): Promise<Record<string, unknown>> {
  const unused = {} as never;
  const app = await buildServer({
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
    checks: [],
  });
  try {
    return app.swagger() as unknown as Record<string, unknown>;
  } finally {
    await app.close();
  }
}
