import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../lib/adapters/memory/store.js';
import type { CaseEvent } from '../../lib/core/state.js';
import { startRedisServer, type RedisServer } from '../../lib/local-servers/redis-server.js';
import { createLogger } from '../../lib/obs/logger.js';
import type { CaseRecord } from '../../lib/ports/store.js';
import { Reconciler } from '../../scheduler/reconciler.js';
import { memoryEngine, type MemoryEngine } from '../helpers/memory-engine.js';

/**
 * The reconciler on the MemoryStore with its lock on a real redis-server (no FerretDB): one
 * scheduler at a time, and the notice of a finished child sent again. Its repairs against real
 * servers: test/integration/scheduler.test.ts.
 */

const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);
const STALE_MS = 60_000;
const logger = createLogger({ level: 'silent', name: 'reconciler-test' });

let redisServer: RedisServer;
let redis: Redis;
let dir: string;
let locks = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'workfleet-reconciler-'));
  redisServer = await startRedisServer({ dir });
  redis = new Redis(redisServer.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  redis?.disconnect();
  await redisServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function reconcilerFor(engine: MemoryEngine, lockKey: string): Reconciler {
  return new Reconciler({
    gate: engine.limits,
    store: engine.store,
    queues: engine.queues,
    workflows: engine.workflows,
    repository: engine.repository,
    advancer: engine.advancer,
    monitor: { members: async () => [] },
    redis,
    lockKey,
    clock: engine.clock,
    logger,
    staleAfterMs: STALE_MS,
    stuckAfterMs: 10 * STALE_MS,
    lockTtlMs: 30_000,
  });
}

/** Holds the first look for stale cases until released, and says when it is waiting. */
class HeldStore extends MemoryStore {
  entered!: () => void;
  readonly inside = new Promise<void>((resolve) => (this.entered = resolve));
  release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));
  private held = false;

  override async findStaleCases(before: number, limit: number, afterId?: string): Promise<CaseRecord[]> {
    if (!this.held) {
      this.held = true;
      this.entered();
      await this.gate;
    }
    return super.findStaleCases(before, limit, afterId);
  }
}

describe('Reconciler', () => {
  it('runs in one scheduler at a time: another that tries meanwhile does nothing, and the lock is let go after', async () => {
    const store = new HeldStore();
    const engine = memoryEngine({ now: T0, store });
    const lockKey = `reconciler-lock-${++locks}`;
    const first = reconcilerFor(engine, lockKey).run();
    await store.inside;
    expect(await redis.exists(lockKey)).toBe(1);
    expect(await reconcilerFor(engine, lockKey).run()).toBeUndefined();
    store.release();
    expect(await first).toMatchObject({ casesChecked: 0 });
    expect(await redis.exists(lockKey)).toBe(0);
    expect(await reconcilerFor(engine, lockKey).run()).toMatchObject({ casesChecked: 0 });
  });

  it('leaves alone a lock another scheduler took after its own lapsed', async () => {
    const store = new HeldStore();
    const engine = memoryEngine({ now: T0, store });
    const lockKey = `reconciler-lock-${++locks}`;
    const first = reconcilerFor(engine, lockKey).run();
    await store.inside;
    // Its lock lapsed (a long pause) and another scheduler holds the key now.
    await redis.set(lockKey, 'another-scheduler');
    store.release();
    await first;
    expect(await redis.get(lockKey)).toBe('another-scheduler');
  });

  it('sends again the notice of a child that finished while its parent never heard, and the parent completes once', async () => {
    const engine = memoryEngine({ now: T0 });
    await engine.workflows.apply({ name: 'leaf', steps: [{ id: 'work', task: 'leaf.work' }] });
    await engine.workflows.apply({ name: 'root', steps: [{ id: 'kid', workflow: { name: 'leaf' } }] });
    const { record: parent } = await engine.cases.start({ workflow: 'root' });
    const childStarted = engine.queues.reports.find((report) => report.caseId === parent.id)?.event as CaseEvent & { childId: string };
    expect(await engine.advancer.apply(parent.id, childStarted)).toBe('applied');
    expect(await engine.advancer.apply(childStarted.childId, { type: 'stepCompleted', stepId: 'work', attempt: 1, at: T0 + 10, startedAt: T0 + 5, output: { n: 1 } })).toBe('applied');
    // The child's notice to its parent is lost (Redis lost its results queue).
    expect(engine.queues.reports.some((report) => report.caseId === parent.id && report.event.type === 'childFinished')).toBe(true);
    engine.queues.reports.length = 0;

    engine.clock.time = T0 + STALE_MS + 1_000;
    expect(await reconcilerFor(engine, `reconciler-lock-${++locks}`).run()).toMatchObject({ casesChecked: 1 });
    const resent = engine.queues.reports.filter((report) => report.caseId === parent.id && report.event.type === 'childFinished');
    expect(resent.length).toBeGreaterThan(0);
    for (const report of resent) await engine.advancer.apply(parent.id, report.event);
    expect(await engine.store.getCase(parent.id)).toMatchObject({ status: 'completed', steps: { kid: { status: 'completed', output: { work: { n: 1 } } } } });
    expect((await engine.store.readTrace(parent.id)).filter((event) => event.type === 'step.completed' && event.stepId === 'kid')).toHaveLength(1);
  });

  it('frees the slot of a workflow concurrency key that an ended case still holds (its release lost in a crash), admitting the next case', async () => {
    const engine = memoryEngine({ now: T0 });
    await engine.workflows.apply({ name: 'sync', concurrency: { key: '${input.account}', limit: 1 }, steps: [{ id: 'pull', task: 'sync.pull' }] });
    const deliver = async () => {
      for (const report of engine.queues.reports.splice(0)) await engine.advancer.apply(report.caseId, report.event);
    };
    const ended = (await engine.cases.start({ workflow: 'sync', input: { account: 'acme' } })).record.id;
    await deliver();
    await engine.advancer.apply(ended, { type: 'stepCompleted', stepId: 'pull', attempt: 1, at: T0 + 5, startedAt: T0 + 1, output: {} });
    await deliver();
    expect((await engine.cases.get(ended)).status).toBe('completed');
    // The release was lost: the ended case holds the slot again.
    await engine.limits.offer([{ group: 'workflow:sync', key: 'acme', limit: 1, jobId: ended, queue: '', priority: 0, payload: 'case' }], T0 + 6);
    const next = (await engine.cases.start({ workflow: 'sync', input: { account: 'acme' } })).record.id;
    await deliver();
    expect(engine.queues.jobIds()).not.toContain(`${next}.pull`);
    const report = await reconcilerFor(engine, 'case-slots').run();
    expect(report?.caseSlotsFreed).toBe(1);
    await deliver();
    expect(engine.queues.jobIds()).toContain(`${next}.pull`);
  });
});
