import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { stopManagedChildrenOnExit } from '../lib/local-servers/child.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { systemClock } from '../lib/ports/clock.js';
import { sleep, spawnProcesses, startBenchServers } from './harness.js';

/**
 * `npm run bench:memory`: 10,000 one-step cases through a scheduler and two workers with the
 * default job retention, sampling Redis's used_memory as they complete. With finished jobs
 * removed by age and count, the memory must level off instead of growing with the cases.
 */

const CASES = Number(process.argv[2] ?? 10_000);
const BATCH = 500;

// An interrupted benchmark leaves no Redis, FerretDB or fleet process running.
stopManagedChildrenOnExit();
const servers = await startBenchServers();
const id = randomBytes(4).toString('hex');
const mongoUrl = `${servers.mongoBase}memory_${id}`;
const prefix = `mem-${id}`;
const store = new MongoStore({ url: mongoUrl });
await store.init();
await servers.indexDatabase(`memory_${id}`);
await new WorkflowRegistry(store, systemClock).apply({ name: 'one', steps: [{ id: 'echo', task: 'demo.echo', input: { n: '${input.n}' } }] });
const redis = new Redis(servers.redis.url);
const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
const baseline = await usedMemory();
const children = await spawnProcesses(['scheduler', 'worker', 'worker'], {
  REDIS_URL: servers.redis.url,
  MONGO_URL: mongoUrl,
  BULLMQ_PREFIX: prefix,
  WORKER_CONCURRENCY: '50',
});
const intake = new Queue('cases', { connection: { url: servers.redis.url }, prefix });
const samples: Array<{ completed: number; usedMemoryBytes: number }> = [];
const started = performance.now();
let added = 0;
let nextSample = 1_000;
for (;;) {
  const counts = await store.countByStatus();
  const done = (counts.completed ?? 0) + (counts.failed ?? 0);
  if (added < CASES && added - done < 2 * BATCH) {
    const size = Math.min(BATCH, CASES - added);
    await intake.addBulk(Array.from({ length: size }, (_, n) => ({ name: 'start', data: { workflow: 'one', input: { n: added + n } } })));
    added += size;
  }
  if (done >= nextSample || done >= CASES) {
    samples.push({ completed: done, usedMemoryBytes: await usedMemory() });
    process.stdout.write(`${String(done).padStart(6)} cases finished: Redis used_memory ${((samples.at(-1)?.usedMemoryBytes ?? 0) / 1024 / 1024).toFixed(2)} MiB\n`);
    nextSample += 1_000;
  }
  if (done >= CASES) break;
  await sleep(200);
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(
  `\n${CASES} cases in ${seconds.toFixed(0)} s (${(CASES / seconds).toFixed(1)}/s); Redis baseline ${(baseline / 1024 / 1024).toFixed(2)} MiB, ` +
    `after 1,000 ${((samples[0]?.usedMemoryBytes ?? 0) / 1024 / 1024).toFixed(2)} MiB, after ${CASES} ${((samples.at(-1)?.usedMemoryBytes ?? 0) / 1024 / 1024).toFixed(2)} MiB (${servers.store})\n`,
);
await intake.close();
redis.disconnect();
await Promise.all(children.map((child) => child.stop('SIGTERM', 20_000)));
await store.close();
await servers.stop();
