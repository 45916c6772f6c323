import type { StepLimitsView } from '../lib/client/types.js';
import { formatDuration } from '../lib/core/format.js';

/** Human-readable views of API answers for the terminal. */

export interface WireTraceEvent {
  seq: number;
  type: string;
  stepId?: string;
  at: string;
  data: Record<string, unknown>;
}

interface WireError {
  code: string;
  message: string;
}

const useColor = process.stdout.isTTY === true;
const paint = (code: number, text: string) => (useColor ? `\u001b[${code}m${text}\u001b[0m` : text);
export const color = {
  red: (text: string) => paint(31, text),
  green: (text: string) => paint(32, text),
  yellow: (text: string) => paint(33, text),
  blue: (text: string) => paint(34, text),
  dim: (text: string) => paint(2, text),
  bold: (text: string) => paint(1, text),
};

function describe(event: WireTraceEvent): string {
  const data = event.data;
  const attempt = typeof data.attempt === 'number' ? `attempt ${data.attempt}` : '';
  const took = typeof data.durationMs === 'number' ? ` in ${formatDuration(data.durationMs)}` : '';
  const error = data.error as WireError | undefined;
  switch (event.type) {
    case 'case.created': {
      const debounced = data.debounced as { key?: unknown; starts?: unknown } | undefined;
      const burst = debounced ? color.dim(` from ${String(debounced.starts)} debounced starts (key "${String(debounced.key)}")`) : '';
      return `${String(data.workflow)} v${String(data.version)}${burst}`;
    }
    case 'step.scheduled':
      return `task ${String(data.task)} on queue ${String(data.queue)}`;
    case 'step.started':
      return attempt + (typeof data.worker === 'string' ? color.dim(` on ${data.worker}`) : '');
    case 'step.completed':
      return `${attempt}${took}`;
    case 'step.retried':
      return `${attempt} failed${took}: ${error?.code}: ${error?.message}; next try in ${formatDuration(Number(data.retryAt) - Date.parse(event.at))}`;
    case 'step.failed':
      return `${attempt}: ${error?.code}: ${error?.message}`;
    case 'step.deferred':
      return `${deferredBy(data)}; waits ${formatDuration(Number(data.until) - Date.parse(event.at))} (no attempt spent)`;
    case 'breaker.opened':
      return `breaker ${String(data.breaker)} opened`;
    case 'breaker.closed':
      return `breaker ${String(data.breaker)} closed`;
    case 'step.waiting':
      return Array.isArray(data.signals)
        ? `waits for ${(data.signals as string[]).join(' or ')}${data.until ? ` until ${new Date(Number(data.until)).toISOString()}` : ''}`
        : `sleeps until ${new Date(Number(data.until)).toISOString()}`;
    case 'step.skipped':
      return String(data.reason);
    case 'step.cancelled':
      return String(data.reason);
    case 'signal.received':
      return `signal ${String(data.name)}`;
    case 'child.started':
      return `child case ${String(data.childId)}`;
    case 'step.compensated':
      return 'undone';
    case 'compensation.failed':
      return `compensation failed: ${error?.code}: ${error?.message}`;
    case 'case.compensating':
      return `compensating: ${String(data.reason)}`;
    case 'case.retried':
      return 'retrying the failed steps';
    case 'case.cancelled':
      return `${error?.message ?? ''}`;
    case 'case.completed':
      return `in ${formatDuration(Number(data.durationMs))}`;
    case 'case.failed':
      return `${error?.code}: ${error?.message}`;
    default:
      return JSON.stringify(data);
  }
}

/** What deferred an attempt: an open breaker, or the limit and key it waits for. */
function deferredBy(data: Record<string, unknown>): string {
  const limit = data.limit as { kind?: string; key?: string; ahead?: number } | undefined;
  if (!limit) return `breaker ${String(data.breaker)} open`;
  return limit.kind === 'rate' ? limitWait('rate', String(limit.key)) : `no ${limitWait('concurrency', String(limit.key), limit.ahead)}`;
}

/** The limit a unit waits for, in the words of both the timeline and the case: `rate limited (key k)`, `slot of key k (2 ahead)`. */
function limitWait(kind: 'rate' | 'concurrency', key: string, ahead?: number): string {
  if (kind === 'rate') return `rate limited (key ${key})`;
  return `slot of key ${key}${typeof ahead === 'number' ? ` (${ahead} ahead)` : ''}`;
}

function paintType(type: string): string {
  if (/failed/.test(type)) return color.red(type);
  if (/completed/.test(type)) return color.green(type);
  if (/retried|deferred|breaker|waiting|compensat|cancelled|skipped/.test(type)) return color.yellow(type);
  return type;
}

/** Which unit of a step an event is about: an item, an iteration, a compensation. */
function unitLabel(data: Record<string, unknown>): string {
  if (data.compensation) return color.dim('[undo] ');
  if (typeof data.instance === 'number') return color.dim(`[item ${data.instance}] `);
  if (typeof data.iteration === 'number') return color.dim(`[iteration ${data.iteration}] `);
  return '';
}

/** An offset from the case start: `+0.085s` within a minute, then `+5:02.345`, `+1:05:02.345`. */
function formatOffset(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `+${seconds.toFixed(3)}s`;
  const whole = Math.floor(seconds);
  const rest = `${String(whole % 60).padStart(2, '0')}.${String(Math.round(ms % 1000)).padStart(3, '0')}`;
  const minutes = Math.floor(whole / 60);
  return minutes < 60 ? `+${minutes}:${rest}` : `+${Math.floor(minutes / 60)}:${String(minutes % 60).padStart(2, '0')}:${rest}`;
}

