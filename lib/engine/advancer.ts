import { RevisionConflictError } from '../core/errors.js';
import type { CaseEvent, CaseState, Command, TraceEvent } from '../core/state.js';
import { outstandingJobs, transition } from '../core/transition.js';
import type { Logger } from '../obs/logger.js';
import type { Clock } from '../ports/clock.js';
import type { TaskQueues } from '../ports/queues.js';
import type { CaseStore } from '../ports/store.js';
import type { WorkflowRegistry } from './workflows.js';

export type ApplyResult = 'applied' | 'duplicate' | 'unknown-case';

/** Conditional writes that lose a race are retried this often before giving up. */
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
 * Applies events to cases exactly once. Each application reads the case, runs the pure
 * transition, and commits the result as the next revision; if another process committed that
 * revision first, it catches up and runs the transition again on the newer state. Events for one case that arrive while an application is in
 * flight wait in a per-case mailbox and go in together as one transition: fewer writes, and no
 * conflicts between the processes' own concurrent jobs for the same case.
 */
export class CaseAdvancer {
  private readonly mailboxes = new Map<string, Waiter[]>();

  constructor(
    private readonly deps: {
      store: CaseStore;
      workflows: WorkflowRegistry;
      queues: TaskQueues;
      clock: Clock;
      logger: Logger;
      hooks?: AdvancerHooks;
    },
  ) {}

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
        const result = await this.applyBatch(
          caseId,
          waiters.map((waiter) => waiter.event),
        );
        for (const waiter of waiters) waiter.resolve(result);
      } catch (error) {
        for (const waiter of waiters) waiter.reject(error);
      }
    }
  }

  private async applyBatch(caseId: string, events: readonly CaseEvent[]): Promise<ApplyResult> {
    const { store, workflows, clock } = this.deps;
    for (let round = 0; round < MAX_CONFLICTS; round++) {
      const record = await store.getCase(caseId);
      if (!record) return 'unknown-case';
      const workflow = await workflows.compiled(record.workflow, record.version);
      const result = transition(workflow, record, events, clock.now());
      if (result.events.length === 0) {
        // Already applied. If the first application died before enqueueing what it decided,
        // this is the moment to make good: re-adding existing job ids is a no-op.
        await this.carryOut(outstandingJobs(workflow, record));
        return 'duplicate';
      }
      if ((await store.commitTransition(record, result.state, result.events)) === 'conflict') {
        // Another process committed this revision; bring the case up to date and decide again.
        this.deps.hooks?.onConflict?.();
        await store.catchUp(caseId);
        continue;
      }
      this.deps.hooks?.onApplied?.(record, result.state, result.events);
      await this.carryOut(result.commands);
      return 'applied';
    }
    throw new RevisionConflictError(caseId);
  }

  async carryOut(commands: readonly Command[]): Promise<void> {
    const steps = commands.filter((command) => command.type === 'enqueueStep');
    if (steps.length > 0) await this.deps.queues.enqueueSteps(steps);
  }
}
