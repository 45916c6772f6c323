import { describe, expect, it } from 'vitest';
import { buildGantt, monotonicOffsets, timeTicks, type TraceEventLike } from '../../ui/src/timeline.js';

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
let seq = 0;
const at = (ms: number) => new Date(T0 + ms).toISOString();
const ev = (ms: number, type: string, stepId?: string, data: Record<string, unknown> = {}): TraceEventLike => ({ seq: ++seq, type, ...(stepId ? { stepId } : {}), at: at(ms), data });
const shape = (gantt: ReturnType<typeof buildGantt>, key: string) =>
  gantt.rows.find((row) => row.key === key)?.segments.map((segment) => `${segment.kind}${segment.attempt ?? ''}:${segment.outcome}@${segment.start - T0}-${segment.end - T0}`);

describe('Gantt rows from a trace', () => {
  it('shows each attempt, the backoff before each retry, and the final failure', () => {
    const gantt = buildGantt(
      [
        ev(0, 'case.created'),
        ev(0, 'step.scheduled', 'fetch', { task: 'flaky.fetch', queue: 'default' }),
        ev(10, 'step.started', 'fetch', { attempt: 1 }),
        ev(20, 'step.retried', 'fetch', { attempt: 1, error: { code: 'UPSTREAM', message: '503' }, retryAt: T0 + 270, durationMs: 10 }),
        ev(275, 'step.started', 'fetch', { attempt: 2 }),
        ev(290, 'step.failed', 'fetch', { error: { code: 'UPSTREAM', message: '503', attempt: 2 } }),
        ev(290, 'case.failed'),
      ],
      T0 + 10_000,
    );
    expect(shape(gantt, 'fetch')).toEqual(['queued:done@0-10', 'attempt1:retried@10-20', 'backoff:done@20-275', 'attempt2:failed@275-290']);
    const retried = gantt.rows[0]?.segments[1];
    expect(retried?.note).toBe('UPSTREAM: 503');
    expect(gantt.rows[0]?.segments[2]?.plannedEnd).toBe(T0 + 270);
    expect(gantt.caseMarkers.map((marker) => marker.label)).toEqual(['case created', 'case failed']);
    // A finished case's timeline ends with its last event, not at "now".
    expect(gantt.end - T0).toBe(290);
  });

  it('draws an attempt reported only at its end from its duration', () => {
    const gantt = buildGantt([ev(0, 'step.scheduled', 'a'), ev(50, 'step.completed', 'a', { attempt: 1, durationMs: 30 })], T0 + 1_000);
    expect(shape(gantt, 'a')).toEqual(['queued:done@0-20', 'attempt1:completed@20-50']);
  });

  it('shows breaker deferrals and signal waits as such, open ones running to now', () => {
    const now = T0 + 5_000;
    const gantt = buildGantt(
      [
        ev(0, 'step.scheduled', 'lookup'),
        ev(5, 'step.started', 'lookup', { attempt: 1 }),
        ev(9, 'breaker.opened', 'lookup', { breaker: 'partner', until: T0 + 3_000 }),
        ev(9, 'step.retried', 'lookup', { attempt: 1, error: { code: 'X', message: 'down' }, retryAt: T0 + 100, durationMs: 4 }),
        ev(100, 'step.deferred', 'lookup', { attempt: 2, breaker: 'partner', until: T0 + 3_000 }),
        ev(3_000, 'step.started', 'lookup', { attempt: 2 }),
        ev(0, 'step.waiting', 'decide', { signals: ['approve', 'reject'] }),
        ev(2_000, 'signal.received', undefined, { name: 'nudge' }),
      ],
      now,
    );
    expect(shape(gantt, 'lookup')).toEqual(['queued:done@0-5', 'attempt1:retried@5-9', 'backoff:done@9-100', 'deferred2:done@100-3000', 'attempt2:open@3000-5000']);
    expect(gantt.rows.find((row) => row.key === 'lookup')?.segments[3]?.note).toBe('breaker partner open');
    expect(gantt.rows.find((row) => row.key === 'lookup')?.markers.map((marker) => marker.kind)).toEqual(['breaker-opened']);
    expect(shape(gantt, 'decide')).toEqual(['waiting:open@0-5000']);
    expect(gantt.rows.find((row) => row.key === 'decide')?.segments[0]?.note).toBe('waiting for signal approve or reject');
    expect(gantt.caseMarkers).toEqual([{ kind: 'signal', at: T0 + 2_000, label: 'signal nudge' }]);
    expect(gantt.end).toBe(now);
  });

  it('says what a limit deferral waits for: a slot of a key with the units ahead, or a rate limit', () => {
    const gantt = buildGantt(
      [
        ev(0, 'step.scheduled', 'call'),
        ev(10, 'step.deferred', 'call', { attempt: 1, until: T0 + 1_000, limit: { kind: 'rate', group: 'partner', key: 'acme' } }),
        ev(1_000, 'step.deferred', 'call', { attempt: 1, until: T0 + 6_000, limit: { kind: 'concurrency', group: 'customers', key: 'acme', ahead: 2 } }),
      ],
      T0 + 2_000,
    );
    expect(shape(gantt, 'call')).toEqual(['queued:done@0-10', 'deferred1:done@10-1000', 'deferred1:open@1000-2000']);
    expect(gantt.rows.find((row) => row.key === 'call')?.segments.map((segment) => segment.note)).toEqual(['', 'rate limited (key acme)', 'waiting for a slot of key acme (2 ahead)']);
  });

  it('gives forEach items, repeat iterations, compensations and a retried case rows of their own', () => {
    const gantt = buildGantt(
      [
        ev(0, 'step.started', 'pack', { items: 2, concurrency: 2 }),
        ev(0, 'step.scheduled', 'pack', { instance: 0 }),
        ev(0, 'step.scheduled', 'pack', { instance: 1 }),
        ev(10, 'step.completed', 'pack', { instance: 0, attempt: 1, durationMs: 5 }),
        ev(12, 'step.failed', 'pack', { instance: 1, attempt: 1, error: { code: 'UNPACKABLE', message: 'no' } }),
        ev(12, 'step.failed', 'pack', { error: { code: 'ITEMS_FAILED', message: '1 item failed' } }),
        ev(13, 'step.scheduled', 'book', { compensation: true }),
        ev(20, 'step.completed', 'book', { compensation: true, attempt: 1, durationMs: 3 }),
        ev(20, 'step.compensated', 'book'),
        ev(30, 'case.retried'),
        ev(30, 'step.scheduled', 'poll', { iteration: 2 }),
        ev(31, 'step.skipped', 'notify', { reason: 'condition false' }),
      ],
      T0 + 100,
    );
    expect(gantt.rows.map((row) => row.label)).toEqual(['pack', 'pack [0]', 'pack [1]', 'book (undo)', 'book', 'poll #2', 'notify']);
    expect(shape(gantt, 'pack')).toEqual(['running:failed@0-12']);
    expect(shape(gantt, 'pack [1]')).toEqual(['queued:done@0-12', 'attempt1:failed@12-12']);
    expect(gantt.rows.find((row) => row.key === 'book')?.markers.map((marker) => marker.kind)).toEqual(['compensated']);
    expect(gantt.rows.find((row) => row.key === 'notify')?.markers[0]?.label).toBe('skipped: condition false');

    const rerun = buildGantt(
      [
        ev(0, 'step.scheduled', 'a'),
        ev(5, 'step.failed', 'a', { attempt: 1, error: { code: 'E', message: 'x' } }),
        ev(9, 'case.retried'),
        ev(9, 'step.scheduled', 'a'),
        ev(12, 'step.completed', 'a', { attempt: 1, durationMs: 2 }),
      ],
      T0 + 100,
    );
    expect(rerun.rows.map((row) => `${row.key}|${row.label}`)).toEqual(['a|a', 'a@2|a (run 2)']);
    expect(shape(rerun, 'a@2')).toEqual(['queued:done@9-10', 'attempt1:completed@10-12']);
  });

  it('builds 1,000 rows from 4,000 events quickly', () => {
    const events: TraceEventLike[] = [];
    for (let i = 0; i < 1_000; i++) {
      events.push(ev(i, 'step.scheduled', 'fan', { instance: i }), ev(i + 1, 'step.started', 'fan', { instance: i, attempt: 1 }));
      events.push(ev(i + 2, 'step.retried', 'fan', { instance: i, attempt: 1, retryAt: T0 + i + 10, durationMs: 1 }), ev(i + 12, 'step.completed', 'fan', { instance: i, attempt: 2, durationMs: 2 }));
    }
    const began = performance.now();
    const gantt = buildGantt(events, T0 + 5_000);
    expect(performance.now() - began).toBeLessThan(500);
    expect(gantt.rows).toHaveLength(1_000);
    expect(gantt.rows.every((row) => row.segments.length === 4)).toBe(true);
  });

  it('puts round ticks on the axis', () => {
    expect(timeTicks(0, 1_000, 8)).toEqual([0, 200, 400, 600, 800, 1_000]);
    expect(timeTicks(0, 90_000, 8)).toEqual([0, 15_000, 30_000, 45_000, 60_000, 75_000, 90_000]);
    expect(timeTicks(0, 1, 8)).toEqual([0, 1]);
  });
});

describe('trace offsets', () => {
  it('never go backwards in the order the case changed in, and say how much earlier an event was stamped', () => {
    const events: TraceEventLike[] = [
      { seq: 1, type: 'case.created', at: at(0), data: {} },
      { seq: 2, type: 'step.completed', stepId: 'a', at: at(85), data: {} },
      // A report applied after a later event: stamped earlier than the line above.
      { seq: 3, type: 'step.completed', stepId: 'b', at: at(42), data: {} },
      { seq: 4, type: 'case.completed', at: at(120), data: {} },
    ];
    const offsets = monotonicOffsets([...events].reverse());
    expect([1, 2, 3, 4].map((seq) => offsets.get(seq))).toEqual([
      { offsetMs: 0, skewMs: 0 },
      { offsetMs: 85, skewMs: 0 },
      { offsetMs: 85, skewMs: 43 },
      { offsetMs: 120, skewMs: 0 },
    ]);
  });
});
