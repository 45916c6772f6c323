/**
 * The API's answers as the explorer reads them (see api/schemas.ts), and what a step's state
 * means on screen. Pure: no DOM.
 */

import { formatTime } from './format.js';

export interface ErrorInfo {
  code: string;
  message: string;
  stepId?: string;
  attempt?: number;
  details?: unknown;
}

/** One queued unit of a keyed step that waits: for a slot of its key, or for its rate limit. */
export interface LimitWait {
  instance?: number;
  kind: 'concurrency' | 'rate';
  group: string;
  key: string;
  ahead?: number;
  inUse?: number;
  limit?: number;
  until?: string | null;
}

/** Where a keyed step's queued units stand (places in line are looked up for a few units per read). */
export interface StepLimits {
  queued: number;
  rateLimited: number;
  checked: number;
  waitingForSlot: number;
  holdingSlot: number;
  waits: LimitWait[];
  unavailable?: boolean;
}

export interface StepView {
  status: string;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  scheduledAt?: string | null;
  output: unknown;
  error: ErrorInfo | null;
  nextAttemptAt?: string | null;
  deferredBy?: string;
  limits?: StepLimits;
  waitingFor?: { signals: string[]; until: string | null };
  iteration?: number;
  items?: { total: number; completed: number; failed: number; running: number; pending: number };
  childCaseId?: string;
  skipReason?: string;
  compensation?: { status: string; attempts: number; error: ErrorInfo | null };
  run?: number;
}

export interface CaseView {
  id: string;
  workflow: string;
  version: number;
  status: string;
  input: unknown;
  output: unknown;
  error: ErrorInfo | null;
  steps: Record<string, StepView>;
  createdAt: string | null;
  updatedAt: string | null;
  deadlineAt: string | null;
  finishedAt: string | null;
  startedBy: string | null;
  businessKeys: Record<string, string>;
  waitingFor: Array<{ stepId: string; signals: string[]; until: string | null }>;
  parent?: { caseId: string; stepId: string };
  stuck?: { reason: string; since: string | null };
}

export interface CaseSummary {
  id: string;
  workflow: string;
  version: number;
  status: string;
  createdAt: string | null;
  updatedAt: string | null;
  finishedAt: string | null;
  error: ErrorInfo | null;
}

/** One item of a forEach step (GET /v1/explorer/cases/:id/steps/:stepId/items). */
export interface StepItem {
  index: number;
  status: string;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  nextAttemptAt: string | null;
  error: ErrorInfo | null;
}

export interface StepItemsPage {
  total: number;
  matching: number;
  offset: number;
  items: StepItem[];
}

export interface StepDefinition {
  id: string;
  description?: string;
  after?: string[];
  when?: string;
  task?: string;
  queue?: string;
  sleep?: unknown;
  waitFor?: { signals: string[]; timeout?: unknown };
  workflow?: { name: string; version?: number };
  forEach?: { items: string; concurrency?: number };
  repeat?: { while: string; maxIterations: number };
  input?: unknown;
  retry?: unknown;
  timeout?: unknown;
  breaker?: string;
  onFailure?: string;
  compensate?: { task: string };
}

export interface WorkflowVersion {
  name: string;
  version: number;
  definition: { name: string; description?: string; steps: StepDefinition[]; defaults?: { queue?: string } };
}

export const CASE_STATUSES = ['pending', 'running', 'waiting', 'completed', 'failed', 'cancelled'] as const;
export const OPEN_STATUSES = new Set(['pending', 'running', 'waiting']);

/** How long a case took, or has been running for while it is open (`open`). */
export function caseDuration(item: { createdAt: string | null; finishedAt: string | null }, now: number): { ms: number; open: boolean } {
  const start = Date.parse(item.createdAt ?? '');
  const end = item.finishedAt ? Date.parse(item.finishedAt) : now;
  return { ms: end - start, open: !item.finishedAt };
}

/** The step a failed case failed at: the one its error names, else the first failed step in `order`. */
export function failedStepOf(record: CaseView, order: readonly string[]): string | undefined {
  const named = record.error?.stepId;
  if (named && record.steps[named]?.status === 'failed') return named;
  return order.find((stepId) => record.steps[stepId]?.status === 'failed') ?? (named && record.steps[named] ? named : undefined);
}

