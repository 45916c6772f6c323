import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'bullmq';
import { MongoClient } from 'mongodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.js';
import type { CaseEvent } from '../../lib/core/state.js';
import { BullFleetMonitor } from '../../lib/adapters/bullmq/fleet.js';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { systemClock } from '../../lib/ports/clock.js';
import type { Delivery } from '../../lib/ports/queues.js';
import { createEngine, type Engine } from '../../lib/runtime/engine.js';
import { startFerretDB } from '../../lib/local-servers/ferretdb.js';
import { enforceDeadlines } from '../../scheduler/deadlines.js';
import { intakeProcessor } from '../../scheduler/intake.js';
import { Reconciler } from '../../scheduler/reconciler.js';
import { resultsProcessor } from '../../scheduler/results.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The scheduler's parts against real servers: two engines stand for two scheduler replicas
 * sharing one database and one Redis.
 */

let servers: TestServers;
const engines: Engine[] = [];
const logger = createLogger({ level: 'silent', name: 'scheduler-test' });

async function replicas(count: number, env: Record<string, string> = {}) {
  const { mongoUrl, prefix } = servers.namespace();
  const config = loadConfig({ REDIS_URL: servers.redis.url, MONGO_URL: mongoUrl, BULLMQ_PREFIX: prefix, ...env });
  const made: Engine[] = [];
  for (let i = 0; i < count; i++) made.push(await createEngine(config, logger, new Metrics('scheduler')));
  engines.push(...made);
  return { engines: made, mongoUrl, prefix, config };
}

const order = {
  name: 'order',
  steps: [
    { id: 'reserve', task: 'inventory.reserve' },
    { id: 'charge', task: 'payments.charge' },
    { id: 'ship', task: 'shipping.ship', after: ['reserve', 'charge'], input: { r: '${steps.reserve.output.id}' } },
  ],
};

const done = (stepId: string, output: unknown): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at: Date.now(), startedAt: Date.now() - 5, output });

function intakeDelivery(data: unknown, id: string, name = 'start'): Delivery<unknown> {
  return { id, queue: 'cases', name, data, enqueuedAt: 1_700_000_000_000, attempt: 1, maxAttempts: 1, signal: new AbortController().signal, reportProgress: async () => undefined };
}

beforeAll(async () => {
  servers = await startServers();
});

afterAll(async () => {
  await Promise.all(engines.map((engine) => engine.close()));
  await servers?.stop();
});

describe('two schedulers racing', () => {
  it('apply each report exactly once and schedule the join once', async () => {
    const {
      engines: [a, b],
    } = await replicas(2);
    if (!a || !b) throw new Error('two engines expected');
    await a.workflows.apply(order);
    const { record } = await a.cases.start({ workflow: 'order' });
    // Every report delivered four times, to both replicas, all at once.
    const reports = [done('reserve', { id: 'r-1' }), done('charge', { receipt: 'c-1' })];
    const results = await Promise.all(reports.flatMap((event) => [a, b, a, b].map((engine) => engine.advancer.apply(record.id, event))));
    expect(results.filter((result) => result === 'applied').length).toBeGreaterThanOrEqual(2);
    const trace = await a.store.readTrace(record.id);
    expect(trace.map((event) => event.seq)).toEqual(trace.map((_, index) => index + 1));
    expect(
      trace
        .filter((event) => event.type === 'step.completed')
        .map((event) => event.stepId)
        .sort(),
    ).toEqual(['charge', 'reserve']);
    expect(trace.filter((event) => event.type === 'step.scheduled' && event.stepId === 'ship')).toHaveLength(1);
    const stored = await a.store.getCase(record.id);
    expect(stored?.steps.ship?.status).toBe('scheduled');
    expect(await a.queues.stepJobState('default', `${record.id}.ship`)).toBe('waiting');
    expect((await a.queues.queue('default').getJob(`${record.id}.ship`))?.data).toEqual({ w: 'order', v: 1, in: { r: 'r-1' } });
  });
});

