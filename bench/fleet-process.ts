import { loadConfig } from '../config/load.js';
import { MemoryStore } from '../lib/adapters/memory/store.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { createLogger } from '../lib/obs/logger.js';
import { systemClock } from '../lib/ports/clock.js';
import type { Store } from '../lib/ports/store.js';
import { exitOnFatalErrors, type RunningRole } from '../lib/runtime/lifecycle.js';
import { runScheduler } from '../scheduler/main.js';
import { runWorker } from '../workers/main.js';
import { countingStore, monitoredMongoStore, newCounters } from './store-counters.js';
import { WORKFLOWS } from './workloads.js';

/**
 * A benchmark fleet process: the real scheduler and worker code (`runScheduler`, `runWorker`),
 * in one process or each in its own, with the store counted. With the memory store both roles
 * must share this process (the store lives in it); with MongoDB (FerretDB) the bench starts one
 * process per role, as `workfleet scheduler` and `workfleet worker` would run.
 *
 * Usage: fleet-process.js '<json FleetSpec>'. It talks to the bench over the IPC channel:
 * `{ type: 'ready' }` once its roles run; a `{ type: 'stats', id }` request is answered with
 * `{ type: 'stats', id, stats }` (StoreCounters, bench/store-counters.ts). SIGTERM stops it.
 */

export interface FleetSpec {
  roles: ReadonlyArray<'scheduler' | 'worker'>;
  store: 'memory' | 'mongo';
  /** Settings by environment variable name, as `workfleet` would read them (REDIS_URL, …). */
  settings: Record<string, string>;
}

const spec = JSON.parse(process.argv[2] ?? '{}') as FleetSpec;
const config = loadConfig(spec.settings);
const logger = createLogger({ level: config.log.level, name: 'bench-fleet' });
exitOnFatalErrors(logger);
const counters = newCounters();
const running: RunningRole[] = [];

// Every role has the store: the scheduler for intake, timers and repairs, the worker to advance
// the cases whose steps it finishes (worker.advancesCases). One store per process, counted.
const store: Store = spec.store === 'memory' ? countingStore(new MemoryStore(), counters, 'port') : countingStore(monitoredMongoStore(config.mongo.url, counters), counters, 'driver');
await store.init();
if (spec.roles.includes('scheduler')) {
  const registry = new WorkflowRegistry(store, systemClock);
  for (const [name, definition] of Object.entries(WORKFLOWS)) await registry.apply({ name, ...definition });
}
// The worker first, so that the steps of a pre-filled intake queue find it serving.
if (spec.roles.includes('worker')) running.push(await runWorker(config, { ownsProcess: false, store }));
if (spec.roles.includes('scheduler')) running.unshift(await runScheduler(config, { store, ownsProcess: false }));

process.on('message', (message: { type?: string; id?: number }) => {
  if (message.type === 'stats') process.send?.({ type: 'stats', id: message.id, stats: counters });
});
process.once('SIGTERM', () => {
  void (async () => {
    for (const role of running) await role.stop();
    await store.close();
    process.exit(0);
  })();
});
process.send?.({ type: 'ready' });
