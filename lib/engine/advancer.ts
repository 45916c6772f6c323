import { DEFAULT_CASE_BUDGET, type CaseBudget } from '../core/case-size.js';
import type { CompiledWorkflow } from '../core/definition.js';
import { CaseNotCommittableError, eventRefusedError, revisionConflictError, WorkfleetError } from '../core/errors.js';
import { isTerminalCase, type CaseEvent, type CaseState, type Command, type ErrorInfo, type StepReport, type TraceEvent } from '../core/state.js';
import { outstandingWork, transition } from '../core/transition.js';
import type { Logger } from '../obs/logger.js';
import type { Clock } from '../ports/clock.js';
import type { TaskQueues } from '../ports/queues.js';
import type { CaseStore } from '../ports/store.js';
import type { WorkflowRegistry } from './workflows.js';

export type ApplyResult = 'applied' | 'duplicate' | 'unknown-case';

/** Conditional writes that lose a race are retried this often before giving up. */
const MAX_CONFLICTS = 50;

/** Open cases whose latest committed state this process remembers. Default 10,000. */
const KNOWN_CASES = 10_000;

interface Waiter {
  event: CaseEvent;
  resolve: (result: ApplyResult) => void;
  reject: (error: unknown) => void;
}

/** Starts the child case of a sub-workflow step (the CaseService); idempotent by the command's key. */
export type ChildStarter = (command: Command & { type: 'startChild' }) => Promise<{ record: CaseState; created: boolean }>;

export interface AdvancerHooks {
  onConflict?: () => void;
  onApplied?: (before: CaseState, after: CaseState, events: readonly TraceEvent[]) => void;
}

/**
 * Applies events to cases exactly once. Each application reads the case (the store folds every
 * committed revision into it), runs the pure transition, and commits the result as the next
 * revision, one history append; if another process committed that revision first, it reads the
 * case again and runs the transition on the newer state. Events for one case that arrive while an application is in
 * flight wait in a per-case mailbox and go in together as one transition: fewer writes, and no
 * conflicts between the processes' own concurrent jobs for the same case.
 */
export class CaseAdvancer {
  private readonly mailboxes = new Map<string, Waiter[]>();
  /**
   * The last state this process committed (or created) per open case, so the next event for it
   * skips reading the case: the commit is decided by the history entry's unique `_id` alone, so
   * a state that another process has since moved on from only costs a conflict and a re-read,
   * never a second application. Insertion order doubles as least-recently-committed order.
   */
  private readonly known = new Map<string, CaseState>();
  private startChild: ChildStarter | undefined;

