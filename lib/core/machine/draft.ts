import type { CompiledStep, CompiledWorkflow } from '../definition.js';
import { ConditionSession } from '../condition-budget.js';
import { isTerminalCase, type CaseEvent, type CaseState, type Command, type ErrorInfo, type StepState, type TraceEvent, type TraceType, type Transition } from '../state.js';
import type { StepRules } from '../steps/kind.js';

/**
 * A transition being built, change by change: the state so far, the trace events it adds (each
 * bumps the state's seq) and the commands the shell carries out once it is committed. Step
 * kinds reach each other only through it (`kindOf`), so no rule module imports the registry.
 */
export class Draft {
  state: CaseState;
  readonly events: TraceEvent[] = [];
  readonly commands: Command[] = [];
  /** The conditions this transition evaluates share a budget (and the case data converted for them). */
  readonly conditions = new ConditionSession();
  readonly conditionViews = new WeakMap<StepState, { output: unknown; status: string }>();
  /** Events refused (a signal that does not fit), each with why: the door that sent one answers with it. */
  readonly refused: Array<{ event: CaseEvent; error: ErrorInfo }> = [];

  constructor(
    readonly workflow: CompiledWorkflow,
    state: CaseState,
    readonly now: number,
    readonly kindOf: (step: CompiledStep) => StepRules,
  ) {
    this.state = state;
  }

  emit(type: TraceType, at: number, data: Record<string, unknown> = {}, stepId?: string): void {
    const seq = this.state.seq + 1;
    this.state = { ...this.state, seq };
    this.events.push(stepId === undefined ? { seq, type, at, data } : { seq, type, stepId, at, data });
  }

  step(stepId: string): StepState | undefined {
    return this.state.steps[stepId];
  }

  /** The state of a step the workflow has (every step has one from the case's creation on). */
  stepState(stepId: string): StepState {
    const state = this.state.steps[stepId];
    if (!state) throw new Error(`case ${this.state.id} has no state for step "${stepId}"`);
    return state;
  }

  /** A step's state as an activation starts it: its run kept, everything of an earlier activation gone. */
  freshStep(stepId: string): StepState {
    const run = runOf(this.step(stepId));
    return { status: 'scheduled', attempts: 0, attemptsDone: 0, scheduledAt: this.now, ...(run ? { run } : {}) };
  }

  setStep(stepId: string, next: StepState): void {
    this.state = { ...this.state, steps: { ...this.state.steps, [stepId]: next } };
  }

  patchCase(patch: Partial<CaseState>): void {
    this.state = { ...this.state, ...patch };
  }

  get isOpen(): boolean {
    return !isTerminalCase(this.state.status);
  }

  /** Where to come back to when what follows must be undone (it would take the case past its budget). */
  checkpoint(): { state: CaseState; events: number; commands: number; refused: number } {
    return { state: this.state, events: this.events.length, commands: this.commands.length, refused: this.refused.length };
  }

  restore(point: ReturnType<Draft['checkpoint']>): void {
    this.state = point.state;
    this.events.length = point.events;
    this.commands.length = point.commands;
    this.refused.length = point.refused;
  }

  /** `progressed` false: only a remark about the case (stuck), so its last progress time stands. */
  finish(progressed = true): Transition {
    if (this.events.length === 0) return { state: this.state, events: [], commands: [] };
    const updatedAt = progressed ? this.now : this.state.updatedAt;
    const refused = this.refused.length > 0 ? { refused: this.refused } : {};
    return { state: { ...this.state, revision: this.state.revision + 1, updatedAt }, events: this.events, commands: this.commands, ...refused };
  }
}

export function without<T extends object, K extends keyof T>(value: T, ...keys: K[]): Omit<T, K> {
  const copy = { ...value };
  for (const key of keys) delete copy[key];
  return copy;
}

export const runOf = (step: StepState | undefined): number => step?.run ?? 0;
