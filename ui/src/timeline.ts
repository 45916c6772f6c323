/**
 * Turns a case's trace into Gantt rows: one row per unit of work (a step, one forEach item, one
 * repeat iteration, a compensation, or a step run again after the case was retried), each a
 * sequence of segments: queued, attempt, backoff before a retry, deferral (by an open breaker,
 * a rate limit, or no free slot of a concurrency key), and waits for a signal or timer. Pure,
 * so that what the timeline claims is unit-tested.
 */

export interface TraceEventLike {
  seq: number;
  type: string;
  stepId?: string;
  at: string;
  data: Record<string, unknown>;
}

export type SegmentKind = 'queued' | 'attempt' | 'backoff' | 'deferred' | 'waiting' | 'running';
export type SegmentOutcome = 'completed' | 'failed' | 'retried' | 'cancelled' | 'open' | 'done';

export interface Segment {
  kind: SegmentKind;
  start: number;
  /** Where it ended; for an open segment, the time the timeline was built for. */
  end: number;
  outcome: SegmentOutcome;
  attempt?: number;
  /** Why, in words: the error of a failed attempt, the breaker of a deferral, the signals awaited. */
  note?: string;
  /** When a backoff or deferral was planned to end. */
  plannedEnd?: number;
}

export type MarkerKind = 'skipped' | 'signal' | 'breaker-opened' | 'breaker-closed' | 'compensated' | 'compensation-failed' | 'child' | 'case';

export interface Marker {
  kind: MarkerKind;
  at: number;
  label: string;
}

export interface UnitKey {
  stepId: string;
  instance?: number;
  iteration?: number;
  compensation?: boolean;
}

export interface GanttRow {
  key: string;
  unit: UnitKey;
  label: string;
  /** 1 for the first run of the unit; 2 and on after the case was retried. */
  run: number;
  segments: Segment[];
  markers: Marker[];
}

export interface Gantt {
  rows: GanttRow[];
  /** Events of the case itself (created, signal received, finished), drawn across every row. */
  caseMarkers: Marker[];
  start: number;
  end: number;
}

const num = (value: unknown): number | undefined => (typeof value === 'number' && Number.isFinite(value) ? value : undefined);
const errorText = (value: unknown): string | undefined => {
  if (!value || typeof value !== 'object') return undefined;
  const error = value as { code?: unknown; message?: unknown };
  return [typeof error.code === 'string' ? error.code : undefined, typeof error.message === 'string' ? error.message : undefined].filter(Boolean).join(': ') || undefined;
};

function unitOf(event: TraceEventLike): UnitKey {
  const instance = num(event.data.instance);
  const iteration = num(event.data.iteration);
  return {
    stepId: event.stepId ?? '',
    ...(instance === undefined ? {} : { instance }),
    ...(iteration === undefined ? {} : { iteration }),
    ...(event.data.compensation === true ? { compensation: true } : {}),
  };
}

export function unitLabel(unit: UnitKey): string {
  let label = unit.stepId;
  if (unit.instance !== undefined) label += ` [${unit.instance}]`;
  if (unit.iteration !== undefined) label += ` #${unit.iteration}`;
  if (unit.compensation) label += ' (undo)';
  return label;
}

const keyOf = (unit: UnitKey) => unitLabel(unit);

interface Building extends GanttRow {
  open?: Segment;
  finished: boolean;
}

