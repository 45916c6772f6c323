import { Worker } from 'bullmq';

/**
 * A raw BullMQ worker process for the side-by-side benchmark: one process, concurrency 50,
 * no-op jobs, the same shape as one workfleet worker process. It talks to the benchmark over
 * stdout: `ready` once it takes jobs, `done <epoch ms> <epoch ms>` when `target` jobs named
 * `countName` completed (when the last completed, when the first job started: a pre-filled
 * queue is drained from the second to the first), and (latency mode) `latency <json>` with
 * each job's enqueue-to-start delay.
 *
 * Usage: raw-worker.js <noop|latency> <redisUrl> <prefix> <queue> <target> [countName]
 */

const [mode = 'noop', redisUrl = '', prefix = '', queue = '', targetText = '0', countName] = process.argv.slice(2);
const target = Number(targetText);
const delays: number[] = [];
let counted = 0;
let firstStartedAt: number | undefined;

const worker = new Worker(
  queue,
  async (job) => {
    firstStartedAt ??= Date.now();
    // Enqueue-to-start: the producer stamped the job just before adding it.
    if (mode === 'latency') delays.push(Date.now() - Number((job.data as { t?: number }).t));
    return null;
  },
  { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix, concurrency: 50 },
);
worker.on('completed', (job) => {
  if (countName !== undefined && job.name !== countName) return;
  counted += 1;
  if (counted !== target) return;
  const at = Date.now();
  if (mode === 'latency') process.stdout.write(`latency ${JSON.stringify(delays)}\n`);
  process.stdout.write(`done ${at} ${firstStartedAt ?? at}\n`);
});
await worker.waitUntilReady();
process.stdout.write('ready\n');
process.once('SIGTERM', () => {
  void worker.close().then(() => process.exit(0));
});
