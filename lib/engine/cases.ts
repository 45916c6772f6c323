import { createHash } from 'node:crypto';
import { CaseNotFoundError, IdempotencyConflictError } from '../core/errors.js';
import { canonicalJson, parseStartRequest } from '../core/requests.js';
import type { TraceEvent } from '../core/state.js';
import { createCase, outstandingJobs } from '../core/transition.js';
import type { Clock, IdGenerator } from '../ports/clock.js';
import type { CaseQuery, CaseRecord, CaseStore, CaseSummary } from '../ports/store.js';
import type { CaseAdvancer } from './advancer.js';
import type { WorkflowRegistry } from './workflows.js';

export interface StartResult {
  record: CaseRecord;
  /** False when the idempotency key had already started this case. */
  created: boolean;
}

/**
 * Starting and reading cases, the same for every door (HTTP, intake queue, CLI through HTTP).
 * One idempotency key makes one case, whichever door it came through: the unique index on the
 * key decides, and a replay gets the case the first request made.
 */
export class CaseService {
  constructor(
    private readonly deps: {
      store: CaseStore;
      workflows: WorkflowRegistry;
      advancer: CaseAdvancer;
      clock: Clock;
      newId: IdGenerator;
      onStarted?: (record: CaseRecord) => void;
    },
  ) {}

  /**
   * Validates and starts a case. `fallbackIdempotencyKey` is used when the request has none
   * (the intake queue passes its job id, so a redelivered job cannot start a second case);
   * `startedBy` names the API key (or door) it came through.
   */
  async start(body: unknown, origin: { fallbackIdempotencyKey?: string; startedBy?: string; requestId?: string } = {}): Promise<StartResult> {
    const { fallbackIdempotencyKey, startedBy, requestId } = origin;
    const { store, workflows, clock, newId } = this.deps;
    const request = parseStartRequest(body);
    const workflow = await workflows.compiled(request.workflow, request.version);
    const idempotencyKey = request.idempotencyKey ?? fallbackIdempotencyKey;
    const requestHash = createHash('sha256')
      .update(canonicalJson({ workflow: request.workflow, version: request.version, input: request.input ?? {}, businessKeys: request.businessKeys ?? {} }))
      .digest('hex');
    const now = clock.now();
    const started = createCase(workflow, { id: newId(), input: request.input ?? {}, now, ...(requestId === undefined ? {} : { requestId }) });
    const record: CaseRecord = {
      ...started.state,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey, requestHash }),
      ...(startedBy === undefined ? {} : { startedBy }),
      ...(request.businessKeys === undefined ? {} : { businessKeys: request.businessKeys }),
    };

    const created = await store.createCase(record, started.events);
    if (!created.created) {
      const { existing } = created;
      if (existing.requestHash !== requestHash) throw new IdempotencyConflictError(idempotencyKey ?? '', existing.id);
      // The first request may have died between storing the case and enqueueing its steps.
      const existingWorkflow = await workflows.compiled(existing.workflow, existing.version);
      await this.deps.advancer.carryOut(outstandingJobs(existingWorkflow, existing));
      return { record: existing, created: false };
    }
    await this.deps.advancer.carryOut(started.commands);
    this.deps.onStarted?.(record);
    return { record, created: true };
  }

  async get(id: string): Promise<CaseRecord> {
    const record = await this.deps.store.getCase(id);
    if (!record) throw new CaseNotFoundError(id);
    return record;
  }

  list(query: CaseQuery): Promise<{ cases: CaseSummary[]; nextCursor?: string }> {
    return this.deps.store.listCases(query);
  }

  async trace(id: string): Promise<TraceEvent[]> {
    const events = await this.deps.store.readTrace(id);
    if (events.length === 0 && !(await this.deps.store.getCase(id))) throw new CaseNotFoundError(id);
    return events;
  }
}
