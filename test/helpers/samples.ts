import type { BulkOperation } from '../../lib/core/bulk.js';
import type { StepJob } from '../../lib/core/state.js';

/** A step job as a scheduler would enqueue it for step "step" of case "case-1"; override what a test is about. */
export const sampleStepJob = (overrides: Partial<StepJob> = {}): StepJob => ({
  caseId: 'case-1',
  workflow: 'w',
  version: 1,
  stepId: 'step',
  task: 'task',
  input: { n: 7 },
  idempotencyKey: 'case-1:step',
  maxAttempts: 3,
  backoff: { type: 'fixed', delayMs: 500, maxDelayMs: 500, jitter: 0 },
  timeoutMs: 10_000,
  breaker: 'task',
  ...overrides,
});

/** A bulk retry of failed cases that has just started: running, no page done yet. */
export const sampleBulkOperation = (overrides: Partial<BulkOperation> = {}): BulkOperation => ({
  id: 'op',
  params: { action: 'retry' },
  filter: { status: 'failed' },
  limit: 5,
  status: 'running',
  total: 5,
  done: 0,
  counts: { ok: 0, skipped: 0, error: 0 },
  pages: 0,
  createdAt: 1,
  updatedAt: 1,
  createdBy: 'key',
  ...overrides,
});
