import { DEFAULT_CASE_BUDGET, type CaseBudget } from './case-size.js';
import type { CompiledWorkflow } from './definition.js';
import { applyCaseEvent } from './machine/case-events.js';
import { Draft, runOf } from './machine/draft.js';
import { buildUnitJob, parentNotice } from './machine/jobs.js';
import { awaitSlot, queueForSlot, releaseSlot, slotOf } from './machine/slots.js';
import { settle } from './machine/settle.js';
import { applyUnitEvent, isUnitEvent } from './machine/unit-events.js';
import { isLive } from './machine/units.js';
import { applyWithinBudget } from './machine/within-budget.js';
import { isTerminalCase, type CaseEvent, type CaseState, type Command, type StepState, type Transition } from './state.js';
import { kindOf } from './steps/index.js';

/**
 * The engine's rules as pure functions: a state and events go in, the next state, the trace
 * events it adds and the commands to carry out come out. No clock, no ids, no I/O: `now` and
 * ids are arguments, so every rule is tested with plain data.
 *
 * This file only dispatches. A worker's report about a unit goes to the unit bookkeeping
 * (machine/unit-events.ts), a timer or a child case's news to the step's kind (steps/), anything
 * about the whole case to machine/case-events.ts; after every event the case settles
 * (machine/settle.ts), within its size budget (machine/within-budget.ts).
 *
 * Events may arrive twice or out of order (queues deliver at least once, several processes
 * report about one step). Each rule therefore checks that the event still fits the state and
 * otherwise changes nothing: applying a duplicate is a no-op.
 */

function apply(draft: Draft, event: CaseEvent): void {
  if (isUnitEvent(event)) return applyUnitEvent(draft, event);
  switch (event.type) {
    case 'timerFired':
    case 'childStarted':
    case 'childFinished': {
      const step = draft.workflow.steps.get(event.stepId);
      const state = draft.step(event.stepId);
      if (!step || !state || !draft.isOpen) return;
      if (event.type === 'timerFired' && (state.status !== 'waiting' || runOf(state) !== event.run)) return;
      return kindOf(step).event?.(draft, step, event);
    }
    default:
      return applyCaseEvent(draft, event);
  }
}

/** What the trace of a case a debounce burst made says of the burst: its key, how many starts it collapsed, when the first came. */
export interface DebouncedCreation {
  key: string;
  starts: number;
  firstAt: number;
}

/** Starts a case: all steps pending, then whatever is ready started (or skipped). */
export function createCase(
  workflow: CompiledWorkflow,
  init: { id: string; input: unknown; now: number; requestId?: string; parent?: CaseState['parent']; depth?: number; priority?: number; debounced?: DebouncedCreation },
): Transition {
  const steps: Record<string, StepState> = {};
  for (const id of workflow.order) steps[id] = { status: 'pending', attempts: 0, attemptsDone: 0 };
  const deadlineAt = init.now + workflow.deadlineMs;
  const state: CaseState = {
    id: init.id,
    workflow: workflow.name,
    version: workflow.version,
    status: 'running',
    input: init.input,
    steps,
    createdAt: init.now,
    updatedAt: init.now,
    deadlineAt,
    revision: 0,
    seq: 0,
    ...(init.requestId === undefined ? {} : { requestId: init.requestId }),
    ...(init.parent === undefined ? {} : { parent: init.parent }),
    ...(init.depth ? { depth: init.depth } : {}),
    ...(init.priority ? { priority: init.priority } : {}),
  };
  const draft = new Draft(workflow, state, init.now, kindOf);
  draft.emit('case.created', init.now, {
    workflow: workflow.name,
    version: workflow.version,
    deadlineAt,
    ...(init.requestId === undefined ? {} : { requestId: init.requestId }),
    ...(init.priority ? { priority: init.priority } : {}),
    ...(init.parent === undefined ? {} : { parent: init.parent.caseId, parentStep: init.parent.stepId }),
    ...(init.debounced === undefined ? {} : { debounced: init.debounced }),
  });
  const slot = slotOf(workflow, draft.state);
  if (slot) queueForSlot(draft, slot);
  settle(draft);
  const result = draft.finish();
  // A new case starts at revision 0: the first stored document is the one just built.
  return { ...result, state: { ...result.state, revision: 0 } };
}

/**
 * Applies events in order to a case. Returns the state unchanged, with no events, when none of
 * them changes anything (duplicates, reports about attempts already accounted for).
 */
export function transition(workflow: CompiledWorkflow, state: CaseState, events: readonly CaseEvent[], now: number, budget: CaseBudget = DEFAULT_CASE_BUDGET): Transition {
  const draft = new Draft(workflow, state, now, kindOf);
  let progressed = false;
  for (const event of events) {
    const before = draft.events.length;
    const refusals = draft.refused.length;
    applyWithinBudget(draft, event, budget, apply);
    if (event.type === 'stuck' || draft.events.length === before || draft.refused.length > refusals) continue;
    progressed = true;
    // Any progress clears the stuck mark: the case moved after all.
    if (draft.state.stuck) draft.patchCase({ stuck: undefined });
  }
  return draft.finish(progressed);
}

/**
 * The work a case should have under way right now: a job per scheduled or running unit, a
 * timer per waiting step, the start of a child not yet known to have started. Re-adding them is
 * harmless (ids are deterministic), so the shell re-issues them when a report turns out to be a
 * duplicate or a case looks stuck: a lost enqueue or a lost timer is made good.
 */
export function outstandingWork(workflow: CompiledWorkflow, state: CaseState): Command[] {
  // A finished child's notice to its parent: if the process that finished it died (or failed)
  // before sending it, a later duplicate report is the moment to send it again; the parent
  // applies it once.
  // Likewise its slot: given up again (a no-op if it was).
  if (isTerminalCase(state.status)) return [...(state.parent ? [parentNotice(state, state.parent)] : []), ...releaseSlot(state)];
  if (state.concurrency?.waiting) return [awaitSlot(state, state.concurrency)];
  const commands: Command[] = [];
  for (const id of workflow.order) {
    const step = workflow.steps.get(id);
    const stepState = state.steps[id];
    if (!step || !stepState) continue;
    if (isLive(stepState.compensation)) commands.push(buildUnitJob(state, step, { run: runOf(stepState), compensation: true }));
    commands.push(...kindOf(step).outstanding(state, step, stepState));
  }
  return commands;
}

/** The step jobs among the outstanding work (what the reconciler checks in the queues). */
export function outstandingJobs(workflow: CompiledWorkflow, state: CaseState): Array<Command & { type: 'enqueueStep' }> {
  return outstandingWork(workflow, state).filter((command): command is Command & { type: 'enqueueStep' } => command.type === 'enqueueStep');
}
