import { ErrorCode } from './error-codes.js';
import type { CaseStatus } from './state.js';

/**
 * Acting on many cases at once (retry, cancel or signal every case a filter matches): the
 * operation's shape, its bounds, and how the answer for one case is judged. Pure data and
 * functions; the engine (lib/engine/bulk.ts) runs operations page by page.
 */

export const BULK_ACTIONS = ['retry', 'cancel', 'signal'] as const;
export type BulkAction = (typeof BULK_ACTIONS)[number];

export const BULK_LIMITS = {
  /** Most cases one operation acts on. */
  maxCases: 10_000,
  /** Cases an operation acts on when the request names no limit. */
  defaultCases: 1_000,
  /** Cases read and acted on per page; each page's results are one stored document. */
  pageSize: 50,
  /** Cases of a page acted on at once. */
  concurrency: 4,
  /** Cases a dry run lists as a sample. */
  sample: 10,
  /** An operation whose progress was not written for this long lost its runner: another API process resumes it. */
  staleAfterMs: 60_000,
  /** How often each API process looks for such operations. */
  resumeEveryMs: 15_000,
} as const;

/** Which cases an operation acts on; the same filters as the case list. */
export interface CaseFilter {
  status?: CaseStatus;
  workflow?: string;
  /** A business key given at start. */
  businessKey?: { name: string; value: string };
  /** Created at or after (epoch ms). */
  createdAfter?: number;
  /** Created before (epoch ms). */
  createdBefore?: number;
  /** Last changed at or after (epoch ms), as the case document records it (exact for finished cases). */
  updatedAfter?: number;
  /** Last changed before (epoch ms). */
  updatedBefore?: number;
  /** The case's error code, or the code of the step error that failed it (e.g. UPSTREAM_UNAVAILABLE). */
  errorCode?: string;
}

/** What an action needs beyond the cases. */
export type BulkParams = { action: 'retry' } | { action: 'cancel'; reason?: string; compensate?: boolean } | { action: 'signal'; name: string; payload: unknown };

/** `ok`: the action was applied; `skipped`: the case's state does not allow it (a result, not a fault); `error`: it could not be applied. */
export type BulkOutcome = 'ok' | 'skipped' | 'error';

export interface BulkCaseResult {
  caseId: string;
  outcome: BulkOutcome;
  /** The case's status after the action (ok) or as found (skipped). */
  status?: CaseStatus;
  /** Why it was skipped or failed: the code the single-case route would answer with. */
  code?: string;
  message?: string;
}

export type BulkStatus = 'running' | 'completed' | 'stopped';

export interface BulkOperation {
  id: string;
  params: BulkParams;
  filter: CaseFilter;
  limit: number;
  status: BulkStatus;
  /** Cases the filter matched when the operation started, at most `limit`: what `done` counts up to. */
  total: number;
  done: number;
  counts: Record<BulkOutcome, number>;
  /** Result pages stored so far (page n holds the results of the n-th page of cases). */
  pages: number;
  /** The listing cursor after the last page done; absent before the first. */
  cursor?: string;
  createdAt: number;
  updatedAt: number;
  finishedAt?: number;
  /** The key that started it. */
  createdBy: string;
}

/** The statuses in which a case can take the action; other cases are skipped. */
function eligibleStatuses(action: BulkAction): readonly CaseStatus[] {
  return action === 'retry' ? ['failed'] : ['pending', 'running', 'waiting'];
}

/** Codes of a per-case refusal that mean "its state does not allow this", not a fault. */
// A signal no step of the case waits for is its state's refusal too, not a failure of the operation.
const SKIP_CODES = new Set<string>([ErrorCode.caseStateConflict, ErrorCode.caseNotFound, ErrorCode.signalNotAccepted]);

/** Judges one case's answer: a refusal for its state (or the case gone) is skipped, anything else an error. */
export function outcomeOf(code: string): BulkOutcome {
  return SKIP_CODES.has(code) ? 'skipped' : 'error';
}

/** How many of `counts` (cases by status) the action could apply to. */
export function eligibleCount(action: BulkAction, counts: Partial<Record<CaseStatus, number>>): number {
  return eligibleStatuses(action).reduce((sum, status) => sum + (counts[status] ?? 0), 0);
}

/** The operation as it is after one more page of results, at `now`. */
export function afterPage(operation: BulkOperation, results: readonly BulkCaseResult[], cursor: string | undefined, now: number): BulkOperation {
  const counts = { ...operation.counts };
  for (const result of results) counts[result.outcome] += 1;
  const done = operation.done + results.length;
  const finished = done >= operation.limit || cursor === undefined;
  const { cursor: _previous, ...rest } = operation;
  return {
    ...rest,
    done,
    counts,
    pages: operation.pages + 1,
    // The total counted at the start may be off by cases that changed since: the end corrects it.
    total: finished ? done : Math.max(operation.total, done),
    ...(cursor === undefined ? {} : { cursor }),
    updatedAt: now,
    ...(finished ? { status: 'completed' as const, finishedAt: now } : {}),
  };
}
