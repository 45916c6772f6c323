import type { CompiledWorkflow } from '../definition.js';
import type { CaseState, Command } from '../state.js';
import { renderTemplate } from '../template.js';
import { scope } from './data.js';
import type { Draft } from './draft.js';
import { limitKeyText } from './jobs.js';

/**
 * A case's slot of its workflow's concurrency key (docs/LANGUAGE.md, "Concurrency keys"): a
 * case of a keyed workflow starts waiting for it, and none of its steps starts until the shell
 * reports it admitted; it gives the slot up when it ends. What the key's strategy does when it
 * is full (queue, cancel the oldest, cancel the newest) is the shell's to carry out.
 */

/** The slot a new case of `workflow` asks for: its key rendered from the input. */
export function slotOf(workflow: CompiledWorkflow, state: CaseState): CaseState['concurrency'] {
  const concurrency = workflow.concurrency;
  if (!concurrency) return undefined;
  const key = limitKeyText(renderTemplate(concurrency.key, scope(state)));
  return { group: concurrency.group, key, limit: concurrency.limit, strategy: concurrency.strategy, waiting: true };
}

/** The command that asks for the case's slot. */
export function awaitSlot(state: CaseState, slot: NonNullable<CaseState['concurrency']>): Command & { type: 'awaitSlot' } {
  const { group, key, limit, strategy } = slot;
  return { type: 'awaitSlot', caseId: state.id, group, key, limit, strategy, priority: state.priority ?? 0 };
}

/** Puts the case in its key's line: recorded in the trace, the slot asked for. */
export function queueForSlot(draft: Draft, slot: NonNullable<CaseState['concurrency']>): void {
  draft.patchCase({ concurrency: slot });
  draft.emit('case.queued', draft.now, { group: slot.group, key: slot.key, limit: slot.limit, strategy: slot.strategy });
  draft.commands.push(awaitSlot(draft.state, slot));
}

/** The command that gives an ended case's slot up. */
export function releaseSlot(state: CaseState): Array<Command & { type: 'releaseSlot' }> {
  return state.concurrency ? [{ type: 'releaseSlot', group: state.concurrency.group, caseId: state.id }] : [];
}
