import { idempotencyConflictError, WorkfleetError } from '../core/errors.js';
import { childFinishedEvent } from '../core/machine/jobs.js';
import type { CompiledWorkflow } from '../core/definition.js';
import { isTerminalCase, type CaseState, type Command, type StepReport, type TraceEvent, type Transition } from '../core/state.js';
import { outstandingWork } from '../core/transition.js';
import type { Clock } from '../ports/clock.js';
import type { TaskQueues } from '../ports/queues.js';
import type { CaseSlots } from './case-slots.js';
import type { CaseRead, CaseRecord, CaseStore } from '../ports/store.js';
import type { WorkflowRegistry } from './workflows.js';

/** Open cases whose latest committed state this process remembers. Default 10,000. */
const KNOWN_CASES = 10_000;

/** A case about to be made: its first state, the trace of its creation, and what it asks for first. */
export interface NewCase {
  record: CaseRecord;
  events: readonly TraceEvent[];
  commands: readonly Command[];
}

/**
 * Makes the child case a sub-workflow step asks for, ready to be created: the request checked
 * against the child's workflow, keyed by the command's idempotency key (so that asking twice
 * finds one child). Nothing is written; the repository creates it.
 */
export interface ChildCases {
  prepareChild(command: Command & { type: 'startChild' }): Promise<NewCase>;
}

/**
 * What became of a commit: 'conflict' (another writer has the revision; nothing was written),
 * or committed, with the carrying out of its commands, which settles once they are all done.
 */
export type CommitOutcome = 'conflict' | { carriedOut: Promise<void> };

/**
 * The one place that knows how a case is written. A case is created by one insert, then its
 * first commands are carried out. A transition is committed by appending its history entry as
 * the next revision (the store's insert under `<case>:<revision>` decides between racing
 * writers, with no transaction); once the revision is ours, its commands are carried out while
 * the case document's projection is written, when the store wants one for it. What a crash
 * between those writes leaves undone is done again by whoever comes next: a duplicate report
 * (`repeat`), a replayed start (`create`), or the reconciler (`catchUp`, `carryOut`).
 *
 * It also remembers the last state this process committed per open case, so that the next
 * event for it need not read it back: the history insert decides every commit alone, so a
 * state another process has moved on from costs a conflict and a re-read, never a second
 * application.
 */
export class CaseRepository {
  /** Insertion order doubles as least-recently-committed order. */
  private readonly known = new Map<string, CaseState>();

  constructor(
    private readonly deps: {
      store: CaseStore;
      workflows: WorkflowRegistry;
      queues: TaskQueues;
      clock: Clock;
      children: ChildCases;
      /** Slots of workflows' concurrency keys; without it a keyed workflow's cases wait for ever (every process of a fleet has it). */
      slots?: Pick<CaseSlots, 'request' | 'release'>;
      /** Called with each case created (not with a replay's existing case). */
      onCreated?: (record: CaseRecord) => void;
    },
  ) {}

  /**
   * Inserts a new case and carries out its first commands. With an idempotency key that already
   * made a case: that case, after carrying out again the work it has under way (the first
   * request may have died, or failed, between storing the case and enqueueing its steps), or an
   * idempotencyConflictError if the key came with another request.
   */
  async create(start: NewCase): Promise<{ record: CaseRecord; created: boolean }> {
    const { store, workflows } = this.deps;
    const created = await store.createCase(start.record, start.events);
    if (!created.created) {
      const { existing } = created;
      // The existing case is in the same scope, so naming it tells its own producer only.
      if (existing.requestHash !== start.record.requestHash) throw idempotencyConflictError(start.record.idempotencyKey ?? '', existing.id);
      await this.carryOut(outstandingWork(await workflows.compiled(existing.workflow, existing.version), existing));
      return { record: existing, created: false };
    }
    this.remember(start.record);
    await this.carryOut(start.commands);
    this.deps.onCreated?.(start.record);
    return { record: start.record, created: true };
  }

