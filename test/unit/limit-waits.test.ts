import { describe, expect, it } from 'vitest';
import { LimitWaits } from '../../api/limit-waits.js';
import { presentCase } from '../../api/presenters.js';
import { describeLimits, MAX_LISTED_WAITS, MAX_PLACE_LOOKUPS, placeLookups, type SlotPlace } from '../../lib/core/limit-waits.js';
import type { CaseState } from '../../lib/core/state.js';
import { createCase, transition } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import type { UnitPosition, UnitRef } from '../../lib/ports/limits.js';
import { T0 } from './fixtures.js';

/** Where the queued units of keyed steps stand in a read of a case: bounded lookups, counted rest, rate deferrals from the case. */

const CASE = '01a2023c-80f9-7f9d-88eb-510cc1842ef8';

const workflow = compileWorkflow(
  {
    name: 'crawl',
    steps: [
      { id: 'fetch', task: 'web.fetch', concurrency: { key: '${input.domain}', limit: 1 }, rateLimit: { key: '${input.partner}', max: 1, per: '1h' } },
      { id: 'each', task: 'web.ping', forEach: { items: '${input.hosts}', concurrency: 1000 }, concurrency: { key: '${item}', limit: 1, group: 'hosts' } },
      { id: 'free', task: 'web.log' },
    ],
  },
  1,
);

const hosts = Array.from({ length: 30 }, (_, i) => `h${i}`);
const started = (): CaseState => createCase(workflow, { id: CASE, input: { domain: 'a.example', partner: 'p', hosts }, now: T0 }).state;

const waiting = (ahead: number, key = 'k'): SlotPlace => ({ state: 'waiting', key, ahead, inUse: 1, limit: 1 });

describe('the lookups of one read', () => {
  it('asks about at most MAX_PLACE_LOOKUPS units, the step units first, items in index order, never an unkeyed step', () => {
    const lookups = placeLookups(started(), workflow);
    expect(MAX_PLACE_LOOKUPS).toBe(10);
    expect(lookups).toHaveLength(MAX_PLACE_LOOKUPS);
    expect(lookups[0]).toEqual({ stepId: 'fetch', group: 'web.fetch', jobId: `${CASE}.fetch` });
    expect(lookups.slice(1).map((lookup) => lookup.jobId)).toEqual(Array.from({ length: 9 }, (_, i) => `${CASE}.each.i${i}`));
    expect(lookups.slice(1).every((lookup) => lookup.group === 'hosts')).toBe(true);
  });

  it('does not look up a unit deferred by its rate limit: the case says until when', () => {
    const deferred = transition(
      workflow,
      started(),
      [{ type: 'stepDeferred', stepId: 'fetch', attempt: 1, at: T0 + 5, breaker: 'web.fetch', until: T0 + 60_000, limit: { kind: 'rate', group: 'web.fetch', key: 'p' } }],
      T0 + 5,
    ).state;
    const lookups = placeLookups(deferred, workflow);
    expect(lookups.map((lookup) => lookup.stepId)).not.toContain('fetch');
    const limits = describeLimits(deferred, workflow, new Map(lookups.map((lookup) => [lookup.jobId, waiting(0)])));
    expect(limits.fetch).toEqual({ queued: 1, rateLimited: 1, checked: 0, waitingForSlot: 0, holdingSlot: 0, waits: [{ kind: 'rate', group: 'web.fetch', key: 'p', until: T0 + 60_000 }] });
  });

  it('looks up nothing once the units run or the case has no keyed step queued', () => {
    const running = transition(workflow, started(), [{ type: 'stepStarted', stepId: 'fetch', attempt: 1, at: T0 + 5, worker: 'w' }], T0 + 5).state;
    expect(placeLookups(running, workflow, 1)).toEqual([{ stepId: 'each', group: 'hosts', jobId: `${CASE}.each.i0` }]);
    expect(describeLimits(running, workflow, new Map()).fetch).toBeUndefined();
  });
});

