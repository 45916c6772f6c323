import { describe, expect, it } from 'vitest';
import type { CaseEvent } from '../../lib/core/state.js';
import { DefinitionInvalidError } from '../../lib/core/errors.js';
import { validateDefinition } from '../../lib/core/validate.js';
import { memoryEngine, type MemoryEngine } from '../helpers/memory-engine.js';
import { T0 } from './fixtures.js';

/**
 * Case-level concurrency keys through the engine (core rules, CaseSlots and the in-memory gate):
 * a case of a keyed workflow waits for its slot before its steps start, gives it up when it
 * ends, and a full key does what its strategy says. Reports between cases go through the
 * recording queues; `deliver` applies them as the scheduler would.
 */

const definition = (strategy?: string) => ({
  name: 'sync',
  concurrency: { key: '${input.account}', limit: 1, ...(strategy ? { strategy } : {}) },
  steps: [{ id: 'pull', task: 'sync.pull', input: { account: '${input.account}' } }],
});

async function engineWith(strategy?: string): Promise<MemoryEngine> {
  const engine = memoryEngine({ now: T0 });
  await engine.workflows.apply(definition(strategy));
  return engine;
}

/** Applies the reports sent so far (caseAdmitted, cancels) as the scheduler would, until none are left. */
async function deliver(engine: MemoryEngine): Promise<void> {
  for (let rounds = 0; engine.queues.reports.length > 0 && rounds < 20; rounds++) {
    for (const report of engine.queues.reports.splice(0)) await engine.advancer.apply(report.caseId, report.event);
  }
}

const start = async (engine: MemoryEngine, account: string, priority?: number) => (await engine.cases.start({ workflow: 'sync', input: { account }, ...(priority === undefined ? {} : { priority }) })).record.id;

const done = (at: number): CaseEvent => ({ type: 'stepCompleted', stepId: 'pull', attempt: 1, at, startedAt: at - 1, output: {} });

const statusOf = async (engine: MemoryEngine, id: string) => (await engine.cases.get(id)).status;
const pulling = (engine: MemoryEngine) => engine.queues.jobIds().filter((jobId) => jobId.endsWith('.pull'));

describe('a workflow concurrency key', () => {
  it('queues a case while its key is full, and starts it when the holder ends', async () => {
    const engine = await engineWith();
    const first = await start(engine, 'acme');
    const second = await start(engine, 'acme');
    const other = await start(engine, 'globex');
    await deliver(engine);
    expect(pulling(engine)).toEqual([`${first}.pull`, `${other}.pull`]);
    expect((await engine.cases.trace(second)).map((event) => event.type)).toEqual(['case.created', 'case.queued']);
    await engine.advancer.apply(first, done(T0 + 10));
    await deliver(engine);
    expect(await statusOf(engine, first)).toBe('completed');
    expect(pulling(engine)).toContain(`${second}.pull`);
    const trace = (await engine.cases.trace(second)).map((event) => event.type);
    expect(trace.slice(0, 4)).toEqual(['case.created', 'case.queued', 'case.admitted', 'step.scheduled']);
  });

  it('lets a higher-priority start go ahead in line', async () => {
    const engine = await engineWith();
    const holder = await start(engine, 'acme');
    const low = await start(engine, 'acme');
    const high = await start(engine, 'acme', 50);
    await deliver(engine);
    await engine.advancer.apply(holder, done(T0 + 10));
    await deliver(engine);
    expect(pulling(engine)).toContain(`${high}.pull`);
    expect(pulling(engine)).not.toContain(`${low}.pull`);
  });

  it('cancel-in-progress: the latest start wins, the oldest is cancelled with the reason in its trace', async () => {
    const engine = await engineWith('cancel-in-progress');
    const old = await start(engine, 'acme');
    await deliver(engine);
    const latest = await start(engine, 'acme');
    await deliver(engine);
    expect(await statusOf(engine, old)).toBe('cancelled');
    expect((await engine.cases.get(old)).error?.message).toMatch(/^cancel-in-progress: case .* started with key "acme"/);
    expect(pulling(engine)).toEqual([`${latest}.pull`]);
    expect(await statusOf(engine, latest)).toBe('running');
  });

  it('cancel-newest: the newcomer is cancelled while the key is full; the holder runs on', async () => {
    const engine = await engineWith('cancel-newest');
    const holder = await start(engine, 'acme');
    const newcomer = await start(engine, 'acme');
    await deliver(engine);
    expect(await statusOf(engine, newcomer)).toBe('cancelled');
    expect((await engine.cases.trace(newcomer)).map((event) => event.type)).toEqual(['case.created', 'case.queued', 'case.cancelled']);
    expect(await statusOf(engine, holder)).toBe('running');
    // Once the holder has ended, the key has room again.
    await engine.advancer.apply(holder, done(T0 + 10));
    await deliver(engine);
    const next = await start(engine, 'acme');
    await deliver(engine);
    expect(pulling(engine)).toContain(`${next}.pull`);
  });

  it('frees the place of a queued case that is cancelled, and re-queues a retried case for a slot', async () => {
    const engine = await engineWith();
    const holder = await start(engine, 'acme');
    const queued = await start(engine, 'acme');
    await deliver(engine);
    await engine.cases.cancel(queued, { reason: 'not needed' });
    await deliver(engine);
    expect(await statusOf(engine, queued)).toBe('cancelled');
    await engine.advancer.apply(holder, { type: 'stepFailed', stepId: 'pull', attempt: 3, at: T0 + 20, error: { code: 'X', message: 'x', retryable: false } });
    await deliver(engine);
    expect(await statusOf(engine, holder)).toBe('failed');
    const blocker = await start(engine, 'acme');
    await deliver(engine);
    await engine.cases.retry(holder);
    await deliver(engine);
    const types = (await engine.cases.trace(holder)).map((event) => event.type);
    expect(types.slice(-2)).toEqual(['case.retried', 'case.queued']);
    await engine.advancer.apply(blocker, done(T0 + 30));
    await deliver(engine);
    expect((await engine.cases.trace(holder)).map((event) => event.type)).toContain('case.admitted');
  });
});

describe('the key groups of workflow-level keys', () => {
  it('are not open to steps: a step group, breaker or task named workflow:… is refused with its path', () => {
    const refusal = (() => {
      try {
        validateDefinition(definitionWithGroups);
        return undefined;
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(DefinitionInvalidError);
    expect((refusal as DefinitionInvalidError).issues.map((issue) => issue.path)).toEqual(['steps[0].concurrency.group', 'steps[1].rateLimit', 'steps[2].concurrency']);
  });
});

const definitionWithGroups = {
  name: 'steps',
  steps: [
    { id: 'own', task: 'crm.call', concurrency: { key: 'x', limit: 1, group: 'workflow:sync' } },
    { id: 'breaker', task: 'crm.call', breaker: 'workflow:sync', rateLimit: { key: 'x', max: 1, per: '1s' } },
    { id: 'task', task: 'workflow:sync', concurrency: { key: 'x', limit: 1 } },
    { id: 'fine', task: 'crm.call', concurrency: { key: 'x', limit: 1, group: 'workflows' } },
  ],
};
