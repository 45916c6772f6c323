import type { StepDefinition } from './definition.js';

/** The `after` graph of a definition's steps, as validation needs it. */
type GraphStep = Pick<StepDefinition, 'id' | 'after'>;

/** Finds one dependency cycle, returned as the step ids along it, first repeated last. */
export function findCycle(steps: readonly GraphStep[]): string[] | undefined {
  const after = new Map(steps.map((step) => [step.id, step.after ?? []]));
  const state = new Map<string, 'visiting' | 'done'>();
  const trail: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...trail.slice(trail.indexOf(id)), id];
    state.set(id, 'visiting');
    trail.push(id);
    for (const dependency of after.get(id) ?? []) {
      // A step waiting for itself is reported as such; unknown steps are reported by name.
      if (!after.has(dependency) || dependency === id) continue;
      const cycle = visit(dependency);
      if (cycle) return cycle;
    }
    trail.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const step of steps) {
    const cycle = visit(step.id);
    if (cycle) return cycle.reverse();
  }
  return undefined;
}

/** All ancestors of every step (transitive `after`), for reference checks. */
export function ancestorsOf(steps: readonly GraphStep[]): Map<string, Set<string>> {
  const after = new Map(steps.map((step) => [step.id, step.after ?? []]));
  const memo = new Map<string, Set<string>>();
  const walk = (id: string): Set<string> => {
    const known = memo.get(id);
    if (known) return known;
    const result = new Set<string>();
    memo.set(id, result);
    for (const dependency of after.get(id) ?? []) {
      result.add(dependency);
      for (const ancestor of walk(dependency)) result.add(ancestor);
    }
    return result;
  };
  for (const step of steps) walk(step.id);
  return memo;
}