/** Builds the rows; `now` closes what is still open (the case's end, or the present for an open case). */
export function buildGantt(events: readonly TraceEventLike[], now: number): Gantt {
  const rows: Building[] = [];
  const current = new Map<string, Building>();
  const caseMarkers: Marker[] = [];
  let start = Number.POSITIVE_INFINITY;
  let end = Number.NEGATIVE_INFINITY;

  const rowFor = (unit: UnitKey, fresh: boolean): Building => {
    const key = keyOf(unit);
    const existing = current.get(key);
    if (existing && !(fresh && existing.finished)) return existing;
    const run = existing ? existing.run + 1 : 1;
    const row: Building = { key: run === 1 ? key : `${key}@${run}`, unit, label: run === 1 ? unitLabel(unit) : `${unitLabel(unit)} (run ${run})`, run, segments: [], markers: [], finished: false };
    rows.push(row);
    current.set(key, row);
    return row;
  };
  /** The step's own row, for markers about the step as a whole. */
  const stepRow = (stepId: string) => current.get(stepId) ?? rowFor({ stepId }, false);
  const close = (row: Building, at: number, outcome: SegmentOutcome, note?: string) => {
    if (!row.open) return;
    row.open.end = Math.max(at, row.open.start);
    row.open.outcome = outcome;
    if (note) row.open.note = row.open.note ? `${row.open.note}; ${note}` : note;
    row.open = undefined;
  };
  const openSegment = (row: Building, segment: Omit<Segment, 'end' | 'outcome'>) => {
    const full: Segment = { ...segment, end: segment.start, outcome: 'open' };
    row.segments.push(full);
    row.open = full;
  };
  /** Ends attempt `attempt`; a fast task reports its start and end together, so the attempt may not be open yet. */
  const endAttempt = (row: Building, at: number, attempt: number | undefined, durationMs: number | undefined, outcome: SegmentOutcome, note?: string) => {
    if (row.open?.kind === 'attempt' && (attempt === undefined || row.open.attempt === attempt)) {
      close(row, at, outcome, note);
      return;
    }
    const began = durationMs === undefined ? at : at - durationMs;
    close(row, began, 'done');
    row.segments.push({ kind: 'attempt', start: began, end: at, outcome, ...(attempt === undefined ? {} : { attempt }), ...(note ? { note } : {}) });
  };

  for (const event of events) {
    const at = Date.parse(event.at);
    if (!Number.isFinite(at)) continue;
    start = Math.min(start, at);
    end = Math.max(end, at);
    const { data } = event;
    if (!event.stepId) {
      const label = event.type === 'signal.received' ? `signal ${String(data.name)}` : event.type === 'case.stuck' ? `stuck: ${String(data.reason)}` : event.type.replace('case.', 'case ');
      caseMarkers.push({ kind: event.type === 'signal.received' ? 'signal' : 'case', at, label });
      continue;
    }
    const unit = unitOf(event);
    const attempt = num(data.attempt);
    const durationMs = num(data.durationMs);
    switch (event.type) {
      case 'step.scheduled': {
        const row = rowFor(unit, true);
        close(row, at, 'done');
        const task = typeof data.task === 'string' ? data.task : undefined;
        const queue = typeof data.queue === 'string' ? `queue ${data.queue}` : undefined;
        openSegment(row, { kind: 'queued', start: at, note: [task, queue].filter(Boolean).join(' on ') });
        break;
      }
      case 'step.started': {
        const row = rowFor(unit, false);
        close(row, at, 'done');
        if (attempt !== undefined) openSegment(row, { kind: 'attempt', start: at, attempt });
        else {
          const note = num(data.items) !== undefined ? `${String(data.items)} items` : typeof data.workflow === 'string' ? `sub-workflow ${data.workflow}` : undefined;
          openSegment(row, { kind: 'running', start: at, ...(note ? { note } : {}) });
        }
        break;
      }
      case 'step.retried': {
        const row = rowFor(unit, false);
        endAttempt(row, at, attempt, durationMs, 'retried', errorText(data.error));
        const retryAt = num(data.retryAt);
        openSegment(row, { kind: 'backoff', start: at, note: 'backoff before the next attempt', ...(retryAt === undefined ? {} : { plannedEnd: retryAt }) });
        break;
      }
      case 'step.deferred': {
        const row = rowFor(unit, false);
        close(row, at, 'done');
        const until = num(data.until);
        openSegment(row, { kind: 'deferred', start: at, note: deferralNote(data), ...(attempt === undefined ? {} : { attempt }), ...(until === undefined ? {} : { plannedEnd: until }) });
        break;
      }
      case 'step.waiting': {
        const row = rowFor(unit, false);
        close(row, at, 'done');
        const signals = Array.isArray(data.signals) ? (data.signals as unknown[]).map(String) : [];
        const until = num(data.until);
        openSegment(row, {
          kind: 'waiting',
          start: at,
          note: signals.length > 0 ? `waiting for signal ${signals.join(' or ')}` : 'timer',
          ...(until === undefined ? {} : { plannedEnd: until }),
        });
        break;
      }
      case 'step.completed': {
        const row = rowFor(unit, false);
        if (attempt !== undefined) endAttempt(row, at, attempt, durationMs, 'completed');
        else close(row, at, 'completed');
        row.finished = true;
        break;
      }
      case 'step.failed': {
        const row = rowFor(unit, false);
        const error = data.error as { attempt?: unknown } | undefined;
        const failedAttempt = attempt ?? num(error?.attempt);
        if (row.open?.kind === 'attempt' || (failedAttempt !== undefined && row.open?.kind !== 'waiting' && row.open?.kind !== 'running')) {
          endAttempt(row, at, failedAttempt, durationMs, 'failed', errorText(data.error));
        } else close(row, at, 'failed', errorText(data.error));
        row.finished = true;
        break;
      }
      case 'step.cancelled': {
        const row = rowFor(unit, false);
        close(row, at, 'cancelled', typeof data.reason === 'string' ? data.reason : undefined);
        row.finished = true;
        break;
      }
      case 'step.skipped': {
        const row = rowFor(unit, true);
        row.markers.push({ kind: 'skipped', at, label: `skipped${typeof data.reason === 'string' ? `: ${data.reason}` : ''}` });
        row.finished = true;
        break;
      }
      case 'breaker.opened':
      case 'breaker.closed':
        stepRow(event.stepId).markers.push({
          kind: event.type === 'breaker.opened' ? 'breaker-opened' : 'breaker-closed',
          at,
          label: `breaker ${String(data.breaker)} ${event.type === 'breaker.opened' ? 'opened' : 'closed'}`,
        });
        break;
      case 'step.compensated':
        stepRow(event.stepId).markers.push({ kind: 'compensated', at, label: 'compensated' });
        break;
      case 'compensation.failed':
        stepRow(event.stepId).markers.push({ kind: 'compensation-failed', at, label: `compensation failed: ${errorText(data.error) ?? ''}` });
        break;
      case 'child.started':
        stepRow(event.stepId).markers.push({ kind: 'child', at, label: `child case ${String(data.childId)}` });
        break;
      default:
        stepRow(event.stepId).markers.push({ kind: 'case', at, label: event.type });
    }
  }
  for (const row of rows) {
    if (row.open) {
      row.open.end = Math.max(row.open.start, now);
      row.open = undefined;
    }
  }
  if (rows.some((row) => row.segments.some((segment) => segment.outcome === 'open'))) end = Math.max(end, now);
  if (!Number.isFinite(start)) start = now;
  if (!Number.isFinite(end) || end <= start) end = start + 1;
  return { rows: rows.map(({ open: _open, finished: _finished, ...row }) => row), caseMarkers, start, end };
}

