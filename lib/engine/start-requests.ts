import { createHash } from 'node:crypto';
import type { CompiledWorkflow } from '../core/definition.js';
import { DERIVED_SCOPE, producerScope } from '../core/idempotency.js';
import { assertCaseInput } from '../core/input-schema.js';
import { canonicalJson, idempotencyWindowMs, parseStartRequest, type StartCaseRequest } from '../core/requests.js';
import type { CaseState, Command } from '../core/state.js';
import { createCase, type DebouncedCreation } from '../core/transition.js';
import type { Clock, IdGenerator } from '../ports/clock.js';
import type { CaseRecord, CaseStore } from '../ports/store.js';
import type { ChildCases, NewCase } from './case-repository.js';
import type { WorkflowRegistry } from './workflows.js';

/** Where a start came from: see `StartRequests.prepare`. */
export interface StartOrigin {
  fallbackIdempotencyKey?: string;
  startedBy?: string;
  requestId?: string;
  parent?: CaseState['parent'];
  depth?: number;
  /** A child case's: its parent's priority, unless its request says. */
  priority?: number;
  /** When the start was made, if not now (an intake job's `enqueuedAt`): orders a debounce burst's starts. */
  at?: number;
}

/** A start request checked against its workflow (the version it names, or the latest). */
export interface CheckedStart {
  request: StartCaseRequest;
  workflow: CompiledWorkflow;
}

/** The hash of what a start asks for, to tell a replay of its idempotency key from a conflicting reuse. */
export function requestHashOf(request: StartCaseRequest): string {
  return createHash('sha256')
    .update(canonicalJson({ workflow: request.workflow, version: request.version, input: request.input ?? {}, businessKeys: request.businessKeys ?? {} }))
    .digest('hex');
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

  /** Validates a start request against its workflow; throws what is wrong with it. */
  async check(body: unknown): Promise<CheckedStart> {
    const request = parseStartRequest(body);
    const workflow = await this.deps.workflows.compiled(request.workflow, request.version);
    // Checked here, at every door, so that a case never starts with an input its handlers cannot use.
    assertCaseInput(workflow, request.input ?? {});
    return { request, workflow };
  }

  /**
   * Validates a start request and makes its case. `fallbackIdempotencyKey` is used when the
   * request has none (the intake queue passes one derived from its job, so a redelivered job
   * cannot start a second case); it is in the derived scope, which no request can reach.
   * `startedBy` names the API key (or door) it came through, and so the scope of a key the
   * request carries.
   */
  async prepare(body: unknown, origin: StartOrigin = {}): Promise<NewCase> {
    return this.build(await this.check(body), origin);
  }

  /** The case of a checked start; `made` gives the id of a case decided before (a debounce burst's) and what to trace of its making. */
  build({ request, workflow }: CheckedStart, origin: StartOrigin, made?: { id: string; debounced: DebouncedCreation }): NewCase {
    const { fallbackIdempotencyKey, startedBy, requestId, parent, depth, priority } = origin;
    const idempotencyKey = request.idempotencyKey ?? fallbackIdempotencyKey;
    const idempotencyScope = request.idempotencyKey !== undefined ? producerScope(startedBy) : DERIVED_SCOPE;
    const now = this.deps.clock.now();
    // The window is the key's lifetime, set by the start that makes the case (a replay's own window changes nothing).
    const windowMs = idempotencyWindowMs(request);
    const started = createCase(workflow, {
      id: made?.id ?? this.deps.newId(),
      input: request.input ?? {},
      now,
      ...(requestId === undefined ? {} : { requestId }),
      ...(request.priority ? { priority: request.priority } : priority ? { priority } : {}),
      ...(parent === undefined ? {} : { parent }),
      ...(depth === undefined ? {} : { depth }),
      ...(made === undefined ? {} : { debounced: made.debounced }),
    });
    const record: CaseRecord = {
      ...started.state,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey, idempotencyScope, requestHash: requestHashOf(request) }),
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
      ...(parent?.priority ? { priority: parent.priority } : {}),
    });
  }
}
