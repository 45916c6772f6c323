import type { Command } from 'commander';
import { config, env, fleetConfig, positiveInt } from '../context.js';

/** The commands that run the fleet's processes. */
export function fleetCommands(program: Command): void {
  program
    .command('api')
    .description('run the HTTP API (routes, /metrics, /health, /ready)')
    .option('--port <port>', 'listen port (env API_PORT)', positiveInt)
    .action(async (options: { port?: number }) => {
      const { runApi } = await import('../../api/main.js');
      await runApi(fleetConfig({ 'api.port': options.port }));
    });

  program
    .command('scheduler')
    .description('run a scheduler: intake, step reports, deadlines, reconciliation (several may run)')
    .action(async () => {
      const { runScheduler } = await import('../../scheduler/main.js');
      await runScheduler(fleetConfig());
    });

  program
    .command('worker')
    .description('run a worker that executes task jobs with the given handlers')
    .option('--queues <list>', 'comma-separated queues (env WORKER_QUEUES)')
    .option('--concurrency <n>', 'jobs at once per queue (env WORKER_CONCURRENCY)', positiveInt)
    .option('--handlers <path>', 'handlers module (env WORKER_HANDLERS)')
    .action(async (options: { queues?: string; concurrency?: number; handlers?: string }) => {
      const { runWorker } = await import('../../workers/main.js');
      await runWorker(
        fleetConfig({
          'worker.queues': options.queues?.split(',').map((queue) => queue.trim()),
          'worker.concurrency': options.concurrency,
          'worker.handlers': options.handlers,
        }),
      );
    });

  program
    .command('dev')
    .description('run the whole fleet locally: private Redis, embedded FerretDB, api, scheduler, two workers, examples')
    .action(async () => {
      const { runDev } = await import('../dev.js');
      await runDev(config(), { ...(env.REDIS_URL ? { redisUrl: env.REDIS_URL } : {}), ...(env.MONGO_URL ? { mongoUrl: env.MONGO_URL } : {}) });
    });
}
