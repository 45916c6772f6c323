import type { CompiledStep } from '../definition.js';
import { forEachStep } from './for-each.js';
import type { StepRules } from './kind.js';
import { repeatStep } from './repeat.js';
import { sleepStep } from './sleep.js';
import { subWorkflowStep } from './sub-workflow.js';
import { taskStep } from './task.js';
import { waitForStep } from './wait-for.js';

/** The kind whose rules a step follows: a task step is a plain task, a forEach or a repeat. */
export function kindOf(step: CompiledStep): StepRules {
  switch (step.kind) {
    case 'task':
      return step.forEach ? forEachStep : step.repeat ? repeatStep : taskStep;
    case 'sleep':
      return sleepStep;
    case 'waitFor':
      return waitForStep;
    case 'workflow':
      return subWorkflowStep;
  }
}
