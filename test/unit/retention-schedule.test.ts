import { describe, expect, it } from 'vitest';
import { RETENTION_PAUSE_MS, RetentionSchedule } from '../../scheduler/retention.js';
import { ManualClock, memoryEngine } from '../helpers/memory-engine.js';
import { orderDefinition, T0 } from './fixtures.js';

/** Retention runs once an hour unless it has a backlog; each run deletes what is due. */

const DAY = 86_400_000;

async function finishedCases(count: number) {
  const engine = memoryEngine({ now: T0 });
  await engine.workflows.apply(orderDefinition);
  for (let i = 0; i < count; i++) {
    const { record } = await engine.cases.start({ workflow: 'order', input: { sku: 'book', amount: 25 } });
    await engine.advancer.apply(record.id, { type: 'deadlineExceeded', at: T0 + 1 });
  }
  return engine;
}

describe('RetentionSchedule', () => {
  it('runs at once, then waits an hour after a run that found less than its limit', async () => {
    const engine = await finishedCases(3);
    const clock = new ManualClock(T0 + 2 * DAY);
    const schedule = new RetentionSchedule({ store: engine.store, clock, days: 1 });
    expect(await schedule.runIfDue()).toBe(3);
    const later = await engine.cases.start({ workflow: 'order', input: { sku: 'book', amount: 25 } });
    await engine.advancer.apply(later.record.id, { type: 'deadlineExceeded', at: T0 + 2 });
    clock.time += RETENTION_PAUSE_MS - 1;
    expect(await schedule.runIfDue()).toBe(0);
    expect(await engine.store.getCase(later.record.id)).toBeDefined();
    clock.time += 1;
    expect(await schedule.runIfDue()).toBe(1);
  });

  it('runs again at the next tick while a run hits its limit (a backlog)', async () => {
    const engine = await finishedCases(501);
    const clock = new ManualClock(T0 + 2 * DAY);
    // One batch of 500 a run: a backlog of 501 takes two runs, one right after the other.
    const schedule = new RetentionSchedule({ store: engine.store, clock, days: 1, maxBatches: 1 });
    expect(await schedule.runIfDue()).toBe(500);
    expect(await schedule.runIfDue()).toBe(1);
    expect(await schedule.runIfDue()).toBe(0);
  });
});