/** Round tick values for a time axis of `count` ticks at most, as offsets from `start`. */
export function timeTicks(start: number, end: number, count: number): number[] {
  const span = Math.max(1, end - start);
  const steps = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
  ];
  const step = steps.find((candidate) => span / candidate <= count) ?? Math.ceil(span / count / 86_400_000) * 86_400_000;
  const ticks: number[] = [];
  for (let offset = 0; offset <= span; offset += step) ticks.push(offset);
  return ticks;
}

/**
 * Each event's offset from the case's start, in the order the case changed in (seq), never going
 * backwards: every event is stamped by the process that saw it, so one applied after a later
 * event (a report that lost the race for a revision, a start reported with its end) or from a
 * clock behind can carry an earlier time. Such an event is shown at the offset before it, and
 * `skewMs` says how much earlier it was stamped.
 */
export function monotonicOffsets(events: readonly TraceEventLike[]): Map<number, { offsetMs: number; skewMs: number }> {
  const ordered = [...events].sort((a, b) => a.seq - b.seq);
  const first = ordered.find((event) => event.type === 'case.created') ?? ordered[0];
  const start = first ? Date.parse(first.at) : 0;
  const offsets = new Map<number, { offsetMs: number; skewMs: number }>();
  let last = 0;
  for (const event of ordered) {
    const stamped = Date.parse(event.at) - start;
    const offsetMs = Number.isFinite(stamped) ? Math.max(last, stamped) : last;
    offsets.set(event.seq, { offsetMs, skewMs: Number.isFinite(stamped) ? offsetMs - stamped : 0 });
    last = offsetMs;
  }
  return offsets;
}

/** Why an attempt was deferred: the open breaker, or the limit and key it waits for (`step.deferred` data). */
function deferralNote(data: Record<string, unknown>): string {
  const limit = data.limit as { kind?: unknown; group?: unknown; key?: unknown; ahead?: unknown } | undefined;
  if (limit && typeof limit === 'object') {
    const key = String(limit.key);
    if (limit.kind === 'rate') return `rate limited (key ${key})`;
    return `waiting for a slot of key ${key}${typeof limit.ahead === 'number' ? ` (${limit.ahead} ahead)` : ''}`;
  }
  return `breaker ${String(data.breaker)} open`;
}