/** What kind of step a definition entry is, in a word for the graph. */
export function stepKind(step: StepDefinition): string {
  if (step.waitFor) return 'signal';
  if (step.sleep) return 'timer';
  if (step.workflow) return `workflow ${step.workflow.name}`;
  if (step.forEach) return `forEach ${step.task ?? ''}`.trim();
  if (step.repeat) return `repeat ${step.task ?? ''}`.trim();
  return step.task ?? '';
}

/**
 * The state a step is drawn in: its status, except that a queued step waiting out a retry
 * backoff or a breaker deferral is shown as waiting (it is not running, nor lost), and a step
 * whose compensation ran is shown as compensated.
 */
export function displayState(step: StepView | undefined): string {
  if (!step) return 'pending';
  if (step.status === 'scheduled' && (step.deferredBy || step.nextAttemptAt || step.limits?.waitingForSlot || step.limits?.rateLimited)) return 'waiting';
  if (step.compensation?.status === 'completed' && step.status !== 'compensated') return 'compensated';
  return step.status;
}

/** A short line under the step's name: attempts, what it waits for, how its items stand. */
export function stepDetail(step: StepView | undefined, now: number): string {
  if (!step) return 'not started';
  const parts: string[] = [];
  if (step.items) parts.push(`${step.items.completed}/${step.items.total} items${step.items.failed ? `, ${step.items.failed} failed` : ''}`);
  if (step.waitingFor?.signals.length) parts.push(`awaits ${step.waitingFor.signals.join('|')}`);
  else if (step.status === 'waiting') parts.push('timer');
  const limited = limitsDetail(step.limits);
  if (limited) parts.push(limited);
  if (step.deferredBy) parts.push(`breaker ${step.deferredBy}`);
  else if (step.status === 'scheduled' && step.nextAttemptAt && !step.limits?.rateLimited && !step.limits?.waitingForSlot) {
    const due = Date.parse(step.nextAttemptAt) - now;
    parts.push(due > 0 ? `retry in ${Math.ceil(due / 1000)} s` : 'retry due');
  }
  if (step.attempts > 1 || (step.attempts === 1 && !step.items)) parts.push(`attempt ${step.attempts}`);
  if (step.iteration !== undefined) parts.push(`iteration ${step.iteration}`);
  if (step.status === 'skipped') parts.push('skipped');
  return parts.join(' · ') || step.status;
}

/** What one unit waits for, in words: "waiting for a slot of key acme (2 ahead)", "rate limited (key partner) until …". */
export function describeWait(wait: LimitWait): string {
  const item = wait.instance === undefined ? '' : `item ${wait.instance}: `;
  if (wait.kind === 'rate') return `${item}rate limited (key ${wait.key})${wait.until ? ` until ${formatTime(wait.until)}` : ''}`;
  return `${item}waiting for a slot of key ${wait.key} (${wait.ahead ?? 0} ahead)`;
}

/** A short line for the graph: the one unit's wait, or how a forEach's queued items stand. */
function limitsDetail(limits: StepLimits | undefined): string {
  if (!limits) return '';
  const [first] = limits.waits;
  if (limits.queued === 1 && first) return first.kind === 'rate' ? `rate limited (key ${first.key})` : `slot of ${first.key}: ${first.ahead ?? 0} ahead`;
  return limitsSummary(limits);
}

/** How many of a step's queued units wait for what; places in line are known for those looked up only. */
export function limitsSummary(limits: StepLimits): string {
  const parts: string[] = [];
  if (limits.waitingForSlot) parts.push(`${limits.waitingForSlot} waiting for a slot`);
  if (limits.rateLimited) parts.push(`${limits.rateLimited} rate limited`);
  if (limits.unavailable) parts.push('places in line unknown (Redis did not answer)');
  if (parts.length === 0) return '';
  const unchecked = limits.queued - limits.rateLimited - limits.checked;
  return `${parts.join(', ')} of ${limits.queued} queued${unchecked > 0 && !limits.unavailable ? ` (${limits.checked} looked up)` : ''}`;
}