describe('the waits of a step', () => {
  it('a task step waiting for a slot: its key, the units ahead, the slots in use', () => {
    const limits = describeLimits(started(), workflow, new Map([[`${CASE}.fetch`, { state: 'waiting', key: 'a.example', ahead: 2, inUse: 1, limit: 1 } satisfies SlotPlace]]));
    expect(limits.fetch).toEqual({
      queued: 1,
      rateLimited: 0,
      checked: 1,
      waitingForSlot: 1,
      holdingSlot: 0,
      waits: [{ kind: 'concurrency', group: 'web.fetch', key: 'a.example', ahead: 2, inUse: 1, limit: 1 }],
    });
    expect(limits.free).toBeUndefined();
  });

  it('a forEach of many items: counts every queued item, lists the first waits, says how many were looked up', () => {
    const places = new Map<string, SlotPlace>(hosts.map((host, i) => [`${CASE}.each.i${i}`, i % 3 === 0 ? { state: 'holding', key: host, inUse: 1, limit: 1 } : waiting(i, host)]));
    const each = describeLimits(started(), workflow, places).each;
    expect(each).toMatchObject({ queued: 30, rateLimited: 0, checked: 30, waitingForSlot: 20, holdingSlot: 10 });
    expect(each?.waits).toHaveLength(MAX_LISTED_WAITS);
    expect(each?.waits[0]).toEqual({ instance: 1, kind: 'concurrency', group: 'hosts', key: 'h1', ahead: 1, inUse: 1, limit: 1 });
    // Only what was looked up is known: the rest is counted as queued.
    const few = describeLimits(started(), workflow, new Map([[`${CASE}.each.i4`, waiting(0, 'h4')]])).each;
    expect(few).toMatchObject({ queued: 30, checked: 1, waitingForSlot: 1, waits: [{ instance: 4, key: 'h4', ahead: 0 }] });
  });

  it('says when the gate did not answer, and still gives the rate deferrals the case holds', () => {
    const limits = describeLimits(started(), workflow, 'unavailable');
    expect(limits.fetch).toEqual({ queued: 1, rateLimited: 0, checked: 0, waitingForSlot: 0, holdingSlot: 0, waits: [], unavailable: true });
    expect(limits.each).toMatchObject({ queued: 30, checked: 0, unavailable: true });
  });

  it('is presented with times as ISO 8601, on the steps it is about only', () => {
    const state = transition(
      workflow,
      started(),
      [{ type: 'stepDeferred', stepId: 'fetch', attempt: 1, at: T0 + 5, breaker: 'web.fetch', until: T0 + 60_000, limit: { kind: 'rate', group: 'web.fetch', key: 'p' } }],
      T0 + 5,
    ).state;
    const view = presentCase(state, describeLimits(state, workflow, new Map()));
    expect(view.steps.fetch?.limits?.waits).toEqual([{ kind: 'rate', group: 'web.fetch', key: 'p', until: new Date(T0 + 60_000).toISOString() }]);
    expect(view.steps.each?.limits).toMatchObject({ queued: 30, checked: 0, waits: [] });
    expect(view.steps.free).not.toHaveProperty('limits');
    expect(presentCase(state).steps.fetch).not.toHaveProperty('limits');
  });
});

describe('LimitWaits (the API side)', () => {
  const workflows = { compiled: async () => workflow };
  const gate = (answer: (unit: UnitRef) => Promise<UnitPosition>) => {
    const asked: UnitRef[] = [];
    return {
      asked,
      position: (unit: UnitRef) => {
        asked.push(unit);
        return answer(unit);
      },
    };
  };

  it('asks the gate a bounded number of times however many items wait', async () => {
    const counting = gate(async () => ({ state: 'waiting', group: 'hosts', key: 'h', ahead: 3, inUse: 1, limit: 1 }));
    const limits = await new LimitWaits({ gate: counting, workflows }).of(started());
    expect(counting.asked).toHaveLength(MAX_PLACE_LOOKUPS);
    expect(limits.each).toMatchObject({ queued: 30, checked: 9, waitingForSlot: 9 });
  });

  it('does not ask about a finished case', async () => {
    const counting = gate(async () => ({ state: 'none' }));
    const cancelled = transition(workflow, started(), [{ type: 'cancel', reason: 'test', at: T0 + 1 }], T0 + 1).state;
    expect(await new LimitWaits({ gate: counting, workflows }).of(cancelled)).toEqual({});
    expect(counting.asked).toEqual([]);
  });

  it('answers without places when Redis is away or slow, and lets a program error through', async () => {
    const away = gate(async () => {
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    });
    expect((await new LimitWaits({ gate: away, workflows }).of(started())).fetch?.unavailable).toBe(true);
    const slow = gate(() => new Promise<UnitPosition>(() => undefined));
    const before = Date.now();
    expect((await new LimitWaits({ gate: slow, workflows, timeoutMs: 50 }).of(started())).each?.unavailable).toBe(true);
    expect(Date.now() - before).toBeLessThan(2_000);
    const broken = gate(async () => {
      throw new TypeError('a bug');
    });
    await expect(new LimitWaits({ gate: broken, workflows }).of(started())).rejects.toThrow('a bug');
  });
});
