import { describe, expect, it } from 'vitest';
import { renderCase, renderTimeline, Timeline, type WireCase, type WireTraceEvent } from '../../cli/render.js';

const T = Date.parse('2030-01-01T00:00:00.000Z');
const event = (seq: number, type: string, atMs: number, stepId?: string, data: Record<string, unknown> = {}): WireTraceEvent => ({
  seq,
  type,
  ...(stepId === undefined ? {} : { stepId }),
  at: new Date(T + atMs).toISOString(),
  data,
});

/**
 * A split whose two branches end on two workers, as the trace stores it (seq order). Worker A
 * applies reserve's end at once and schedules ship at its own time; charge ended 1 ms after
 * reserve on worker B but lost the race for the revision, so its report comes in after ship
 * was scheduled; worker B's clock is 5 ms behind, so its start of ship looks earlier still.
 */
const split: WireTraceEvent[] = [
  event(1, 'case.created', 0, undefined, { workflow: 'order', version: 1 }),
  event(2, 'step.scheduled', 0, 'reserve', { task: 'inventory.reserve', queue: 'default' }),
  event(3, 'step.scheduled', 0, 'charge', { task: 'payments.charge', queue: 'default' }),
  event(4, 'step.completed', 41, 'reserve', { attempt: 1, durationMs: 12 }),
  event(5, 'step.scheduled', 85, 'ship', { task: 'shipping.ship', queue: 'default' }),
  event(6, 'step.completed', 42, 'charge', { attempt: 1, durationMs: 18 }),
  event(7, 'step.started', 80, 'ship', { attempt: 1 }),
  event(8, 'step.completed', 113, 'ship', { attempt: 1, durationMs: 15 }),
  event(9, 'case.completed', 119, undefined, { durationMs: 119 }),
];

const offsets = (text: string) => text.split('\n').map((line) => line.trim().split(/\s+/)[0]);

