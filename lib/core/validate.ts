import { Value } from '@sinclair/typebox/value';
import {
  DEFAULTS,
  LIMITS,
  RESERVED_QUEUES,
  WorkflowDefinitionSchema,
  type BackoffPolicy,
  type CompiledStep,
  type StepKind,
  type TaskSettings,
  type CompiledWorkflow,
  type StepDefinition,
  type WorkflowDefinition,
} from './definition.js';
import { parseDuration, type Duration } from './duration.js';
import { DefinitionInvalidError, type ValidationIssue } from './errors.js';
import { expressionProblem } from './expressions.js';
import { collectReferences } from './template.js';

/** `/steps/2/after/0` → `steps[2].after[0]` */
export function pointerToPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(segment)) path += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) path += path ? `.${segment}` : segment;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path;
}

/**
 * Schema errors as issues, one per path. TypeBox reports every branch of a union; the first
 * message for a path is the most specific one, so later ones for the same path are dropped.
 */
export function schemaIssues(schema: Parameters<typeof Value.Errors>[0], value: unknown, limit = 20): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const seen = new Set<string>();
  for (const error of Value.Errors(schema, value)) {
    const path = pointerToPath(error.path);
    if ([...seen].some((known) => path.startsWith(known) && path !== known) || seen.has(path)) continue;
    seen.add(path);
    const kind = (error.schema as { 'x-kind'?: string })['x-kind'];
    const message =
      error.message === 'Unexpected property'
        ? `unknown field "${path.split(/[.[]/).pop() ?? ''}"`
        : kind === 'duration'
          ? `${JSON.stringify(error.value)} is not a duration: use milliseconds or text like "250ms", "30s", "5m", "1h30m"`
          : error.message;
    issues.push({ path, message: message.charAt(0).toLowerCase() + message.slice(1) });
    if (issues.length >= limit) break;
  }
  return issues;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

function didYouMean(name: string, known: Iterable<string>): string {
  let best: string | undefined;
  // Suggest only near misses: at most a third of the name wrong, and never the whole of it.
  let bestDistance = Math.min(Math.max(1, Math.floor(name.length / 3)), name.length - 1) + 1;
  for (const candidate of known) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}

