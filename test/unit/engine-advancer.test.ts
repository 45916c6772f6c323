import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../lib/adapters/memory/store.js';
import type { CaseEvent, CaseState, TraceEvent } from '../../lib/core/state.js';
import { memoryEngine } from '../helpers/memory-engine.js';
import { orderDefinition, T0 } from './fixtures.js';

/** CaseAdvancer on the MemoryStore: each report applied once, whatever the races and redeliveries. */

async function orderEngine(store?: MemoryStore) {
  const engine = memoryEngine({ now: T0 + 1_000, ...(store ? { store } : {}) });
  await engine.workflows.apply(orderDefinition);
  const { record } = await engine.cases.start({ workflow: 'order', input: { sku: 'book', amount: 25 } });
  return { ...engine, id: record.id, started: record as CaseState };
}

const completed = (stepId: string, output: unknown, at = T0 + 10): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at, startedAt: at - 5, output });

const completions = (trace: readonly TraceEvent[]) => trace.filter((event) => event.type === 'step.completed').map((event) => event.stepId);

/** Every seq once, from 1 up: a revision committed twice would repeat its events' seqs. */
function expectOneTrace(trace: readonly TraceEvent[]): void {
  expect(trace.map((event) => event.seq)).toEqual(trace.map((_, index) => index + 1));
}

/**
 * Holds the first `writers` commits until all of them have arrived, so that they decide the
 * same revision from the same state: a race with a known outcome instead of a lucky timing.
 */
class RaceStore extends MemoryStore {
  readonly commits: Array<{ revision: number; outcome: 'committed' | 'conflict' }> = [];
  private arrived = 0;
  private release: () => void = () => undefined;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));

  constructor(private readonly writers: number) {
    super();
  }

  override async appendTransition(previous: CaseState, next: CaseState, events: readonly TraceEvent[]): Promise<'committed' | 'conflict'> {
    if (this.arrived < this.writers) {
      this.arrived += 1;
      if (this.arrived === this.writers) this.release();
      await this.gate;
    }
    const outcome = await super.appendTransition(previous, next, events);
    this.commits.push({ revision: next.revision, outcome });
    return outcome;
  }
}

