import { describe, expect, it } from 'vitest';
import { GRAPH_SIZES, layersOf, layoutGraph } from '../../ui/src/graph-layout.js';
import { describeWait, displayState, limitsSummary, stepDetail } from '../../ui/src/model.js';
import { rowWindow } from '../../ui/src/virtual.js';

describe('the workflow graph layout', () => {
  it('puts each step one column after its deepest dependency', () => {
    const layers = layersOf([{ id: 'reserve' }, { id: 'charge' }, { id: 'audit', after: ['reserve'] }, { id: 'ship', after: ['reserve', 'charge', 'audit'] }]);
    expect(Object.fromEntries(layers)).toEqual({ reserve: 0, charge: 0, audit: 1, ship: 2 });
  });

  it('ignores unknown dependencies and still places every step of a cycle, so that drawing never loops', () => {
    const layers = layersOf([
      { id: 'a', after: ['ghost'] },
      { id: 'b', after: ['c'] },
      { id: 'c', after: ['b'] },
    ]);
    expect(layers.get('a')).toBe(0);
    expect(layers.get('b')).toBe(1);
    expect(layers.get('c')).toBe(1);
  });

  it('lays nodes out without overlap and draws one edge per dependency, left to right', () => {
    const steps = [{ id: 'request' }, { id: 'decide', after: ['request'] }, { id: 'pay', after: ['decide'] }, { id: 'decline', after: ['decide'] }, { id: 'close', after: ['pay', 'decline'] }];
    const layout = layoutGraph(steps);
    expect(layout.nodes).toHaveLength(5);
    expect(layout.edges.map((edge) => `${edge.from}>${edge.to}`).sort()).toEqual(['decide>decline', 'decide>pay', 'decline>close', 'pay>close', 'request>decide']);
    for (const a of layout.nodes) {
      for (const b of layout.nodes) {
        if (a === b) continue;
        const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
        expect(apart, `${a.id} overlaps ${b.id}`).toBe(true);
      }
    }
    const byId = new Map(layout.nodes.map((node) => [node.id, node]));
    for (const edge of layout.edges) expect((byId.get(edge.from)?.x ?? 0) < (byId.get(edge.to)?.x ?? 0)).toBe(true);
    for (const node of layout.nodes) {
      expect(node.x + node.width).toBeLessThanOrEqual(layout.width);
      expect(node.y + node.height).toBeLessThanOrEqual(layout.height);
    }
  });

  it('orders a column by its parents to avoid crossings', () => {
    // b2 hangs from a2 and b1 from a1, though listed the other way round.
    const layout = layoutGraph([{ id: 'a1' }, { id: 'a2' }, { id: 'b2', after: ['a2'] }, { id: 'b1', after: ['a1'] }]);
    const y = new Map(layout.nodes.map((node) => [node.id, node.y]));
    expect((y.get('b1') ?? 0) < (y.get('b2') ?? 0)).toBe(true);
  });

  it('lays out 1,000 steps in well under a second, in a bounded area per step', () => {
    // Ten lanes of 100 steps, each lane joined to the previous one every ten steps.
    const steps = Array.from({ length: 1_000 }, (_, i) => {
      const lane = Math.floor(i / 100);
      const position = i % 100;
      const after = [position > 0 ? `s${i - 1}` : undefined, lane > 0 && position % 10 === 0 ? `s${i - 100}` : undefined].filter((id): id is string => id !== undefined);
      return { id: `s${i}`, after };
    });
    const began = performance.now();
    const layout = layoutGraph(steps);
    expect(performance.now() - began).toBeLessThan(1_000);
    expect(layout.nodes).toHaveLength(1_000);
    expect(layout.edges.length).toBe(999 - 9 + 90);
    const { nodeWidth, nodeHeight, gapX, gapY, margin } = GRAPH_SIZES;
    const columns = Math.max(...layout.nodes.map((node) => node.layer)) + 1;
    expect(layout.width).toBe(margin * 2 + columns * (nodeWidth + gapX) - gapX);
    expect(layout.height).toBeLessThanOrEqual(margin * 2 + 10 * (nodeHeight + gapY));
  });
});

