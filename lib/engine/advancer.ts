import { DEFAULT_CASE_BUDGET, type CaseBudget } from '../core/case-size.js';
import type { CompiledWorkflow } from '../core/definition.js';
import { CaseNotCommittableError, eventRefusedError, revisionConflictError } from '../core/errors.js';
import type { CaseEvent, CaseState, ErrorInfo, TraceEvent } from '../core/state.js';
import { transition } from '../core/transition.js';
import type { Logger } from '../obs/logger.js';
import type { Clock } from '../ports/clock.js';
import type { CaseRepository } from './case-repository.js';
import type { WorkflowRegistry } from './workflows.js';

export type ApplyResult = 'applied' | 'duplicate' | 'unknown-case';

/** Commits that lose a race are retried this often before giving up. */
const MAX_CONFLICTS = 50;

interface Waiter {
  event: CaseEvent;
  resolve: (result: ApplyResult) => void;
  reject: (error: unknown) => void;
}

export interface AdvancerHooks {
  onConflict?: () => void;
  onApplied?: (before: CaseState, after: CaseState, events: readonly TraceEvent[]) => void;
}

/**
 * Applies events to cases exactly once. Each application takes the case's latest state (the one
 * this process last committed, or a read that folds every committed revision), runs the pure
 * transition, and has the case repository commit the result as the next revision, one history
 * append; if another process committed that revision first, it reads the case again and runs
 * the transition on the newer state. An application that changes nothing is a duplicate (a
 * report delivered again, or one already applied by another process), judged on a fresh read.
 * Events for one case that arrive while an application is in flight wait in a per-case mailbox
 * and go in together as one transition: fewer writes, and no conflicts between the process's
 * own concurrent jobs for the same case.
 */
export class CaseAdvancer {
  private readonly mailboxes = new Map<string, Waiter[]>();

  constructor(
    private readonly deps: {
      repository: CaseRepository;
      workflows: WorkflowRegistry;
      clock: Clock;
      logger: Logger;
      hooks?: AdvancerHooks;
      /** How large a case may grow (CASE_MAX_BYTES); the default budget when unset. */
      budget?: CaseBudget;
    },
  ) {}

  /** The case budget every transition of this advancer keeps to (the API checks signals against it too). */
  get budget(): CaseBudget {
    return this.deps.budget ?? DEFAULT_CASE_BUDGET;
  }

  apply(caseId: string, event: CaseEvent): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      const waiting = this.mailboxes.get(caseId);
      if (waiting) {
        waiting.push({ event, resolve, reject });
        return;
      }
      this.mailboxes.set(caseId, [{ event, resolve, reject }]);
      void this.drain(caseId);
    });
  }

  private async drain(caseId: string): Promise<void> {
    // The mailbox stays registered while a batch runs, so new events queue behind it.
    for (;;) {
      const waiters = this.mailboxes.get(caseId) ?? [];
      if (waiters.length === 0) {
        this.mailboxes.delete(caseId);
        return;
      }
      this.mailboxes.set(caseId, []);
      try {
        const { result, refused } = await this.applyBatch(
          caseId,
          waiters.map((waiter) => waiter.event),
        );
        for (const waiter of waiters) {
          // A refused event (a signal that does not fit) is answered as refused to whoever sent it.
          const refusal = refused.get(waiter.event);
          if (refusal) waiter.reject(eventRefusedError(refusal));
          else waiter.resolve(result);
        }
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
  }

  private async applyBatch(caseId: string, events: readonly CaseEvent[]): Promise<{ result: ApplyResult; refused: Map<CaseEvent, ErrorInfo> }> {
    const { repository, workflows, clock } = this.deps;
    const none = new Map<CaseEvent, ErrorInfo>();
    for (let round = 0; round < MAX_CONFLICTS; round++) {
      const remembered = repository.recall(caseId);
      const read = remembered ? undefined : await repository.read(caseId);
      const record = remembered ?? read?.record;
      if (!record) return { result: 'unknown-case', refused: none };
      const workflow = await workflows.compiled(record.workflow, record.version);
      const result = transition(workflow, record, events, clock.now(), this.budget);
      if (result.events.length === 0) {
        // Perhaps applied by another process after the state remembered: read the case.
        if (!read) continue;
        // A read folds every committed revision, so nothing new means applied already.
        await repository.repeat(workflow, read);
        return { result: 'duplicate', refused: none };
      }
      let outcome;
      try {
        outcome = await repository.commit(record, result);
      } catch (error) {
        if (error instanceof CaseNotCommittableError) await this.markNotCommittable(workflow, record, error);
        throw error;
      }
      if (outcome === 'conflict') {
        // Another process committed this revision: read the case as it is now and decide again.
        this.deps.hooks?.onConflict?.();
        continue;
      }
      this.deps.hooks?.onApplied?.(record, result.state, result.events);
      await outcome.carriedOut;
      return { result: 'applied', refused: new Map((result.refused ?? []).map((refusal) => [refusal.event, refusal.error])) };
    }
    throw revisionConflictError(caseId);
  }

  /**
   * The store refuses the case's next transition and would refuse it again (retrying cannot
   * help): the case is marked stuck with that reason, a small transition that the store takes,
   * so that it shows in the API, the trace and the stuck metric instead of being retried
   * silently for ever. A cancel (which only shrinks a case) can still end it.
   */
  private async markNotCommittable(workflow: CompiledWorkflow, record: CaseState, error: CaseNotCommittableError): Promise<void> {
    const reason = `its next transition cannot be committed: ${error.why}`;
    this.deps.logger.error({ caseId: record.id, revision: record.revision + 1, err: error }, 'the store refuses a transition of the case');
    if (record.stuck?.reason === reason) return;
    const now = this.deps.clock.now();
    const marked = transition(workflow, record, [{ type: 'stuck', reason, at: now }], now, this.budget);
    if (marked.events.length === 0) return;
    try {
      const outcome = await this.deps.repository.commit(record, marked);
      if (outcome !== 'conflict') await outcome.carriedOut;
    } catch (markError) {
      this.deps.logger.error({ caseId: record.id, err: markError }, 'could not mark the case stuck either');
    }
  }
}
