import type { ValidationIssue } from './errors.js';
import { expressionProblem, stepsReadBy } from './expressions.js';
import { ancestorsOf } from './step-graph.js';
import { didYouMean } from './suggest.js';
import { collectReferences } from './template.js';
import type { StepDefinition } from './definition.js';
import type { WellFormedDefinition } from './well-formed.js';

/**
 * References to steps, in templates (`${steps.a.output.x}`) and in conditions
 * (`steps.a.output.ok`), must name a step that is guaranteed to have run when they are read: one
 * upstream of the reader through `after`, directly or not. A compensation may also read the step
 * it undoes. The case output may read any step (it is built when the case ends).
 */
export function referenceIssues(definition: WellFormedDefinition, ids: ReadonlySet<string>): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const steps = definition.steps.filter((step): step is StepDefinition => step !== undefined);
  const ancestors = ancestorsOf(steps);
  const unknownStep = (stepId: string, text: string) => `unknown step "${stepId}" in "${text}"${didYouMean(stepId, ids)}`;
  const notUpstream = (stepId: string, text: string) => `"${text}" reads step "${stepId}", which is not guaranteed to have run: add it to after`;

  // A case's key is decided at its start: it can read only the start input.
  if (definition.concurrency?.key !== undefined) {
    const { references, issues: malformed } = collectReferences(definition.concurrency.key, 'concurrency.key');
    issues.push(...malformed);
    for (const { path, reference } of references) {
      if (reference.root !== 'input') issues.push({ path, message: `"\${${reference.text}}" is not known when a case starts: a case's key reads only its input` });
    }
  }

  definition.steps.forEach((step, index) => {
    if (!step) return;
    const at = `steps[${index}]`;
    const upstream = ancestors.get(step.id) ?? new Set<string>();
    const templates: Array<[string, unknown, ReadonlySet<string>]> = [
      [`${at}.input`, step.input, upstream],
      // A compensation may read the step it undoes as well as everything before it.
      [`${at}.compensate.input`, step.compensate?.input, new Set([...upstream, step.id])],
      [`${at}.forEach.items`, step.forEach?.items, upstream],
      [`${at}.sleep.until`, step.sleep?.until, upstream],
      [`${at}.concurrency.key`, step.concurrency?.key, upstream],
      [`${at}.rateLimit.key`, step.rateLimit?.key, upstream],
    ];
    for (const [where, template, readable] of templates) {
      if (template === undefined) continue;
      const { references, issues: malformed } = collectReferences(template, where);
      issues.push(...malformed);
      for (const { path, reference } of references) {
        if ((reference.root === 'item' || reference.root === 'index') && !(step.forEach && (where === `${at}.input` || where.endsWith('.key')))) {
          issues.push({ path, message: `"\${${reference.text}}" exists only in the input and limit keys of a forEach step` });
        }
        if (reference.root !== 'steps' || reference.stepId === undefined) continue;
        const text = `\${${reference.text}}`;
        if (!ids.has(reference.stepId)) issues.push({ path, message: unknownStep(reference.stepId, text) });
        else if (!readable.has(reference.stepId)) issues.push({ path, message: notUpstream(reference.stepId, text) });
      }
      if (where.endsWith('.forEach.items') && (references.length !== 1 || typeof template !== 'string' || !/^\$\{[^}]*\}$/.test(template))) {
        issues.push({ path: where, message: 'must be one reference to an array, like "${input.lines}"' });
      }
    }
    // Conditions read steps by the same rule; a condition that does not parse is reported by its own check.
    for (const [where, expression] of [
      [`${at}.when`, step.when],
      [`${at}.repeat.while`, step.repeat?.while],
    ] as const) {
      if (expression === undefined || expressionProblem(expression) !== undefined) continue;
      for (const stepId of stepsReadBy(expression)) {
        const text = `steps.${stepId}`;
        if (!ids.has(stepId)) issues.push({ path: where, message: unknownStep(stepId, text) });
        else if (!upstream.has(stepId)) issues.push({ path: where, message: notUpstream(stepId, text) });
      }
    }
  });

  const output = collectReferences(definition.output, 'output');
  issues.push(...output.issues);
  for (const { path, reference } of output.references) {
    if (reference.root === 'steps' && reference.stepId !== undefined && !ids.has(reference.stepId)) {
      issues.push({ path, message: unknownStep(reference.stepId, `\${${reference.text}}`) });
    }
  }
  return issues;
}
