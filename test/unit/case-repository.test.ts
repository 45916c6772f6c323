import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../../lib/adapters/memory/store.js';
import type { CaseEvent, CaseState, TraceEvent } from '../../lib/core/state.js';
import type { CaseRead, CaseRecord, CreateResult } from '../../lib/ports/store.js';
import { memoryEngine } from '../helpers/memory-engine.js';
import { orderDefinition, T0 } from './fixtures.js';

/**
 * A MemoryStore whose case documents lag their history as MongoDB's do: a document is written at
 * creation and by `writeProjection` only, which can be held (to see what happens meanwhile) or
 * made to fail once.
 */
class ProjectingStore extends MemoryStore {
  readonly documents = new Map<string, CaseState>();
  projectionsStarted = 0;
  private held: Promise<void> | undefined;
  private release: () => void = () => undefined;
  private failure: Error | undefined;

  hold(): void {
    this.held = new Promise((resolve) => (this.release = resolve));
  }

  letGo(): void {
    this.release();
    this.held = undefined;
  }

  failNextProjection(error: Error): void {
    this.failure = error;
  }

  override async createCase(record: CaseRecord, events: readonly TraceEvent[]): Promise<CreateResult> {
    const created = await super.createCase(record, events);
    if (created.created) this.documents.set(record.id, structuredClone(record));
    return created;
  }

  override async readCase(id: string): Promise<CaseRead | undefined> {
    const record = await this.getCase(id);
    const projected = this.documents.get(id);
    return record && projected && { record, projected: structuredClone(projected) };
  }

  /** Every transition, as if each changed what queries read. */
  override projects(): boolean {
    return true;
  }

  override async writeProjection(_previous: CaseState, next: CaseState): Promise<boolean> {
    this.projectionsStarted += 1;
    await this.held;
    const failure = this.failure;
    this.failure = undefined;
    if (failure) throw failure;
    if ((this.documents.get(next.id)?.revision ?? Infinity) >= next.revision) return false;
    this.documents.set(next.id, structuredClone(next));
    return true;
  }
}

const completed = (stepId: string, output: unknown, at = T0 + 10): CaseEvent => ({ type: 'stepCompleted', stepId, attempt: 1, at, startedAt: at - 5, output });

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function orderCase(store: ProjectingStore) {
  const engine = memoryEngine({ now: T0 + 1_000, store });
  await engine.workflows.apply(orderDefinition);
  const { record } = await engine.cases.start({ workflow: 'order', input: { sku: 'book', amount: 25 } });
  expect(await engine.advancer.apply(record.id, completed('reserve', { id: 'r-1' }))).toBe('applied');
  return { ...engine, id: record.id };
}

describe('CaseRepository', () => {
  it('sends the next steps out while the case document is being written, and answers once it is', async () => {
    const store = new ProjectingStore();
    const { advancer, queues, id } = await orderCase(store);
    store.hold();
    let answered = false;
    const applying = advancer.apply(id, completed('charge', { receipt: 'c-9' }, T0 + 20)).finally(() => (answered = true));
    await until(() => store.projectionsStarted === 2 && queues.job(`${id}.ship`) !== undefined, 'the projection to start and the next step to be enqueued');
    expect(answered).toBe(false);
    expect(store.documents.get(id)?.revision).toBe(1);
    store.letGo();
    expect(await applying).toBe('applied');
    expect(store.documents.get(id)?.revision).toBe(2);
  });

  it('fails an application whose projection fails, committed all the same; its retry is a duplicate that writes the document', async () => {
    const store = new ProjectingStore();
    const { advancer, queues, id } = await orderCase(store);
    const charge = completed('charge', { receipt: 'c-9' }, T0 + 20);
    store.failNextProjection(new Error('store unreachable'));
    await expect(advancer.apply(id, charge)).rejects.toThrow('store unreachable');
    expect((await store.getCase(id))?.revision).toBe(2);
    expect(queues.job(`${id}.ship`)).toMatchObject({ input: { reservation: 'r-1' } });
    expect(store.documents.get(id)?.revision).toBe(1);
    expect(await advancer.apply(id, charge)).toBe('duplicate');
    expect(store.documents.get(id)).toEqual(await store.getCase(id));
    expect(queues.stepRequests.filter((item) => item.job.stepId === 'ship')).toHaveLength(2);
  });
});