  constructor(
    private readonly deps: {
      store: CaseStore;
      workflows: WorkflowRegistry;
      queues: TaskQueues;
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

  /** Set once the CaseService exists (it needs this advancer too). */
  useChildStarter(starter: ChildStarter): void {
    this.startChild = starter;
  }

  /** Notes a state just committed (a new case) so its first event need not read it back. */
  remember(state: CaseState): void {
    this.known.delete(state.id);
    if (isTerminalCase(state.status)) return;
    if (this.known.size >= KNOWN_CASES) this.known.delete(this.known.keys().next().value as string);
    this.known.set(state.id, state);
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
    const { store, workflows, clock } = this.deps;
    const none = new Map<CaseEvent, ErrorInfo>();
    for (let round = 0; round < MAX_CONFLICTS; round++) {
      const known = this.known.get(caseId);
      // Forgotten until committed: if anything below fails, the next try reads the case afresh.
      this.known.delete(caseId);
      const record = known ?? (await store.getCase(caseId));
      if (!record) return { result: 'unknown-case', refused: none };
      const workflow = await workflows.compiled(record.workflow, record.version);
      const result = transition(workflow, record, events, clock.now(), this.budget);
      if (result.events.length === 0) {
        if (known) {
          // Perhaps applied by another process after the state remembered: ask the store.
          continue;
        }
        // The store's case folds every committed revision, so nothing new means applied already.
        // A duplicate is what a crash (or a failed projection) leaves to repeat: catch the case
        // document up, and if the first application died before enqueueing what it decided, this
        // is the moment to make good (re-adding existing job ids is a no-op).
        const current = (await store.catchUp(caseId)) ?? record;
        await this.carryOut(outstandingWork(workflow, current));
        return { result: 'duplicate', refused: none };
      }
      // The next steps' jobs go out as soon as the revision is ours (its history entry is in),
      // while the store may still be writing the case document's projection.
      let carried: Promise<void> | undefined;
      let outcome: 'committed' | 'conflict';
      try {
        outcome = await store.commitTransition(record, result.state, result.events, () => {
          carried = this.carryOut(result.commands);
          // Awaited below; if the document update fails first, the job's retry carries it out again.
          carried.catch(() => undefined);
        });
      } catch (error) {
        if (error instanceof CaseNotCommittableError) await this.markNotCommittable(workflow, record, error);
        throw error;
      }
      if (outcome === 'conflict') {
        // Another process committed this revision: read the case as it is now and decide again.
        this.deps.hooks?.onConflict?.();
        continue;
      }
      this.remember(result.state);
      this.deps.hooks?.onApplied?.(record, result.state, result.events);
      await (carried ?? this.carryOut(result.commands));
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
      if ((await this.deps.store.commitTransition(record, marked.state, marked.events)) === 'committed') this.remember(marked.state);
    } catch (markError) {
      this.deps.logger.error({ caseId: record.id, err: markError }, 'could not mark the case stuck either');
    }
  }

  /**
   * Does what a committed transition asked for. Messages to other cases (a child finished,
   * cancel the children, a child started) go through the results queue rather than being
   * applied here: durable, and no case ever waits on another case's mailbox.
   */
  async carryOut(commands: readonly Command[]): Promise<void> {
    const { queues, store, clock } = this.deps;
    const of = <K extends Command['type']>(type: K) => commands.filter((command): command is Command & { type: K } => command.type === type);
    const reports: StepReport[] = [];
    const steps = of('enqueueStep');
    if (steps.length > 0) await queues.enqueueSteps(steps);
    const timers = of('scheduleTimer');
    if (timers.length > 0) await queues.scheduleTimers(timers);
    const cancels = of('cancelJobs').flatMap((command) => command.jobs);
    if (cancels.length > 0) await queues.cancelJobs(cancels);
    for (const command of of('notifyParent')) reports.push({ caseId: command.caseId, event: command.event });
    for (const command of of('cancelChildren')) {
      for (const child of await store.findChildren(command.caseId)) {
        if (!isTerminalCase(child.status)) reports.push({ caseId: child.id, event: { type: 'cancel', reason: `parent cancelled: ${command.reason}`, at: clock.now() } });
      }
    }
    for (const command of of('startChild')) reports.push(...(await this.startChildCase(command)));
    if (reports.length > 0) await queues.report(reports);
  }

  private async startChildCase(command: Command & { type: 'startChild' }): Promise<StepReport[]> {
    const { stepId, run, caseId } = command.parent;
    const at = this.deps.clock.now();
    if (!this.startChild) throw new Error('no child starter: the engine is not fully wired');
    try {
      const { record } = await this.startChild(command);
      const reports: StepReport[] = [{ caseId, event: { type: 'childStarted', stepId, run, childId: record.id, at } }];
      // A child that was already there and already done: its own notice may have been lost.
      if (isTerminalCase(record.status)) {
        reports.push({
          caseId,
          event: {
            type: 'childFinished',
            stepId,
            run,
            childId: record.id,
            status: record.status as 'completed' | 'failed' | 'cancelled',
            at,
            ...(record.output === undefined ? {} : { output: record.output }),
            ...(record.error ? { error: record.error } : {}),
          },
        });
      }
      return reports;
    } catch (error) {
      if (!(error instanceof WorkfleetError) || error.retryable) throw error;
      // The child cannot start (no such workflow, bad input): the step fails with the reason.
      return [{ caseId, event: { type: 'childFinished', stepId, run, childId: 'none', status: 'failed', error: { code: error.code, message: error.message }, at } }];
    }
  }
}