describe('a replica remembering states it committed', () => {
  it('applies a report on top of a newer state another replica committed, once', async () => {
    const {
      engines: [a, b],
    } = await replicas(2);
    if (!a || !b) throw new Error('two engines expected');
    await a.workflows.apply(order);
    // `a` made the case and remembers revision 0; `b` moves it on without `a` knowing.
    const { record } = await a.cases.start({ workflow: 'order' });
    expect(await b.advancer.apply(record.id, done('reserve', { id: 'r-2' }))).toBe('applied');
    expect(await a.advancer.apply(record.id, done('charge', { receipt: 'c-2' }))).toBe('applied');
    // A duplicate judged on the remembered state is checked against the store, not trusted.
    expect(await a.advancer.apply(record.id, done('reserve', { id: 'r-2' }))).toBe('duplicate');
    const stored = await a.store.getCase(record.id);
    expect(stored?.revision).toBe(2);
    expect([stored?.steps.reserve?.status, stored?.steps.charge?.status, stored?.steps.ship?.status]).toEqual(['completed', 'completed', 'scheduled']);
    const trace = await a.store.readTrace(record.id);
    expect(trace.filter((event) => event.type === 'step.completed')).toHaveLength(2);
    expect(trace.filter((event) => event.type === 'step.scheduled' && event.stepId === 'ship')).toHaveLength(1);
  });
});