/** Finds one dependency cycle, returned as the step ids along it, first repeated last. */
function findCycle(steps: readonly StepDefinition[]): string[] | undefined {
  const after = new Map(steps.map((step) => [step.id, step.after ?? []]));
  const state = new Map<string, 'visiting' | 'done'>();
  const trail: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...trail.slice(trail.indexOf(id)), id];
    state.set(id, 'visiting');
    trail.push(id);
    for (const dependency of after.get(id) ?? []) {
      if (!after.has(dependency)) continue;
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

function checkDuration(value: Duration | undefined, path: string, maxMs: number, issues: ValidationIssue[]): void {
  if (value === undefined) return;
  const ms = parseDuration(value);
  if (ms === undefined) issues.push({ path, message: `"${value}" is not a duration` });
  else if (ms > maxMs) issues.push({ path, message: `must be at most ${maxMs} ms` });
}

/** All ancestors of every step (transitive `after`), for reference checks. */
function ancestorsOf(steps: readonly StepDefinition[]): Map<string, Set<string>> {
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

function semanticIssues(definition: WorkflowDefinition): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const ids = new Set<string>();
  definition.steps.forEach((step, index) => {
    if (ids.has(step.id)) issues.push({ path: `steps[${index}].id`, message: `duplicate step id "${step.id}"` });
    ids.add(step.id);
  });
  const checkQueue = (queue: string | undefined, path: string) => {
    if (queue !== undefined && (RESERVED_QUEUES as readonly string[]).includes(queue)) {
      issues.push({ path, message: `"${queue}" is reserved for workfleet itself (reserved: ${RESERVED_QUEUES.join(', ')})` });
    }
  };
  checkQueue(definition.defaults?.queue, 'defaults.queue');
  checkDuration(definition.deadline, 'deadline', LIMITS.maxDeadlineMs, issues);
  checkDuration(definition.defaults?.timeout, 'defaults.timeout', LIMITS.maxTimeoutMs, issues);
  checkDuration(definition.defaults?.retry?.backoff?.delay, 'defaults.retry.backoff.delay', LIMITS.maxDeadlineMs, issues);
  checkDuration(definition.defaults?.retry?.backoff?.maxDelay, 'defaults.retry.backoff.maxDelay', LIMITS.maxDeadlineMs, issues);

  definition.steps.forEach((step, index) => {
    const at = `steps[${index}]`;
    (step.after ?? []).forEach((dependency, j) => {
      if (dependency === step.id) issues.push({ path: `${at}.after[${j}]`, message: `step "${step.id}" cannot wait for itself` });
      else if (!ids.has(dependency)) {
        issues.push({ path: `${at}.after[${j}]`, message: `unknown step "${dependency}"${didYouMean(dependency, ids)}` });
      }
    });
    const kinds = (['task', 'sleep', 'waitFor', 'workflow'] as const).filter((kind) => step[kind] !== undefined);
    if (kinds.length !== 1) {
      issues.push({ path: at, message: kinds.length === 0 ? 'give the step one of task, sleep, waitFor or workflow' : `a step does one thing: it has ${kinds.join(' and ')}` });
    }
    if (step.forEach && step.task === undefined) issues.push({ path: `${at}.forEach`, message: 'forEach runs a task for each item: give the step a task' });
    if (step.repeat && step.task === undefined) issues.push({ path: `${at}.repeat`, message: 'repeat loops over a task: give the step a task' });
    if (step.forEach && step.repeat) issues.push({ path: `${at}.repeat`, message: 'a step cannot both repeat and run for each item' });
    if (step.sleep && (step.sleep.for === undefined) === (step.sleep.until === undefined)) {
      issues.push({ path: `${at}.sleep`, message: 'give exactly one of for and until' });
    }
    checkQueue(step.queue, `${at}.queue`);
    checkQueue(step.compensate?.queue, `${at}.compensate.queue`);
    checkDuration(step.timeout, `${at}.timeout`, LIMITS.maxTimeoutMs, issues);
    checkDuration(step.retry?.backoff?.delay, `${at}.retry.backoff.delay`, LIMITS.maxDeadlineMs, issues);
    checkDuration(step.retry?.backoff?.maxDelay, `${at}.retry.backoff.maxDelay`, LIMITS.maxDeadlineMs, issues);
    checkDuration(step.compensate?.timeout, `${at}.compensate.timeout`, LIMITS.maxTimeoutMs, issues);
    checkDuration(step.sleep?.for, `${at}.sleep.for`, LIMITS.maxDeadlineMs, issues);
    checkDuration(step.waitFor?.timeout, `${at}.waitFor.timeout`, LIMITS.maxDeadlineMs, issues);
    for (const [path, expression] of [
      [`${at}.when`, step.when],
      [`${at}.repeat.while`, step.repeat?.while],
    ] as const) {
      const problem = expression === undefined ? undefined : expressionProblem(expression);
      if (problem) issues.push({ path, message: problem });
    }
    if (step.onFailure === 'compensate' && !definition.steps.some((other) => other.compensate)) {
      issues.push({ path: `${at}.onFailure`, message: 'compensate needs steps with a compensate task to run' });
    }
  });
  if (issues.length > 0) return issues;

  const cycle = findCycle(definition.steps);
  if (cycle) return [{ path: 'steps', message: `dependency cycle: ${cycle.join(' → ')}` }];

  const ancestors = ancestorsOf(definition.steps);
  definition.steps.forEach((step, index) => {
    const at = `steps[${index}]`;
    const templates: Array<[string, unknown, Set<string>]> = [
      [`${at}.input`, step.input, ancestors.get(step.id) ?? new Set()],
      // A compensation may read the step it undoes as well as everything before it.
      [`${at}.compensate.input`, step.compensate?.input, new Set([...(ancestors.get(step.id) ?? []), step.id])],
      [`${at}.forEach.items`, step.forEach?.items, ancestors.get(step.id) ?? new Set()],
      [`${at}.sleep.until`, step.sleep?.until, ancestors.get(step.id) ?? new Set()],
    ];
    for (const [where, template, readable] of templates) {
      if (template === undefined) continue;
      const { references, issues: malformed } = collectReferences(template, where);
      issues.push(...malformed);
      for (const { path, reference } of references) {
        if ((reference.root === 'item' || reference.root === 'index') && !(step.forEach && where === `${at}.input`)) {
          issues.push({ path, message: `"\${${reference.text}}" exists only in the input of a forEach step` });
        }
        if (reference.root !== 'steps' || reference.stepId === undefined) continue;
        if (!ids.has(reference.stepId)) {
          issues.push({ path, message: `unknown step "${reference.stepId}" in "\${${reference.text}}"${didYouMean(reference.stepId, ids)}` });
        } else if (!readable.has(reference.stepId)) {
          issues.push({
            path,
            message: `"\${${reference.text}}" reads step "${reference.stepId}", which is not guaranteed to have run: add it to after`,
          });
        }
      }
      if (where.endsWith('.forEach.items') && (references.length !== 1 || typeof template !== 'string' || !/^\$\{[^}]*\}$/.test(template))) {
        issues.push({ path: where, message: 'must be one reference to an array, like "${input.lines}"' });
      }
    }
  });
  const output = collectReferences(definition.output, 'output');
  issues.push(...output.issues);
  for (const { path, reference } of output.references) {
    if (reference.root === 'steps' && reference.stepId !== undefined && !ids.has(reference.stepId)) {
      issues.push({ path, message: `unknown step "${reference.stepId}" in "\${${reference.text}}"${didYouMean(reference.stepId, ids)}` });
    }
  }
  return issues;
}

/**
 * Checks a definition document (parsed JSON or YAML) and returns it typed, or throws
 * DefinitionInvalidError listing every problem with its path.
 */
