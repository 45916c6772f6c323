import { afterPage, BULK_LIMITS, eligibleCount, outcomeOf, type BulkCaseResult, type BulkOperation, type BulkParams, type CaseFilter } from '../core/bulk.js';
import { ErrorCode } from '../core/error-codes.js';
import { bulkOperationNotFoundError, WorkfleetError } from '../core/errors.js';
import type { CaseStatus } from '../core/state.js';
import type { Logger } from '../obs/logger.js';
import type { Clock, IdGenerator } from '../ports/clock.js';
import type { BulkStore, CaseStore, CaseSummary } from '../ports/store.js';
import type { CaseService } from './cases.js';

export interface BulkRequest {
  params: BulkParams;
  filter: CaseFilter;
  /** Most cases to act on, 1 to BULK_LIMITS.maxCases. */
  limit: number;
}

/** What a dry run answers: how many cases match, by status, how many the action applies to, the first few. */
export interface BulkPreview {
  /** Matching cases, counted up to BULK_LIMITS.maxCases. */
  matched: number;
  /** True when the count stopped at BULK_LIMITS.maxCases: at least that many match. */
  atLeast: boolean;
  byStatus: Partial<Record<CaseStatus, number>>;
  /** Of the matching cases, those whose status allows the action; the others would be skipped. */
  eligible: number;
  /** Cases a real run would act on: the matching ones, up to the limit. */
  wouldAct: number;
  /** The newest matching cases. */
  sample: CaseSummary[];
}

/** Results of an operation from a page on, and where the next read starts (null: none stored beyond). */
export interface BulkResultsPage {
  results: BulkCaseResult[];
  nextPage: number | null;
}

/** Result pages a read looks at, and results it returns, at most. */
const RESULT_PAGES_PER_READ = 20;
const RESULTS_PER_READ = 200;

/** Runs `act` over `items`, `concurrency` at a time, keeping their order. */
async function mapLimited<T, R>(items: readonly T[], concurrency: number, act: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let index = next++; index < items.length; index = next++) out[index] = await act(items[index] as T);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return out;
}

/**
 * Retry, cancel or signal every case a filter matches. A dry run counts them. A real run is an
 * operation stored with its progress, run by the API process that accepted it a page of cases
 * at a time (each case through the same CaseService call as the single-case route, so the same
 * rules and codes), each page's results stored before the next page starts: memory stays bounded
 * by a page, and progress and results can be read at any time. An operation whose runner died
 * (its progress not written for `staleAfterMs`) is resumed by any API process from its last
 * stored page; the page it was in is run again, where a case already acted on is skipped.
 */
export class BulkService {
  private readonly running = new Map<string, Promise<void>>();
  private closing = false;

  constructor(
    private readonly deps: {
      store: CaseStore & BulkStore;
      cases: CaseService;
      clock: Clock;
      newId: IdGenerator;
      logger: Logger;
      pageSize?: number;
      staleAfterMs?: number;
    },
  ) {}

  async preview(request: BulkRequest): Promise<BulkPreview> {
    const { store } = this.deps;
    const [counted, first] = await Promise.all([store.countCases(request.filter, BULK_LIMITS.maxCases), store.listCases({ ...request.filter, limit: BULK_LIMITS.sample })]);
    return {
      matched: counted.total,
      atLeast: counted.total >= BULK_LIMITS.maxCases,
      byStatus: counted.byStatus,
      eligible: eligibleCount(request.params.action, counted.byStatus),
      wouldAct: Math.min(counted.total, request.limit),
      sample: first.cases,
    };
  }

  /** Stores the operation and starts running it in this process; answers at once. */
  async start(request: BulkRequest, createdBy: string): Promise<BulkOperation> {
    const { store, clock, newId } = this.deps;
    const now = clock.now();
    const { total } = await store.countCases(request.filter, request.limit);
    const operation: BulkOperation = {
      id: newId(),
      params: request.params,
      filter: request.filter,
      limit: request.limit,
      status: 'running',
      total,
      done: 0,
      counts: { ok: 0, skipped: 0, error: 0 },
      pages: 0,
      createdAt: now,
      updatedAt: now,
      createdBy,
    };
    await store.insertBulkOperation(operation);
    this.launch(operation);
    return operation;
  }

  async get(id: string): Promise<BulkOperation> {
    const operation = await this.deps.store.getBulkOperation(id);
    if (!operation) throw bulkOperationNotFoundError(id);
    return operation;
  }

