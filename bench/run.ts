import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, Worker } from 'bullmq';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { systemClock } from '../lib/ports/clock.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { sleep, spawnProcesses, startBenchServers } from './harness.js';

/**
 * `npm run bench`: workfleet against raw BullMQ on the same private redis-server, in the same
 * run, so that the machine's speed cancels out of the ratios. Each measurement runs 3 times;
 * the median is reported with the range.
 */

const RUNS = 3;
const RAW_JOBS = 5_000;
const CASES = 300;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Raw BullMQ: no-op jobs through one worker with concurrency 50, jobs/s from first add to last completion. */
async function rawBullmq(redisUrl: string): Promise<number> {
  const prefix = `raw-${randomBytes(4).toString('hex')}`;
  const queue = new Queue('raw', { connection: { url: redisUrl }, prefix });
  let done = 0;
  let finish: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const worker = new Worker('raw', async () => null, { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix, concurrency: 50 });
  worker.on('completed', () => {
    done += 1;
    if (done === RAW_JOBS) finish();
  });
  await worker.waitUntilReady();
  const started = performance.now();
  for (let i = 0; i < RAW_JOBS; i += 500) {
    await queue.addBulk(Array.from({ length: Math.min(500, RAW_JOBS - i) }, (_, j) => ({ name: 'noop', data: { i: i + j }, opts: { removeOnComplete: true } })));
  }
  await allDone;
  const seconds = (performance.now() - started) / 1000;
  await worker.close();
  await queue.close();
  return RAW_JOBS / seconds;
}

/** workfleet: 1-step cases through the intake queue, a scheduler and one worker process, cases/s to the last completion. */
async function workfleetOneStep(redisUrl: string, mongoBase: string): Promise<number> {
  const id = randomBytes(4).toString('hex');
  const mongoUrl = `${mongoBase}bench_${id}`;
  const prefix = `wf-${id}`;
  const store = new MongoStore({ url: mongoUrl });
  await store.init();
  await new WorkflowRegistry(store, systemClock).apply({ name: 'one', steps: [{ id: 'echo', task: 'demo.echo', input: { n: '${input.n}' } }] });
  const children = await spawnProcesses(['scheduler', 'worker'], { REDIS_URL: redisUrl, MONGO_URL: mongoUrl, BULLMQ_PREFIX: prefix, WORKER_CONCURRENCY: '50' });
  await sleep(500);
  const intake = new Queue('cases', { connection: { url: redisUrl }, prefix });
  const started = performance.now();
  await intake.addBulk(Array.from({ length: CASES }, (_, n) => ({ name: 'start', data: { workflow: 'one', input: { n } } })));
  for (;;) {
    const counts = await store.countByStatus();
    if ((counts.completed ?? 0) + (counts.failed ?? 0) >= CASES) break;
    await sleep(50);
  }
  const seconds = (performance.now() - started) / 1000;
  await intake.close();
  await Promise.all(children.map((child) => child.stop('SIGTERM', 20_000)));
  await store.close();
  return CASES / seconds;
}

async function main(): Promise<void> {
  const servers = await startBenchServers();
  const redis = servers.redis;
  try {
    const raw: number[] = [];
    const oneStep: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      raw.push(await rawBullmq(redis.url));
      oneStep.push(await workfleetOneStep(redis.url, servers.mongoBase));
      process.stdout.write(`run ${run + 1}/${RUNS}: raw ${raw.at(-1)?.toFixed(0)} jobs/s, workfleet ${oneStep.at(-1)?.toFixed(1)} cases/s\n`);
    }
    const results = {
      at: new Date().toISOString(),
      store: servers.store,
      raw: { jobsPerSecond: { median: median(raw), min: Math.min(...raw), max: Math.max(...raw), runs: raw } },
      workfleet: { oneStepCasesPerSecond: { median: median(oneStep), min: Math.min(...oneStep), max: Math.max(...oneStep), runs: oneStep } },
      ratios: { case1VsRaw: median(oneStep) / median(raw) },
    };
    const line = (name: string, unit: string, stats: { median: number; min: number; max: number }) =>
      `${name.padEnd(34)} ${stats.median.toFixed(1).padStart(9)} ${unit.padEnd(8)} (${stats.min.toFixed(1)}–${stats.max.toFixed(1)})`;
    process.stdout.write(
      [
        '',
        `store: ${results.store}; ${RUNS} runs each, median (min–max)`,
        line('raw BullMQ no-op jobs', 'jobs/s', results.raw.jobsPerSecond),
        line('workfleet 1-step cases', 'cases/s', results.workfleet.oneStepCasesPerSecond),
        `ratio case1VsRaw: ${results.ratios.case1VsRaw.toFixed(3)}`,
        '',
      ].join('\n'),
    );
    mkdirSync(join(packageRoot(), 'bench', 'results'), { recursive: true });
    writeFileSync(join(packageRoot(), 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await servers.stop();
  }
}

await main();