describe('intake', () => {
  it('starts a case from a start job, and a redelivered job finds the same case', async () => {
    const {
      engines: [engine],
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await engine.workflows.apply(order);
    const process = intakeProcessor({ cases: engine.cases, clock: systemClock, logger, metrics: new Metrics('scheduler') });
    expect(await process(intakeDelivery({ workflow: 'order', input: { a: 1 } }, '17'))).toEqual({ kind: 'complete' });
    expect(await process(intakeDelivery({ workflow: 'order', input: { a: 1 } }, '17'))).toEqual({ kind: 'complete' });
    expect((await engine.store.listCases({ limit: 10 })).cases).toHaveLength(1);
  });

  it('fails a malformed job once with the reason', async () => {
    const {
      engines: [engine],
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await engine.workflows.apply(order);
    const process = intakeProcessor({ cases: engine.cases, clock: systemClock, logger, metrics: new Metrics('scheduler') });
    expect(await process(intakeDelivery('start order', '1'))).toEqual({ kind: 'fail', reason: 'INPUT_INVALID: start request is invalid: expected object' });
    expect(await process(intakeDelivery({ workflow: 'order', version: 9 }, '2'))).toEqual({ kind: 'fail', reason: 'WORKFLOW_NOT_FOUND: workflow "order" has no version 9' });
    expect(await process(intakeDelivery({ workflow: 'order' }, '3', 'stop'))).toMatchObject({ kind: 'fail', reason: expect.stringMatching(/^UNKNOWN_JOB_NAME/) });
  });

  it('defers a job, spending no attempt, while MongoDB cannot be reached', async () => {
    const config = loadConfig({ REDIS_URL: servers.redis.url, MONGO_URL: 'mongodb://127.0.0.1:1/nowhere' });
    const { CaseService } = await import('../../lib/engine/cases.js');
    const { StartRequests } = await import('../../lib/engine/start-requests.js');
    const { WorkflowRegistry } = await import('../../lib/engine/workflows.js');
    const { MongoStore } = await import('../../lib/adapters/mongo/store.js');
    const store = new MongoStore({ url: config.mongo.url, client: { serverSelectionTimeoutMS: 300 } });
    const workflows = new WorkflowRegistry(store, systemClock);
    const starts = new StartRequests({ store, workflows, clock: systemClock, newId: () => 'x' });
    const cases = new CaseService({ store, workflows, starts, debounced: undefined as never, repository: undefined as never, advancer: undefined as never, clock: systemClock });
    const process = intakeProcessor({ cases, clock: systemClock, logger, metrics: new Metrics('scheduler') });
    expect(await process(intakeDelivery({ workflow: 'order' }, '1'))).toMatchObject({ kind: 'defer', until: expect.any(Number) });
    await store.close();
  });
});

describe('results', () => {
  it('refuses a report that is not one', async () => {
    const {
      engines: [engine],
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    const process = resultsProcessor({ advancer: engine.advancer, clock: systemClock, logger, metrics: new Metrics('scheduler') });
    expect(await process(intakeDelivery({ caseId: 'x', event: { type: 'stepExploded' } }, '1', 'x'))).toMatchObject({ kind: 'fail', reason: expect.stringMatching(/^INPUT_INVALID: step report is invalid/) });
    expect(await process(intakeDelivery({ caseId: 'nope', event: done('a', 1) }, '2', 'stepCompleted'))).toEqual({ kind: 'complete' });
  });
});

describe('deadlines', () => {
  it('fail an open case once its deadline passes, once', async () => {
    const {
      engines: [engine],
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await engine.workflows.apply({ name: 'brief', deadline: 1, steps: [{ id: 'a', task: 't' }] });
    const { record } = await engine.cases.start({ workflow: 'brief' });
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await enforceDeadlines(engine)).toBe(1);
    expect(await enforceDeadlines(engine)).toBe(0);
    const failed = await engine.store.getCase(record.id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'DEADLINE_EXCEEDED' } });
  });
});

describe('reconciler', () => {
  it('re-enqueues a step whose job was lost and writes the projection of a case document behind its history', async () => {
    const {
      engines: [engine],
      mongoUrl,
      prefix,
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await engine.workflows.apply(order);
    const { record } = await engine.cases.start({ workflow: 'order' });
    await engine.advancer.apply(record.id, done('charge', { receipt: 'c' }));
    // Lose the reserve job (as Redis without persistence would). The case document is still the
    // creation's: a step's end that keeps the case running is its history entry alone.
    await engine.queues.queue('default').remove(`${record.id}.reserve`);
    const client = new MongoClient(mongoUrl);
    await client.connect();
    const before = await client
      .db()
      .collection('cases')
      .findOne({ _id: record.id as never });
    expect(before?.revision).toBe(0);

    const reconciler = new Reconciler({
      store: engine.store,
      queues: engine.queues,
      workflows: engine.workflows,
      repository: engine.repository,
      advancer: engine.advancer,
      monitor: new BullFleetMonitor(engine.queues, prefix),
      redis: engine.queues.connection,
      lockKey: `${prefix}:reconciler-lock`,
      clock: { now: () => Date.now() + 120_000 },
      logger,
      staleAfterMs: 60_000,
      stuckAfterMs: 300_000,
      lockTtlMs: 10_000,
    });
    expect(await reconciler.run()).toEqual({
      caseSlotsFreed: 0,
      casesChecked: 1,
      casesCaughtUp: 1,
      projectionsWritten: 0,
      jobsRestored: 1,
      jobsReplaced: 0,
      workersLost: 0,
      casesMarkedStuck: 0,
      reportsResent: 0,
    });
    expect(await engine.queues.stepJobState('default', `${record.id}.reserve`)).toBe('waiting');
    expect(await engine.store.getCase(record.id)).toMatchObject({ revision: 1, steps: { charge: { status: 'completed' } } });
    expect(
      await client
        .db()
        .collection('cases')
        .findOne({ _id: record.id as never }),
    ).toMatchObject({ revision: 1, steps: { charge: { status: 'completed' } } });
    await client.close();
    // A second run finds nothing more to do.
    expect(await reconciler.run()).toEqual({
      caseSlotsFreed: 0,
      casesChecked: 1,
      casesCaughtUp: 0,
      projectionsWritten: 0,
      jobsRestored: 0,
      jobsReplaced: 0,
      workersLost: 0,
      casesMarkedStuck: 0,
      reportsResent: 0,
    });
  });

  function reconcilerFor(engine: Engine, prefix: string, aheadMs: number) {
    return new Reconciler({
      store: engine.store,
      queues: engine.queues,
      workflows: engine.workflows,
      repository: engine.repository,
      advancer: engine.advancer,
      monitor: new BullFleetMonitor(engine.queues, prefix),
      redis: engine.queues.connection,
      lockKey: `${prefix}:reconciler-lock`,
      clock: { now: () => Date.now() + aheadMs },
      logger,
      staleAfterMs: 60_000,
      stuckAfterMs: 300_000,
      lockTtlMs: 10_000,
    });
  }

  /**
   * FerretDB v1 updates are not atomic: the writer of an earlier revision (the committer of
   * revision n, while another process caught the document up to n and committed n+1, as when
   * workers advance cases) can write back the document it read after the finishing update. The
   * case then looks open again, behind its history, and only the reconciler can catch it up.
   */
  async function documentPutBackAfterFinishing(engine: Engine, mongoUrl: string, prefix: string): Promise<void> {
    await engine.workflows.apply({ name: 'short', steps: [{ id: 'only', task: 'quick.one' }] });
    const { record } = await engine.cases.start({ workflow: 'short' });
    const client = new MongoClient(mongoUrl);
    await client.connect();
    try {
      const cases = client.db().collection('cases');
      const open = await cases.findOne({ _id: record.id as never });
      await engine.advancer.apply(record.id, done('only', { ok: true }));
      expect(await engine.store.getCase(record.id)).toMatchObject({ status: 'completed', revision: 1 });
      // The explorer's fleet page scans every open case (`before` = now) meanwhile: that must not
      // forget the case in the window where the slower writer can still put its document back.
      await engine.store.findStaleCases(Date.now() + 1, 500);
      await cases.replaceOne({ _id: record.id as never }, open as never);
      // A read folds the history the document lacks; the document itself (what lists, counts and
      // the periodic checks see) says running until the reconciler writes its projection again.
      expect(await engine.store.getCase(record.id)).toMatchObject({ status: 'completed', revision: 1 });
      expect(await cases.findOne({ _id: record.id as never })).toMatchObject({ status: 'running', revision: 0 });

      expect(await reconcilerFor(engine, prefix, 120_000).run()).toMatchObject({ casesChecked: 1, casesCaughtUp: 1 });
      expect(await engine.store.getCase(record.id)).toMatchObject({ status: 'completed', revision: 1, output: { only: { ok: true } } });
      expect(await cases.findOne({ _id: record.id as never })).toMatchObject({ status: 'completed', revision: 1 });
      // Once its document is seen finished past the stale threshold, the case is no longer looked at.
      expect(await engine.store.findStaleCases(Date.now() + 120_000, 10)).toEqual([]);
      expect(await reconcilerFor(engine, prefix, 120_000).run()).toMatchObject({ casesChecked: 0 });
      expect(
        await client
          .db()
          .collection('open_cases')
          .countDocuments({ _id: record.id as never }),
      ).toBe(0);
    } finally {
      await client.close();
    }
  }

  it('still finds a finished case whose document a slower writer put back behind its history, and catches it up', async () => {
    const {
      engines: [engine],
      mongoUrl,
      prefix,
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await documentPutBackAfterFinishing(engine, mongoUrl, prefix);
  });

  // FerretDB on SQLite filters nothing but `_id`: the store finds open cases through its registry
  // of open cases there, which must keep such a case (the suite's server may be another backend).
  it.runIf(process.env.WORKFLEET_TEST_FERRETDB_BIN)('the same on FerretDB over SQLite, where open cases are found through their registry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wf-scheduler-sqlite-'));
    const ferret = await startFerretDB({ bin: process.env.WORKFLEET_TEST_FERRETDB_BIN ?? '', backend: { sqliteDir: dir } });
    const { prefix } = servers.namespace();
    const mongoUrl = `${ferret.baseUrl}wf_registry`;
    const engine = await createEngine(loadConfig({ REDIS_URL: servers.redis.url, MONGO_URL: mongoUrl, BULLMQ_PREFIX: prefix }), logger, new Metrics('scheduler'));
    try {
      expect((engine.store as { serverFeatures?: { filtersBeyondId: boolean } }).serverFeatures?.filtersBeyondId).toBe(false);
      await documentPutBackAfterFinishing(engine, mongoUrl, prefix);
    } finally {
      await engine.close();
      await ferret.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('marks a case stuck with the reason it sees, once, and progress clears the mark', async () => {
    const {
      engines: [engine],
      prefix,
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await engine.workflows.apply({ name: 'lonely', steps: [{ id: 'only', task: 'nobody.home', queue: 'unserved' }] });
    const { record } = await engine.cases.start({ workflow: 'lonely' });

    // Stale but not yet past the stuck threshold: checked, not marked.
    expect(await reconcilerFor(engine, prefix, 120_000).run()).toMatchObject({ casesChecked: 1, casesMarkedStuck: 0 });
    const late = reconcilerFor(engine, prefix, 600_000);
    expect(await late.run()).toMatchObject({ casesChecked: 1, casesMarkedStuck: 1 });
    const stuck = await engine.store.getCase(record.id);
    expect(stuck?.stuck?.reason).toMatch(/step "only" has waited on queue "unserved" since .*no live worker takes that queue/);
    // Marking is a remark, not progress: the case's last progress time stands.
    expect(stuck?.updatedAt).toBe(record.updatedAt);
    expect(await engine.store.findStuckCases(10)).toMatchObject({ count: 1, cases: [{ id: record.id }] });
    // The same situation is not recorded again.
    expect(await late.run()).toMatchObject({ casesMarkedStuck: 0 });
    expect((await engine.store.readTrace(record.id)).filter((event) => event.type === 'case.stuck')).toHaveLength(1);

    await engine.advancer.apply(record.id, done('only', { ok: true }));
    const moved = await engine.store.getCase(record.id);
    expect(moved?.status).toBe('completed');
    expect(moved?.stuck).toBeUndefined();
    expect((await engine.store.findStuckCases(10)).count).toBe(0);
  });

  it('sends again the report a finished job kept when the case never got it, instead of running the task again', async () => {
    const {
      engines: [engine],
      prefix,
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await engine.workflows.apply({ name: 'once', steps: [{ id: 'pay', task: 'payments.charge', queue: 'pay' }] });
    const { record } = await engine.cases.start({ workflow: 'once' });
    let runs = 0;
    // A worker that finished the task and kept its report, whose report to the scheduler was lost.
    const worker = new Worker(
      'pay',
      async (job) => {
        runs += 1;
        const at = Date.now();
        return { reports: [{ caseId: record.id, event: { type: 'stepCompleted', stepId: String(job.id).split('.')[1], attempt: 1, at, startedAt: at - 3, output: { receipt: 'r-1' } } }] };
      },
      { connection: { url: servers.redis.url, maxRetriesPerRequest: null }, prefix },
    );
    try {
      await waitFor('the job to complete', async () => ((await engine.queues.stepJobState('pay', `${record.id}.pay`)) === 'completed' ? true : undefined));
    } finally {
      await worker.close();
    }
    expect(await reconcilerFor(engine, prefix, 120_000).run()).toMatchObject({ reportsResent: 1, jobsReplaced: 0 });
    // The scheduler's results consumer applies it; here the test does, from the results queue.
    const sent = await engine.queues.queue('results').getWaiting();
    expect(sent.map((job) => job.data.event.type as string)).toEqual(['stepCompleted']);
    for (const job of sent) await engine.advancer.apply(job.data.caseId, job.data.event);
    expect(await engine.store.getCase(record.id)).toMatchObject({ status: 'completed', output: { pay: { receipt: 'r-1' } }, steps: { pay: { status: 'completed', output: { receipt: 'r-1' } } } });
    expect(runs).toBe(1);
  });

  it('fails a step with WORKER_LOST when its workers kept dying under its job, instead of running it again', async () => {
    const {
      engines: [engine],
      prefix,
    } = await replicas(1);
    if (!engine) throw new Error('engine expected');
    await engine.workflows.apply({ name: 'doomed', steps: [{ id: 'crash', task: 'crash.always', queue: 'crashy', retry: { maxAttempts: 3 } }] });
    const { record } = await engine.cases.start({ workflow: 'doomed' });
    // A worker takes the job and vanishes without a word (its lock is never renewed) ...
    const connection = { url: servers.redis.url, maxRetriesPerRequest: null };
    const vanished = new Worker('crashy', null, { connection, prefix, lockDuration: 500, autorun: false });
    const taken = await vanished.getNextJob('token-of-a-dead-worker');
    expect(taken?.id).toBe(`${record.id}.crash`);
    // ... and the queue's stall check, allowed no stalls here, fails the job.
    const checker = new Worker('crashy', async () => undefined, { connection, prefix, lockDuration: 500, stalledInterval: 300, maxStalledCount: 0 });
    try {
      await waitFor('the stalled job to fail', async () => ((await engine.queues.stepJobState('crashy', `${record.id}.crash`)) === 'failed' ? true : undefined));
    } finally {
      await Promise.all([checker.close(), vanished.close(true)]);
    }
    expect(await engine.queues.inspectStepJob('crashy', `${record.id}.crash`)).toMatchObject({ state: 'failed', stalls: 1 });

    expect(await reconcilerFor(engine, prefix, 120_000).run()).toMatchObject({ workersLost: 1, jobsReplaced: 0 });
    const failed = await engine.store.getCase(record.id);
    expect(failed?.status).toBe('failed');
    expect(failed?.steps.crash?.error).toMatchObject({ code: 'WORKER_LOST', retryable: false });
    expect(failed?.steps.crash?.error?.message).toMatch(/lost 1 time/);
    expect(await engine.queues.stepJobState('crashy', `${record.id}.crash`)).toBe('failed');
  });
});
