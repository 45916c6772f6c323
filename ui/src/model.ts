/**
 * The API's answers as the explorer reads them (see api/schemas.ts), and what a step's state
 * means on screen. Pure: no DOM.
 */

export interface ErrorInfo {
  code: string;
  message: string;
  stepId?: string;
  attempt?: number;
  details?: unknown;
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
  if (step.status === 'scheduled' && (step.deferredBy || step.nextAttemptAt)) return 'waiting';
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
  if (step.deferredBy) parts.push(`breaker ${step.deferredBy}`);
  else if (step.status === 'scheduled' && step.nextAttemptAt) {
    const due = Date.parse(step.nextAttemptAt) - now;
    parts.push(due > 0 ? `retry in ${Math.ceil(due / 1000)} s` : 'retry due');
  }
  if (step.attempts > 1 || (step.attempts === 1 && !step.items)) parts.push(`attempt ${step.attempts}`);
  if (step.iteration !== undefined) parts.push(`iteration ${step.iteration}`);
  if (step.status === 'skipped') parts.push('skipped');
  return parts.join(' · ') || step.status;
}