describe('step states on screen', () => {
  const base = { attempts: 1, startedAt: null, finishedAt: null, output: null, error: null };

  it('shows a step waiting out a backoff or a breaker as waiting, not as running', () => {
    expect(displayState({ ...base, status: 'scheduled', nextAttemptAt: '2030-01-01T00:00:00Z' })).toBe('waiting');
    expect(displayState({ ...base, status: 'scheduled', deferredBy: 'payments-api', nextAttemptAt: '2030-01-01T00:00:00Z' })).toBe('waiting');
    expect(displayState({ ...base, status: 'scheduled' })).toBe('scheduled');
    expect(displayState({ ...base, status: 'completed', compensation: { status: 'completed', attempts: 1, error: null } })).toBe('compensated');
    expect(displayState(undefined)).toBe('pending');
  });

  it('says what a step waits for', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(stepDetail({ ...base, status: 'scheduled', attempts: 2, nextAttemptAt: '2030-01-01T00:00:03Z' }, now)).toBe('retry in 3 s · attempt 2');
    expect(stepDetail({ ...base, status: 'scheduled', deferredBy: 'partner' }, now)).toContain('breaker partner');
    expect(stepDetail({ ...base, attempts: 0, status: 'waiting', waitingFor: { signals: ['approve', 'reject'], until: null } }, now)).toBe('awaits approve|reject');
    expect(stepDetail({ ...base, attempts: 0, status: 'running', items: { total: 10, completed: 3, failed: 1, running: 2, pending: 4 } }, now)).toBe('3/10 items, 1 failed');
  });
});

describe('steps held by limits on screen', () => {
  const base = { attempts: 0, startedAt: null, finishedAt: null, output: null, error: null };
  const none = { queued: 1, rateLimited: 0, checked: 1, waitingForSlot: 0, holdingSlot: 0, waits: [] };
  const slot = { kind: 'concurrency' as const, group: 'customers', key: 'acme', ahead: 2, inUse: 1, limit: 1 };

  it('draws a task step waiting for a slot or a rate limit as waiting, one holding a slot as scheduled', () => {
    expect(displayState({ ...base, status: 'scheduled', limits: { ...none, waitingForSlot: 1, waits: [slot] } })).toBe('waiting');
    expect(displayState({ ...base, status: 'scheduled', limits: { ...none, checked: 0, rateLimited: 1, waits: [{ kind: 'rate', group: 'p', key: 'k', until: null }] } })).toBe('waiting');
    expect(displayState({ ...base, status: 'scheduled', limits: { ...none, holdingSlot: 1 } })).toBe('scheduled');
  });

  it('says which key and how many are ahead, or until when the rate limit holds', () => {
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(stepDetail({ ...base, status: 'scheduled', limits: { ...none, waitingForSlot: 1, waits: [slot] } }, now)).toBe('slot of acme: 2 ahead');
    expect(describeWait(slot)).toBe('waiting for a slot of key acme (2 ahead)');
    expect(describeWait({ ...slot, instance: 4, ahead: 0 })).toBe('item 4: waiting for a slot of key acme (0 ahead)');
    expect(describeWait({ kind: 'rate', group: 'p', key: 'partner-7', until: '2030-01-01T00:00:00Z' })).toMatch(/^rate limited \(key partner-7\) until \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
    // A rate deferral is not a retry backoff, though both set the next attempt.
    const rated = { ...base, status: 'scheduled', nextAttemptAt: '2030-01-01T00:01:00Z', limits: { ...none, checked: 0, rateLimited: 1, waits: [{ kind: 'rate' as const, group: 'p', key: 'k' }] } };
    expect(stepDetail(rated, now)).toBe('rate limited (key k)');
  });

  it('sums up a forEach: how many items wait for what, and how many places were looked up', () => {
    expect(limitsSummary({ queued: 10_000, rateLimited: 3, checked: 10, waitingForSlot: 7, holdingSlot: 3, waits: [] })).toBe('7 waiting for a slot, 3 rate limited of 10000 queued (10 looked up)');
    expect(limitsSummary({ queued: 5, rateLimited: 0, checked: 5, waitingForSlot: 2, holdingSlot: 3, waits: [] })).toBe('2 waiting for a slot of 5 queued');
    expect(limitsSummary({ queued: 5, rateLimited: 0, checked: 0, waitingForSlot: 0, holdingSlot: 0, waits: [], unavailable: true })).toBe('places in line unknown (Redis did not answer) of 5 queued');
    expect(limitsSummary({ queued: 5, rateLimited: 0, checked: 5, waitingForSlot: 0, holdingSlot: 5, waits: [] })).toBe('');
  });
});

describe('windowing of long lists', () => {
  it('renders only the rows in view plus a margin, and keeps the full height for the scrollbar', () => {
    expect(rowWindow(0, 480, 24, 1_000, 8)).toEqual({ start: 0, end: 36, offsetTop: 0, totalHeight: 24_000 });
    const middle = rowWindow(12_000, 480, 24, 1_000, 8);
    expect(middle.start).toBe(492);
    expect(middle.end - middle.start).toBe(36);
    expect(middle.offsetTop).toBe(492 * 24);
    const bottom = rowWindow(24_000, 480, 24, 1_000, 8);
    expect(bottom.end).toBe(1_000);
    expect(rowWindow(0, 480, 24, 0)).toEqual({ start: 0, end: 0, offsetTop: 0, totalHeight: 0 });
  });
});
