import { createHash } from 'node:crypto';
import { caseNotFoundError, caseStateConflictError, eventRefusedError, signalNotAcceptedError, startIncompleteError, WorkfleetError } from '../core/errors.js';
import { retryRefusal } from '../core/machine/case-events.js';
import { DERIVED_SCOPE, producerScope } from '../core/idempotency.js';
import { assertCaseInput } from '../core/input-schema.js';
import { acceptedSignals } from '../core/signals.js';
import { canonicalJson, idempotencyWindowMs, parseStartRequest } from '../core/requests.js';
import { isTerminalCase, type CaseState, type Command, type TraceEvent } from '../core/state.js';
import { createCase, transition } from '../core/transition.js';
import type { Clock, IdGenerator } from '../ports/clock.js';
import type { CaseQuery, CaseRecord, CaseStore, CaseSummary } from '../ports/store.js';
import type { CaseAdvancer } from './advancer.js';
import type { CaseRepository, ChildCases, NewCase } from './case-repository.js';
import type { WorkflowRegistry } from './workflows.js';

export interface StartResult {
  record: CaseRecord;
  /** False when the idempotency key had already started this case. */
  created: boolean;
}

/** Where a start came from: see `StartRequests.prepare`. */
export interface StartOrigin {
  fallbackIdempotencyKey?: string;
  startedBy?: string;
  requestId?: string;
  parent?: CaseState['parent'];
  depth?: number;
}

/**
 * Turns start requests into new cases, not written yet: checked against their workflow, with
 * their idempotency key, its scope and the request's hash. The child cases of sub-workflow
 * steps are made here too, so the case repository that creates them needs no CaseService.
 */
export class StartRequests implements ChildCases {
  constructor(
    private readonly deps: {
      store: Pick<CaseStore, 'getCase'>;
      workflows: WorkflowRegistry;
      clock: Clock;
      newId: IdGenerator;
    },
  ) {}

  /**
   * Validates a start request and makes its case. `fallbackIdempotencyKey` is used when the
   * request has none (the intake queue passes one derived from its job, so a redelivered job
   * cannot start a second case); it is in the derived scope, which no request can reach.
   * `startedBy` names the API key (or door) it came through, and so the scope of a key the
   * request carries.
   */
  async prepare(body: unknown, origin: StartOrigin = {}): Promise<NewCase> {
    const { fallbackIdempotencyKey, startedBy, requestId, parent, depth } = origin;
    const { workflows, clock, newId } = this.deps;
    const request = parseStartRequest(body);
    const workflow = await workflows.compiled(request.workflow, request.version);
    // Checked here, at every door, so that a case never starts with an input its handlers cannot use.
    assertCaseInput(workflow, request.input ?? {});
    const idempotencyKey = request.idempotencyKey ?? fallbackIdempotencyKey;
    const idempotencyScope = request.idempotencyKey !== undefined ? producerScope(startedBy) : DERIVED_SCOPE;
    const requestHash = createHash('sha256')
      .update(canonicalJson({ workflow: request.workflow, version: request.version, input: request.input ?? {}, businessKeys: request.businessKeys ?? {} }))
      .digest('hex');
    const now = clock.now();
    // The window is the key's lifetime, set by the start that makes the case (a replay's own window changes nothing).
    const windowMs = idempotencyWindowMs(request);
    const started = createCase(workflow, {
      id: newId(),
      input: request.input ?? {},
      now,
      ...(requestId === undefined ? {} : { requestId }),
      ...(parent === undefined ? {} : { parent }),
      ...(depth === undefined ? {} : { depth }),
    });
    const record: CaseRecord = {
      ...started.state,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey, idempotencyScope, requestHash }),
      ...(windowMs === undefined ? {} : { idempotencyExpiresAt: now + windowMs }),
      ...(startedBy === undefined ? {} : { startedBy }),
      ...(request.businessKeys === undefined ? {} : { businessKeys: request.businessKeys }),
    };
    return { record, events: started.events, commands: started.commands };
  }

  /** The child case of a sub-workflow step; it inherits who started the parent. */
  async prepareChild(command: Command & { type: 'startChild' }): Promise<NewCase> {
    const parent = await this.deps.store.getCase(command.parent.caseId);
    return this.prepare(command.request, {
      fallbackIdempotencyKey: command.idempotencyKey,
      parent: command.parent,
      depth: command.depth,
      ...(parent?.startedBy === undefined ? {} : { startedBy: parent.startedBy }),
      ...(parent?.requestId === undefined ? {} : { requestId: parent.requestId }),
    });
  }
}

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
      repository: CaseRepository;
      advancer: CaseAdvancer;
      clock: Clock;
    },
  ) {}

  /** Validates and starts a case (see `StartRequests.prepare` for `origin`). */
  async start(body: unknown, origin: StartOrigin = {}): Promise<StartResult> {
    const start = await this.deps.starts.prepare(body, origin);
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