describe('CaseAdvancer', () => {
  it('applies completions, enqueues the joined step with rendered input, and finishes the case', async () => {
    const { advancer, store, queues, id } = await orderEngine();
    expect(await advancer.apply(id, completed('reserve', { id: 'r-1' }))).toBe('applied');
    expect(queues.job(`${id}.ship`)).toBeUndefined();
    expect(await advancer.apply(id, completed('charge', { receipt: 'c-9' }, T0 + 20))).toBe('applied');
    expect(queues.job(`${id}.ship`)).toMatchObject({ task: 'shipping.ship', input: { reservation: 'r-1', note: 'receipt c-9' } });
    expect(await advancer.apply(id, completed('ship', { tracking: 't-1' }, T0 + 30))).toBe('applied');
    const finished = await store.getCase(id);
    expect(finished).toMatchObject({ status: 'completed', revision: 3, steps: { ship: { status: 'completed', output: { tracking: 't-1' } } } });
    const trace = await store.readTrace(id);
    expectOneTrace(trace);
    expect(trace.at(-1)?.type).toBe('case.completed');
    expect(await advancer.apply('01a00000-0000-7000-8000-0000000fffff', completed('reserve', {}))).toBe('unknown-case');
  });

  it('applies a report delivered twice once, in turn or at once', async () => {
    const { advancer, store, id } = await orderEngine();
    const report = completed('reserve', { id: 'r-1' });
    expect(await advancer.apply(id, report)).toBe('applied');
    expect(await advancer.apply(id, report)).toBe('duplicate');
    expect((await store.getCase(id))?.revision).toBe(1);
    // At once: the second waits in the case's mailbox and is judged on what the first committed.
    const charge = completed('charge', { receipt: 'c-9' }, T0 + 20);
    expect(await Promise.all([advancer.apply(id, charge), advancer.apply(id, charge)])).toEqual(['applied', 'duplicate']);
    expect((await store.getCase(id))?.revision).toBe(2);
    const trace = await store.readTrace(id);
    expectOneTrace(trace);
    expect(completions(trace)).toEqual(['reserve', 'charge']);
  });

  it('applies reports that arrive while one is being applied together, as one transition', async () => {
    const { advancer, store, id } = await orderEngine();
    const outcomes = await Promise.all([
      advancer.apply(id, { type: 'stepStarted', stepId: 'reserve', attempt: 1, at: T0 + 5 }),
      advancer.apply(id, completed('reserve', { id: 'r-1' })),
      advancer.apply(id, completed('charge', { receipt: 'c-9' })),
    ]);
    expect(outcomes).toEqual(['applied', 'applied', 'applied']);
    expect(await store.getCase(id)).toMatchObject({ revision: 2, steps: { ship: { status: 'scheduled' } } });
    expect(completions(await store.readTrace(id))).toEqual(['reserve', 'charge']);
  });

  it('enqueues again, on a duplicate report, the steps its first application could not enqueue', async () => {
    const { advancer, store, queues, id } = await orderEngine();
    await advancer.apply(id, completed('reserve', { id: 'r-1' }));
    const charge = completed('charge', { receipt: 'c-9' }, T0 + 20);
    queues.failNextEnqueue(new Error('redis unreachable'));
    await expect(advancer.apply(id, charge)).rejects.toThrow('redis unreachable');
    expect((await store.getCase(id))?.steps.ship?.status).toBe('scheduled');
    expect(queues.job(`${id}.ship`)).toBeUndefined();
    // The report's job is retried: nothing is applied twice, and what was decided goes out.
    expect(await advancer.apply(id, charge)).toBe('duplicate');
    expect(queues.job(`${id}.ship`)).toMatchObject({ input: { reservation: 'r-1' } });
    expect((await store.getCase(id))?.revision).toBe(2);
  });

  it('lets two advancers racing on one case commit each revision once: the loser re-reads and applies on top', async () => {
    const store = new RaceStore(2);
    const engine = await orderEngine(store);
    const other = engine.peer();
    const { id } = engine;
    const outcomes = await Promise.all([engine.advancer.apply(id, completed('reserve', { id: 'r-1' })), other.advancer.apply(id, completed('charge', { receipt: 'c-9' }))]);
    expect(outcomes).toEqual(['applied', 'applied']);
    expect(store.commits).toEqual([
      { revision: 1, outcome: 'committed' },
      { revision: 1, outcome: 'conflict' },
      { revision: 2, outcome: 'committed' },
    ]);
    expect(engine.conflicts() + other.conflicts()).toBe(1);
    const record = await store.getCase(id);
    expect(record).toMatchObject({ revision: 2, steps: { reserve: { output: { id: 'r-1' } }, charge: { output: { receipt: 'c-9' } }, ship: { status: 'scheduled' } } });
    const trace = await store.readTrace(id);
    expectOneTrace(trace);
    expect(completions(trace).sort()).toEqual(['charge', 'reserve']);
    expect(engine.queues.stepRequests.filter((item) => item.job.stepId === 'ship')).toHaveLength(1);
  });

  it('pays for a stale remembered state with a conflict, never a second application or a lost update', async () => {
    const { advancer, peer, store, started, id } = await orderEngine();
    const other = peer();
    // The other scheduler last saw revision 0 (it started the case, say), then this one moved it on.
    other.repository.remember(started);
    const reserve = completed('reserve', { id: 'r-1' });
    expect(await advancer.apply(id, reserve)).toBe('applied');
    // The same report redelivered to the other scheduler: decided on revision 0, refused, re-read.
    expect(await other.advancer.apply(id, reserve)).toBe('duplicate');
    expect(other.conflicts()).toBe(1);
    expect((await store.getCase(id))?.revision).toBe(1);
    // A new report on a stale state: applied on top of revision 1, which keeps reserve's output.
    other.repository.remember(started);
    expect(await other.advancer.apply(id, completed('charge', { receipt: 'c-9' }))).toBe('applied');
    expect(other.conflicts()).toBe(2);
    expect(await store.getCase(id)).toMatchObject({ revision: 2, steps: { reserve: { output: { id: 'r-1' } }, ship: { status: 'scheduled' } } });
    const trace = await store.readTrace(id);
    expectOneTrace(trace);
    expect(completions(trace)).toEqual(['reserve', 'charge']);
  });
});

