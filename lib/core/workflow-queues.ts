import type { CompiledWorkflow } from './definition.js';

/** The queues a workflow's tasks (and their compensations) go to, each with the steps that use it. */
function taskQueues(workflow: CompiledWorkflow): Map<string, string[]> {
  const queues = new Map<string, string[]>();
  const add = (queue: string, stepId: string) => {
    const steps = queues.get(queue) ?? [];
    if (!steps.includes(stepId)) steps.push(stepId);
    queues.set(queue, steps);
  };
  for (const step of workflow.steps.values()) {
    if (step.kind === 'task') add(step.queue, step.id);
    if (step.compensate) add(step.compensate.queue, step.id);
  }
  return queues;
}

/** A task queue that no live worker consumes: its steps would wait until one starts. */
export interface UnservedQueue {
  queue: string;
  steps: string[];
}

export function unservedQueues(workflow: CompiledWorkflow, servedQueues: ReadonlySet<string>): UnservedQueue[] {
  return [...taskQueues(workflow)].filter(([queue]) => !servedQueues.has(queue)).map(([queue, steps]) => ({ queue, steps }));
}