describe('the trace timeline', () => {
  it('never prints an offset smaller than the one above it', () => {
    const seconds = offsets(renderTimeline(split)).map((offset) => Number(offset!.replace(/^\+|s$/g, '')));
    for (let i = 1; i < seconds.length; i++) expect(seconds[i], `line ${i + 1}`).toBeGreaterThanOrEqual(seconds[i - 1]!);
    expect(offsets(renderTimeline(split))).toEqual(['+0.000s', '+0.000s', '+0.000s', '+0.041s', '+0.085s', '+0.085s', '+0.085s', '+0.113s', '+0.119s']);
  });

  it('shows how much earlier an event was stamped than where it is printed, and nothing for the others', () => {
    const lines = renderTimeline(split).split('\n');
    expect(lines[5]).toMatch(/step\.completed +charge +attempt 1 in 18 ms \(stamped 43 ms earlier\)$/);
    expect(lines[6]).toMatch(/step\.started +ship +attempt 1 \(stamped 5 ms earlier\)$/);
    expect(lines.filter((line) => line.includes('stamped'))).toHaveLength(2);
  });

  it('says of a debounced case how many starts its burst collapsed, and by which key', () => {
    const [line] = renderTimeline([event(1, 'case.created', 0, undefined, { workflow: 'search-index', version: 2, debounced: { key: 'doc-7', starts: 4, firstAt: T - 3_000 } })]).split('\n');
    expect(line?.replace(/\u001b\[[0-9;]*m/g, '')).toMatch(/case\.created +search-index v2 from 4 debounced starts \(key "doc-7"\)$/);
  });

  it('prints events in seq order, the order the case changed in, whatever order they came in', () => {
    const shuffled = [split[4]!, split[0]!, split[8]!, split[2]!, split[6]!, split[1]!, split[5]!, split[3]!, split[7]!];
    expect(renderTimeline(shuffled)).toBe(renderTimeline(split));
  });

  it('starts at the case creation and keeps growing across polls of a followed case', () => {
    const timeline = Timeline.of(split.slice(0, 5));
    const first = split.slice(0, 5).map((item) => timeline.line(item));
    const later = split.slice(5).map((item) => timeline.line(item));
    expect(offsets([...first, ...later].join('\n'))).toEqual(offsets(renderTimeline(split)));
  });

  it('writes long offsets in minutes and hours, and waits as durations', () => {
    const long = renderTimeline([
      event(1, 'case.created', 0, undefined, { workflow: 'approval', version: 1 }),
      event(2, 'step.retried', 65_250, 'fetch', { attempt: 1, durationMs: 250, error: { code: 'UPSTREAM_DOWN', message: '503' }, retryAt: T + 65_250 + 30_000 }),
      event(3, 'step.deferred', 3_723_004, 'fetch', { attempt: 2, breaker: 'fetch', until: T + 3_723_004 + 300_000 }),
    ]).split('\n');
    expect(long[1]).toMatch(/^ +\+1:05\.250 +step\.retried +fetch +attempt 1 failed in 250 ms: UPSTREAM_DOWN: 503; next try in 30 s$/);
    expect(long[2]).toMatch(/^ *\+1:02:03\.004 +step\.deferred +fetch +breaker fetch open; waits 5 min \(no attempt spent\)$/);
  });

  it('says which limit deferred an attempt', () => {
    const lines = renderTimeline([
      event(1, 'step.deferred', 0, 'call', { attempt: 1, until: T + 60_000, limit: { kind: 'rate', group: 'p', key: 'partner-7' } }),
      event(2, 'step.deferred', 60_000, 'call', { attempt: 1, until: T + 65_000, limit: { kind: 'concurrency', group: 'c', key: 'acme', ahead: 2 } }),
    ]).split('\n');
    expect(lines[0]).toMatch(/call +rate limited \(key partner-7\); waits 1 min \(no attempt spent\)$/);
    expect(lines[1]).toMatch(/call +no slot of key acme \(2 ahead\); waits 5 s \(no attempt spent\)$/);
  });
});

describe('a case in the terminal', () => {
  const step = { status: 'scheduled', attempts: 0, startedAt: null, finishedAt: null, error: null };
  const record = (steps: WireCase['steps']): WireCase => ({
    id: 'c1',
    workflow: 'w',
    version: 1,
    status: 'running',
    input: {},
    output: null,
    error: null,
    steps,
    createdAt: '2030-01-01T00:00:00.000Z',
    updatedAt: '2030-01-01T00:00:00.000Z',
    finishedAt: null,
  });

  it('says under a keyed step what its queued units wait for: the key and the units ahead, a rate limit and until when, a count for many items', () => {
    const text = renderCase(
      record({
        call: { ...step, limits: { queued: 1, rateLimited: 0, checked: 1, waitingForSlot: 1, waits: [{ kind: 'concurrency', key: 'acme', ahead: 1 }] } },
        each: {
          ...step,
          status: 'running',
          limits: {
            queued: 5_000,
            rateLimited: 1,
            checked: 10,
            waitingForSlot: 9,
            waits: [
              { instance: 0, kind: 'rate', key: 'p', until: '2030-01-01T01:00:00.000Z' },
              ...Array.from({ length: 9 }, (_, i) => ({ instance: i + 1, kind: 'concurrency' as const, key: `k${i}`, ahead: i })),
            ],
          },
        },
      }),
    ).split('\n');
    expect(lines(text, 'call')).toEqual(['waiting for a slot of key acme (1 ahead)']);
    expect(lines(text, 'each')).toEqual([
      '5000 queued: 9 waiting for a slot, 1 rate limited (10 looked up)',
      'item 0: rate limited (key p) until 2030-01-01T01:00:00.000Z',
      'item 1: waiting for a slot of key k0 (0 ahead)',
      'item 2: waiting for a slot of key k1 (1 ahead)',
    ]);
  });
});

/** The indented lines printed under a step's row. */
function lines(text: string[], stepId: string): string[] {
  const at = text.findIndex((line) => line.trim().startsWith(`${stepId} `));
  const under: string[] = [];
  for (const line of text.slice(at + 1)) {
    if (!/^ {23}\S/.test(line)) break;
    under.push(line.trim());
  }
  return under;
}