  /** Stops an operation before its next page (the page under way finishes); a finished one is returned as it is. */
  async stop(id: string): Promise<BulkOperation> {
    const operation = await this.deps.store.stopBulkOperation(id, this.deps.clock.now());
    if (!operation) throw bulkOperationNotFoundError(id);
    return operation;
  }

  /** Stored results from page `from` on, only those with `outcome` when given; a bounded read. */
  async results(id: string, options: { from?: number; outcome?: BulkCaseResult['outcome'] } = {}): Promise<BulkResultsPage> {
    const operation = await this.get(id);
    const results: BulkCaseResult[] = [];
    let page = options.from ?? 0;
    for (let read = 0; page < operation.pages && read < RESULT_PAGES_PER_READ && results.length < RESULTS_PER_READ; page++, read++) {
      const stored = (await this.deps.store.readBulkResults(id, page)) ?? [];
      results.push(...(options.outcome ? stored.filter((result) => result.outcome === options.outcome) : stored));
    }
    return { results, nextPage: page < operation.pages ? page : null };
  }

  /** Resumes operations whose runner stopped writing progress (a crash, a shutdown mid-operation). */
  async resumeStalled(): Promise<number> {
    if (this.closing) return 0;
    const stale = this.deps.clock.now() - (this.deps.staleAfterMs ?? BULK_LIMITS.staleAfterMs);
    const stalled = (await this.deps.store.findStalledBulkOperations(stale, 10)).filter((operation) => !this.running.has(operation.id));
    for (const operation of stalled) {
      this.deps.logger.warn({ bulk: operation.id, done: operation.done, total: operation.total }, 'resuming a stalled bulk operation');
      this.launch(operation);
    }
    return stalled.length;
  }

  /** Lets the pages under way finish and starts no more; unfinished operations are resumed by another process. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.running.values());
  }

  private launch(operation: BulkOperation): void {
    if (this.running.has(operation.id) || this.closing) return;
    const run = this.run(operation)
      .catch((error: unknown) => this.deps.logger.warn({ err: error, bulk: operation.id }, 'bulk operation interrupted; it is resumed once stale'))
      .finally(() => this.running.delete(operation.id));
    this.running.set(operation.id, run);
  }

  private async run(start: BulkOperation): Promise<void> {
    const { store, clock } = this.deps;
    const pageSize = this.deps.pageSize ?? BULK_LIMITS.pageSize;
    let current = start;
    while (current.status === 'running' && !this.closing) {
      // A stop, or another runner ahead of this one, ends this run.
      const stored = await store.getBulkOperation(current.id);
      if (!stored || stored.status !== 'running' || stored.pages !== current.pages) return;
      const page = await store.listCases({
        ...current.filter,
        limit: Math.min(pageSize, current.limit - current.done),
        ...(current.cursor === undefined ? {} : { cursor: current.cursor }),
      });
      const results = await mapLimited(page.cases, BULK_LIMITS.concurrency, (item) => this.act(current.params, item.id));
      const next = afterPage(current, results, page.nextCursor, clock.now());
      if ((await store.saveBulkPage(next, results)) === 'taken') return;
      current = next;
    }
  }

  /** One case through the single-case call: applied, skipped for its state, or failed. */
  private async act(params: BulkParams, caseId: string): Promise<BulkCaseResult> {
    const { cases } = this.deps;
    try {
      const record =
        params.action === 'retry'
          ? await cases.retry(caseId)
          : params.action === 'cancel'
            ? await cases.cancel(caseId, { ...(params.reason === undefined ? {} : { reason: params.reason }), ...(params.compensate === undefined ? {} : { compensate: params.compensate }) })
            : await cases.signal(caseId, params.name, params.payload);
      return { caseId, outcome: 'ok', status: record.status };
    } catch (error) {
      if (error instanceof WorkfleetError) {
        const status = (error.details as { status?: CaseStatus } | undefined)?.status;
        return { caseId, outcome: outcomeOf(error.code), code: error.code, message: error.message, ...(status === undefined ? {} : { status }) };
      }
      this.deps.logger.warn({ err: error, caseId }, 'bulk action failed');
      return { caseId, outcome: 'error', code: ErrorCode.bulkActionFailed, message: error instanceof Error ? error.message : String(error) };
    }
  }
}