  /** The state this process last committed for the case, if it remembers one. Forgotten until the next commit, so that if anything fails meanwhile the next try reads the case afresh. */
  recall(caseId: string): CaseState | undefined {
    const state = this.known.get(caseId);
    this.known.delete(caseId);
    return state;
  }

  /** Notes a state just committed so the case's next event need not read it back. */
  remember(state: CaseState): void {
    this.known.delete(state.id);
    if (isTerminalCase(state.status)) return;
    if (this.known.size >= KNOWN_CASES) this.known.delete(this.known.keys().next().value as string);
    this.known.set(state.id, state);
  }

  /** The case at its latest committed revision, as the store has it (every committed revision folded in). */
  read(caseId: string): Promise<CaseRead | undefined> {
    return this.deps.store.readCase(caseId);
  }

  /**
   * Commits `next`, decided on `previous`, as the next revision. Once the history entry is in,
   * the commands go out while the case document's projection is written (if the store wants
   * one): the next steps do not wait for it. A projection that fails rejects the commit,
   * committed all the same: the caller's job runs again and finds a duplicate, whose `repeat`
   * catches the document up (a case reopened by a retry, left "failed" in its document, would
   * otherwise escape every query for open cases).
   */
  async commit(previous: CaseState, next: Transition): Promise<CommitOutcome> {
    const { store } = this.deps;
    if ((await store.appendTransition(previous, next.state, next.events)) === 'conflict') return 'conflict';
    const carriedOut = this.carryOut(next.commands);
    // Awaited by the caller; if the projection fails first, the job's retry carries it out again.
    carriedOut.catch(() => undefined);
    if (store.projects(previous, next.state)) await store.writeProjection(previous, next.state);
    this.remember(next.state);
    return { carriedOut };
  }

  /**
   * A duplicate: `read` (a fresh read) already holds what the events asked for. What a crash
   * or a failed write after its commit can have left undone is done again: the case document
   * caught up if it lags, and the work the case has under way carried out (re-adding existing
   * job ids is a no-op).
   */
  async repeat(workflow: CompiledWorkflow, read: CaseRead): Promise<void> {
    await this.writeLaggingProjection(read);
    await this.carryOut(outstandingWork(workflow, read.record));
  }

  /** The case at its latest committed revision, after writing its document's projection if that lagged (the reconciler's lazy write). */
  async catchUp(caseId: string): Promise<CaseRecord | undefined> {
    const read = await this.deps.store.readCase(caseId);
    if (!read) return undefined;
    await this.writeLaggingProjection(read);
    return read.record;
  }

  private async writeLaggingProjection({ projected, record }: CaseRead): Promise<void> {
    if (projected.revision < record.revision) await this.deps.store.writeProjection(projected, record);
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
    const { slots } = this.deps;
    if (slots) reports.push(...(await slots.request(of('awaitSlot'))), ...(await slots.release(of('releaseSlot'))));
    if (reports.length > 0) await queues.report(reports);
  }

  private async startChildCase(command: Command & { type: 'startChild' }): Promise<StepReport[]> {
    const { stepId, run, caseId } = command.parent;
    const at = this.deps.clock.now();
    try {
      const { record } = await this.create(await this.deps.children.prepareChild(command));
      const reports: StepReport[] = [{ caseId, event: { type: 'childStarted', stepId, run, childId: record.id, at } }];
      // A child that was already there and already done: its own notice may have been lost.
      if (isTerminalCase(record.status)) reports.push({ caseId, event: childFinishedEvent(record, command.parent, at) });
      return reports;
    } catch (error) {
      if (!(error instanceof WorkfleetError) || error.retryable) throw error;
      // The child cannot start (no such workflow, bad input): the step fails with the reason.
      return [{ caseId, event: { type: 'childFinished', stepId, run, childId: 'none', status: 'failed', error: { code: error.code, message: error.message }, at } }];
    }
  }
}