describe('CaseAdvancer with sub-workflows', () => {
  const parentDefinition = { name: 'parent', steps: [{ id: 'kid', workflow: { name: 'child' }, input: { n: '${input.n}' } }] };
  const childDefinition = { name: 'child', steps: [{ id: 'work', task: 'child.work', input: { n: '${input.n}' } }] };

  it('starts a child once, however often asked, and finishes the parent with the notice the child sends', async () => {
    const { workflows, cases, advancer, store, queues } = memoryEngine({ now: T0 });
    await workflows.apply(parentDefinition);
    await workflows.apply(childDefinition);
    const { record: parent } = await cases.start({ workflow: 'parent', input: { n: 3 } });
    const [started] = queues.reports;
    expect(started).toMatchObject({ caseId: parent.id, event: { type: 'childStarted', stepId: 'kid', run: 0 } });
    const childId = (started?.event as { childId: string }).childId;
    expect(await store.getCase(childId)).toMatchObject({ workflow: 'child', input: { n: 3 }, parent: { caseId: parent.id, stepId: 'kid', run: 0 }, depth: 1 });
    expect(queues.job(`${childId}.work`)).toMatchObject({ input: { n: 3 } });

    // A repeated start (the parent's commands carried out again) finds the same child.
    const startChild = { type: 'startChild' as const, parent: { caseId: parent.id, stepId: 'kid', run: 0 }, depth: 1, idempotencyKey: `${parent.id}:kid:0`, request: { workflow: 'child', input: { n: 3 } } };
    const first = await cases.startChild(startChild);
    const again = await cases.startChild(startChild);
    expect([again.created, again.record.id]).toEqual([false, first.record.id]);

    expect(await advancer.apply(parent.id, started?.event as CaseEvent)).toBe('applied');
    expect(await advancer.apply(childId, completed('work', { total: 9 }))).toBe('applied');
    const notice = queues.reports.find((report) => report.caseId === parent.id && report.event.type === 'childFinished');
    // A workflow without a declared output ends with its steps' outputs.
    expect(notice?.event).toMatchObject({ childId, status: 'completed', output: { work: { total: 9 } } });
    expect(await advancer.apply(parent.id, notice?.event as CaseEvent)).toBe('applied');
    expect(await store.getCase(parent.id)).toMatchObject({ status: 'completed', steps: { kid: { status: 'completed', output: { work: { total: 9 } } } } });
  });

  it("fails the step, starting no child, when the child workflow's input schema refuses the input", async () => {
    const { workflows, cases, advancer, store, queues } = memoryEngine({ now: T0 });
    await workflows.apply(parentDefinition);
    await workflows.apply({ ...childDefinition, input: { type: 'object', properties: { n: { type: 'integer', minimum: 1 } } } });
    const { record: parent } = await cases.start({ workflow: 'parent', input: { n: 0 } });
    expect((await store.listCases({ limit: 10 })).cases.map((record) => record.workflow)).toEqual(['parent']);
    const [refused] = queues.reports;
    expect(refused?.event).toMatchObject({ type: 'childFinished', stepId: 'kid', status: 'failed', error: { code: 'INPUT_INVALID', message: 'input of workflow child v1 is invalid: input.n: must be >= 1' } });
    expect(await advancer.apply(parent.id, refused?.event as CaseEvent)).toBe('applied');
    expect(await store.getCase(parent.id)).toMatchObject({
      status: 'failed',
      steps: { kid: { status: 'failed', error: { code: 'CHILD_FAILED', details: { childId: 'none', cause: { code: 'INPUT_INVALID' } } } } },
    });
  });

  it('asks the open children of a cancelled parent to cancel', async () => {
    const { workflows, cases, advancer, queues } = memoryEngine({ now: T0 });
    await workflows.apply(parentDefinition);
    await workflows.apply(childDefinition);
    const { record: parent } = await cases.start({ workflow: 'parent', input: { n: 1 } });
    const childId = (queues.reports[0]?.event as { childId: string }).childId;
    await advancer.apply(parent.id, queues.reports[0]?.event as CaseEvent);
    await cases.cancel(parent.id, { reason: 'stop' });
    const cancel = queues.reports.find((report) => report.caseId === childId && report.event.type === 'cancel');
    expect(cancel?.event).toMatchObject({ reason: 'parent cancelled: stop' });
    expect(await advancer.apply(childId, cancel?.event as CaseEvent)).toBe('applied');
    expect((await cases.get(childId)).status).toBe('cancelled');
  });
});
