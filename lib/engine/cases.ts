import { caseNotFoundError, caseStateConflictError, eventRefusedError, signalNotAcceptedError, startIncompleteError, WorkfleetError } from '../core/errors.js';
import { retryRefusal } from '../core/machine/case-events.js';
import { acceptedSignals } from '../core/signals.js';
import { isTerminalCase, type Command, type TraceEvent } from '../core/state.js';
import { transition } from '../core/transition.js';
import type { Clock } from '../ports/clock.js';
import type { CaseQuery, CaseRecord, CaseStore, CaseSummary } from '../ports/store.js';
import type { CaseAdvancer } from './advancer.js';
import type { CaseRepository, NewCase } from './case-repository.js';
import { parseBurstRef, type DebouncedStart, type DebouncedStarts } from './debounced-starts.js';
import type { StartOrigin, StartRequests } from './start-requests.js';
import type { WorkflowRegistry } from './workflows.js';

export interface StartResult {
  record: CaseRecord;
  /** False when the idempotency key had already started this case. */
  created: boolean;
}

/** What a door's start came to: a case (made now, or found by its idempotency key), or a place in a debounce burst. */
export type SubmitResult = ({ kind: 'case' } & StartResult) | { kind: 'debounced'; debounced: DebouncedStart };

/**
 * Starting and reading cases, the same for every door (HTTP, intake queue, CLI through HTTP).
 * One idempotency key makes one case per scope (its producer's, lib/core/idempotency.ts): the
 * store's unique index on scope and key decides, and a replay gets the case the first request made.
 */
export class CaseService {
  constructor(
    private readonly deps: {
      store: CaseStore;
      workflows: WorkflowRegistry;
      starts: StartRequests;
      debounced: DebouncedStarts;
      repository: CaseRepository;
      advancer: CaseAdvancer;
      clock: Clock;
    },
  ) {}

  /**
   * A start from a door (HTTP, the intake queue): a case at once, or, for a workflow with
   * `debounce:`, the burst the start joined (lib/engine/debounced-starts.ts), whose case is made
   * when the burst closes (`closeBurst`). See `StartRequests.prepare` for `origin`.
   */
  async submit(body: unknown, origin: StartOrigin = {}): Promise<SubmitResult> {
    const checked = await this.deps.starts.check(body);
    const { debounce } = checked.workflow;
    if (debounce !== undefined) return { kind: 'debounced', debounced: await this.deps.debounced.join(checked, debounce, origin) };
    return { kind: 'case', ...(await this.create(this.deps.starts.build(checked, origin))) };
  }

  /** Validates and starts a case now, whatever the workflow's `debounce:` (the doors `submit`). */
  async start(body: unknown, origin: StartOrigin = {}): Promise<StartResult> {
    return this.create(await this.deps.starts.prepare(body, origin));
  }

  /**
   * Closes the burst a close job names, if it is due: its case is made from its last start, under
   * the burst's id and an idempotency key derived from it, so that a close run again after a
   * crash finds the case instead of making another. 'wait' says when to look again.
   */
  async closeBurst(data: unknown): Promise<{ kind: 'wait'; dueAt: number } | { kind: 'gone' } | ({ kind: 'started' } & StartResult)> {
    const ref = parseBurstRef(data);
    const closed = await this.deps.debounced.close(ref);
    if (closed.kind !== 'start') return closed;
    const { start } = closed;
    const checked = await this.deps.starts.check(start.request);
    const origin = {
      fallbackIdempotencyKey: `debounce:${ref.burstId}`,
      ...(start.startedBy === undefined ? {} : { startedBy: start.startedBy }),
      ...(start.requestId === undefined ? {} : { requestId: start.requestId }),
    };
    const made = await this.create(this.deps.starts.build(checked, origin, { id: ref.burstId, debounced: { key: start.key, starts: closed.starts, firstAt: closed.firstAt } }));
    await this.deps.debounced.release(ref);
    return { kind: 'started', ...made };
  }

  private create(start: NewCase): Promise<StartResult> {
    // From the insert on, a failure may leave the case made: the error says so (StartIncompleteError).
    return this.incomplete(start.record, () => this.deps.repository.create(start));
  }

  /** Runs a start from its insert on; an unexpected failure becomes a StartIncompleteError naming the case. */
  private async incomplete<T>(record: CaseRecord, step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (error) {
      // A refusal on purpose (a workflow gone, a conflict) is what it is; anything else may have left the case made.
      if (error instanceof WorkfleetError && !error.retryable) throw error;
      throw startIncompleteError(record.id, record.idempotencyKey, error);
    }
  }

  /** The child case of a sub-workflow step, started as the case repository starts it when carrying out the parent's command. */
  async startChild(command: Command & { type: 'startChild' }): Promise<StartResult> {
    const start = await this.deps.starts.prepareChild(command);
    return this.incomplete(start.record, () => this.deps.repository.create(start));
  }

  /** Cancels an open case: its jobs stop, its children are cancelled, compensations run if asked. */
  async cancel(id: string, options: { reason?: string; compensate?: boolean }): Promise<CaseRecord> {
    const record = await this.open(id);
    await this.deps.advancer.apply(id, {
      type: 'cancel',
      reason: options.reason ?? 'cancelled by request',
      ...(options.compensate === undefined ? {} : { compensate: options.compensate }),
      at: this.deps.clock.now(),
    });
    return this.get(record.id);
  }

  /**
   * Sends a signal to a case: a step waiting for it takes it, or it waits for one that will. One
   * that would not fit (the case budget, the buffer's bounds) is refused here, before anything is
   * written, by the same pure rule the transition applies; one that raced another past the bound
   * is refused by the transition itself, and the advancer rejects it just the same.
   */
  async signal(id: string, name: string, payload: unknown): Promise<CaseRecord> {
    const record = await this.open(id);
    const workflow = await this.deps.workflows.compiled(record.workflow, record.version);
    const accepted = acceptedSignals(workflow, record.steps);
    if (!accepted.includes(name)) throw signalNotAcceptedError(id, name, accepted);
    const event = { type: 'signal' as const, name, payload: payload ?? null, at: this.deps.clock.now() };
    const refusal = transition(workflow, record, [event], event.at, this.deps.advancer.budget).refused?.[0];
    if (refusal) throw eventRefusedError(refusal.error);
    await this.deps.advancer.apply(id, event);
    return this.get(id);
  }

  /** Resumes a failed case from its failed steps, with new jobs and the same idempotency keys. */
  async retry(id: string): Promise<CaseRecord> {
    const record = await this.get(id);
    const refusal = retryRefusal(record);
    if (refusal !== undefined) throw caseStateConflictError(id, record.status, refusal);
    await this.deps.advancer.apply(id, { type: 'retry', at: this.deps.clock.now() });
    return this.get(id);
  }

  private async open(id: string): Promise<CaseRecord> {
    const record = await this.get(id);
    if (isTerminalCase(record.status)) throw caseStateConflictError(id, record.status, 'it has finished');
    return record;
  }

  async get(id: string): Promise<CaseRecord> {
    const record = await this.deps.store.getCase(id);
    if (!record) throw caseNotFoundError(id);
    return record;
  }

  list(query: CaseQuery): Promise<{ cases: CaseSummary[]; nextCursor?: string }> {
    return this.deps.store.listCases(query);
  }

  async trace(id: string): Promise<TraceEvent[]> {
    const events = await this.deps.store.readTrace(id);
    if (events.length === 0 && !(await this.deps.store.getCase(id))) throw caseNotFoundError(id);
    return events;
  }
}