/**
 * Places trace events on a timeline from the case start, in seq order: the order the case
 * changed in. Their times can go backwards in that order: each is stamped by the process that
 * saw it (a worker's clock for an attempt, the applying process's for what followed), so a
 * report applied after later events (a branch that lost the race for a revision, a start
 * reported with its end, a report that went through the results queue) or a clock running
 * behind stamps an event earlier than the one before it. The printed offset never goes back:
 * it is at least the previous one, and how much earlier the event was stamped is shown with it.
 */
export class Timeline {
  private last = 0;

  constructor(private readonly start: number) {}

  /** The case start: its creation, else its first event. */
  static of(events: readonly WireTraceEvent[]): Timeline {
    const first = events.find((event) => event.type === 'case.created') ?? events[0];
    return new Timeline(first ? Date.parse(first.at) : 0);
  }

  /** One line per event: offset from the case start, type, step, what happened. */
  line(event: WireTraceEvent): string {
    const stamped = Date.parse(event.at) - this.start;
    const offset = Number.isFinite(stamped) ? Math.max(this.last, stamped) : this.last;
    this.last = offset;
    const skew = offset - stamped > 0 ? color.dim(` (stamped ${formatDuration(offset - stamped)} earlier)`) : '';
    return `${color.dim(formatOffset(offset).padStart(10))}  ${paintType(event.type.padEnd(15))} ${(event.stepId ?? '').padEnd(16)} ${unitLabel(event.data)}${describe(event)}${skew}`;
  }
}

/** Events in the order the case changed in, whatever order they came in. */
export function bySeq(events: readonly WireTraceEvent[]): WireTraceEvent[] {
  return [...events].sort((a, b) => a.seq - b.seq);
}

export function renderTimeline(events: readonly WireTraceEvent[]): string {
  const ordered = bySeq(events);
  const timeline = Timeline.of(ordered);
  return ordered.map((event) => timeline.line(event)).join('\n');
}

/** The parts of `steps.*.limits` (GET /v1/cases/:id) the CLI prints. */
type PrintedLimits = Pick<StepLimitsView, 'queued' | 'rateLimited' | 'checked' | 'waitingForSlot' | 'unavailable'> & {
  waits: Array<Pick<StepLimitsView['waits'][number], 'instance' | 'kind' | 'key' | 'ahead' | 'until'>>;
};

interface WireStep {
  status: string;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  error: WireError | null;
  output?: unknown;
  limits?: PrintedLimits;
}

/** Waits printed under a step; the API lists a few more, and counts them all. */
const PRINTED_WAITS = 3;

/** What a keyed step's queued units wait for, one line each: a count for a forEach, then its first waits. */
function limitLines(limits: PrintedLimits): string[] {
  const lines: string[] = [];
  if (limits.queued > 1) {
    const looked = limits.queued - limits.rateLimited > limits.checked ? ` (${limits.checked} looked up)` : '';
    lines.push(`${limits.queued} queued: ${limits.waitingForSlot} waiting for a slot, ${limits.rateLimited} rate limited${looked}`);
  }
  if (limits.unavailable) lines.push('places in line unknown: Redis did not answer');
  for (const wait of limits.waits.slice(0, PRINTED_WAITS)) {
    const item = wait.instance === undefined ? '' : `item ${wait.instance}: `;
    lines.push(wait.kind === 'rate' ? `${item}${limitWait('rate', wait.key)}${wait.until ? ` until ${wait.until}` : ''}` : `${item}waiting for a ${limitWait('concurrency', wait.key, wait.ahead ?? 0)}`);
  }
  return lines;
}

export interface WireCase {
  id: string;
  workflow: string;
  version: number;
  status: string;
  input: unknown;
  output: unknown;
  error: (WireError & { stepId?: string }) | null;
  steps: Record<string, WireStep>;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

function paintStatus(status: string): string {
  if (status === 'completed') return color.green(status);
  if (status === 'failed' || status === 'cancelled') return color.red(status);
  if (status === 'running' || status === 'scheduled') return color.blue(status);
  return status;
}

export function renderCase(record: WireCase): string {
  const lines = [
    `${color.bold(record.id)}  ${record.workflow} v${record.version}  ${paintStatus(record.status)}`,
    `created ${record.createdAt}${record.finishedAt ? `, finished ${record.finishedAt}` : ''}`,
    '',
    `  ${'step'.padEnd(20)} ${'status'.padEnd(10)} attempts  duration`,
  ];
  for (const [id, step] of Object.entries(record.steps)) {
    const duration = step.startedAt && step.finishedAt ? formatDuration(Date.parse(step.finishedAt) - Date.parse(step.startedAt)) : '';
    lines.push(`  ${id.padEnd(20)} ${paintStatus(step.status.padEnd(10))} ${String(step.attempts).padStart(8)}  ${duration}`);
    if (step.error) lines.push(`  ${''.padEnd(20)} ${color.red(`${step.error.code}: ${step.error.message}`)}`);
    for (const line of step.limits ? limitLines(step.limits) : []) lines.push(`  ${''.padEnd(20)} ${color.yellow(line)}`);
  }
  if (record.error) lines.push('', color.red(`error ${record.error.code}: ${record.error.message}`));
  if (record.status === 'completed') lines.push('', 'output:', JSON.stringify(record.output, null, 2));
  return lines.join('\n');
}