export function validateDefinition(document: unknown): WorkflowDefinition {
  const issues = schemaIssues(WorkflowDefinitionSchema, document);
  if (issues.length > 0) throw new DefinitionInvalidError(issues);
  const definition = document as WorkflowDefinition;
  const semantic = semanticIssues(definition);
  if (semantic.length > 0) throw new DefinitionInvalidError(semantic);
  return definition;
}

function msOr(value: Duration | undefined, fallback: number): number {
  return value === undefined ? fallback : (parseDuration(value) ?? fallback);
}

function compileBackoff(step: StepDefinition['retry'], defaults: StepDefinition['retry']): BackoffPolicy {
  const backoff = { ...defaults?.backoff, ...step?.backoff };
  return {
    type: backoff.type ?? DEFAULTS.backoff.type,
    delayMs: msOr(backoff.delay, DEFAULTS.backoff.delayMs),
    maxDelayMs: msOr(backoff.maxDelay, DEFAULTS.backoff.maxDelayMs),
    jitter: backoff.jitter ?? DEFAULTS.backoff.jitter,
  };
}

/** Validates and compiles a definition for running: defaults applied, durations in ms, graph indexed. */
export function compileWorkflow(document: unknown, version: number): CompiledWorkflow {
  const definition = validateDefinition(document);
  const dependents = new Map<string, string[]>(definition.steps.map((step) => [step.id, []]));
  for (const step of definition.steps) for (const dependency of step.after ?? []) dependents.get(dependency)?.push(step.id);

  const defaults = definition.defaults;
  const settings = (task: string, own: { queue?: string; retry?: StepDefinition['retry']; timeout?: Duration; breaker?: string }): TaskSettings => ({
    task,
    queue: own.queue ?? defaults?.queue ?? DEFAULTS.queue,
    maxAttempts: own.retry?.maxAttempts ?? defaults?.retry?.maxAttempts ?? DEFAULTS.maxAttempts,
    backoff: compileBackoff(own.retry, defaults?.retry),
    timeoutMs: msOr(own.timeout ?? defaults?.timeout, DEFAULTS.timeoutMs),
    breaker: own.breaker ?? task,
  });
  const steps = new Map<string, CompiledStep>();
  for (const step of definition.steps) {
    const kind: StepKind = step.task !== undefined ? 'task' : step.sleep ? 'sleep' : step.waitFor ? 'waitFor' : 'workflow';
    const compiled: CompiledStep = {
      id: step.id,
      kind,
      ...settings(step.task ?? `workfleet.${kind}`, step),
      after: step.after ?? [],
      dependents: dependents.get(step.id) ?? [],
      // A step without an input gets an empty object, so that handlers can always read fields.
      input: step.input ?? {},
      onFailure: step.onFailure ?? 'fail',
    };
    if (step.when !== undefined) compiled.when = step.when;
    if (step.compensate) {
      compiled.compensate = {
        ...settings(step.compensate.task, { queue: step.compensate.queue ?? step.queue, retry: step.compensate.retry ?? step.retry, timeout: step.compensate.timeout ?? step.timeout }),
        input: step.compensate.input ?? null,
      };
    }
    if (step.sleep) {
      compiled.sleep = step.sleep.for !== undefined ? { forMs: msOr(step.sleep.for, 0) } : { until: step.sleep.until ?? '' };
    }
    if (step.waitFor) {
      compiled.waitFor = { signals: step.waitFor.signals, ...(step.waitFor.timeout === undefined ? {} : { timeoutMs: msOr(step.waitFor.timeout, 0) }) };
    }
    if (step.workflow) compiled.workflow = { name: step.workflow.name, ...(step.workflow.version === undefined ? {} : { version: step.workflow.version }) };
    if (step.forEach) {
      compiled.forEach = {
        items: step.forEach.items,
        concurrency: step.forEach.concurrency ?? DEFAULTS.forEachConcurrency,
        failure: step.forEach.failure ?? 'failFast',
      };
    }
    if (step.repeat) compiled.repeat = { while: step.repeat.while, maxIterations: step.repeat.maxIterations };
    steps.set(step.id, compiled);
  }

  const order: string[] = [];
  const placed = new Set<string>();
  const pending = [...definition.steps];
  while (pending.length > 0) {
    const index = pending.findIndex((step) => (step.after ?? []).every((dependency) => placed.has(dependency)));
    const [next] = pending.splice(index, 1);
    if (!next) break;
    order.push(next.id);
    placed.add(next.id);
  }

  return {
    name: definition.name,
    version,
    deadlineMs: msOr(definition.deadline, DEFAULTS.deadlineMs),
    steps,
    order,
    roots: definition.steps.filter((step) => (step.after ?? []).length === 0).map((step) => step.id),
    sinks: definition.steps.filter((step) => (dependents.get(step.id) ?? []).length === 0).map((step) => step.id),
    output: definition.output,
    compensateOnCancel: definition.onCancel === 'compensate',
  };
}
