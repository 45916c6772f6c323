import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { MongoClient } from 'mongodb';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { WorkflowRegistry } from '../lib/engine/workflows.js';
import { systemClock } from '../lib/ports/clock.js';
import { preloadCases } from './preload.js';

/**
 * `npm run bench:dev-api`: the API of a running `workfleet dev` under load, with many finished
 * cases in its embedded store. Tops `.workfleet/` up to `--cases N` (default 50,000) finished
 * cases of the `one`-step workflow it applies (written as the engine leaves them, see
 * preload.ts), then drives it with autocannon and prints latency percentiles:
 * - `GET /v1/cases/:id` of random stored cases, 10 connections as fast as they go;
 * - `POST /v1/cases` at a steady `--rate` (default 50/s, each a real case the fleet then runs),
 *   and once more as fast as 10 connections go.
 * Options: `--dir DIR` (the dev data directory, default .workfleet), `--seconds S` (default 10).
 */

const argument = (name: string, fallback: string) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback;
};
const CASES = Number(argument('cases', '50000'));
const SECONDS = Number(argument('seconds', '10'));
const RATE = Number(argument('rate', '50'));
const DIR = resolve(argument('dir', '.workfleet'));
const WORKFLOW = { name: 'bench-one', steps: [{ id: 'a', task: 'demo.echo', input: { n: '${input.n}' } }] };

const log = (message: string) => process.stdout.write(`${message}\n`);

interface Load {
  p50: number;
  p99: number;
  max: number;
  requestsPerSecond: number;
  errors: number;
  non2xx: number;
}

async function load(options: autocannon.Options): Promise<Load> {
  const result = await autocannon({ connections: 10, duration: SECONDS, ...options });
  return {
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    requestsPerSecond: result.requests.average,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}

const row = (label: string, figures: Load) =>
  `${label.padEnd(44)} p50 ${String(figures.p50).padStart(4)} ms  p99 ${String(figures.p99).padStart(4)} ms  max ${String(figures.max).padStart(5)} ms  ${figures.requestsPerSecond.toFixed(0).padStart(5)} req/s  errors ${figures.errors}  non-2xx ${figures.non2xx}`;

async function main(): Promise<void> {
  const dev = JSON.parse(readFileSync(join(DIR, 'dev.json'), 'utf8')) as { apiUrl: string; mongoUrl: string };
  const store = new MongoStore({ url: dev.mongoUrl });
  await store.init();
  const registry = new WorkflowRegistry(store, systemClock);
  await registry.apply(WORKFLOW);
  const workflow = await registry.compiled(WORKFLOW.name);
  await store.close();

  const client = await new MongoClient(dev.mongoUrl).connect();
  try {
    const cases = client.db().collection('cases');
    const stored = await cases.countDocuments({});
    const missing = Math.max(0, CASES - stored);
    if (missing > 0) {
      log(`adding ${missing} finished cases to the ${stored} stored …`);
      await preloadCases(client.db(), workflow, missing, stored, Date.now());
    }
    const sample = (
      await cases
        .find({}, { projection: { _id: 1 } })
        .limit(2_000)
        .toArray()
    ).map((doc) => String(doc._id));
    log(`${Math.max(stored, CASES)} cases stored; loading ${dev.apiUrl} for ${SECONDS} s per row`);

    const pick = () => sample[Math.floor(Math.random() * sample.length)] ?? '';
    const get = await load({ url: dev.apiUrl, requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: `/v1/cases/${pick()}` }) }] });
    let n = 0;
    const post: autocannon.Options = {
      url: dev.apiUrl,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({ ...request, path: '/v1/cases', body: JSON.stringify({ workflow: WORKFLOW.name, input: { n: n++ } }) }),
        },
      ],
    };
    const postSteady = await load({ ...post, overallRate: RATE });
    const postFlat = await load(post);
    log(row('GET /v1/cases/:id, 10 connections', get));
    log(row(`POST /v1/cases at ${RATE}/s`, postSteady));
    log(row('POST /v1/cases, 10 connections', postFlat));
  } finally {
    await client.close();
  }
}

await main();
