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
import { compileDebounce, debounceIssues } from './debounce.js';
import { parseDuration, type Duration } from './duration.js';
import { CASE_GROUP_PREFIX } from './limits.js';
import { DefinitionInvalidError, type ValidationIssue } from './errors.js';
import { expressionProblem } from './expressions.js';
import { checkInputSchema } from './input-schema-check.js';
import { compileInputSchema } from './input-schema.js';
import { referenceIssues } from './reference-checks.js';
import { findCycle } from './step-graph.js';
import { didYouMean } from './suggest.js';
import { pointerToPath } from './paths.js';
import { wellFormedParts, type WellFormedDefinition } from './well-formed.js';

export { pointerToPath };

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

function checkDuration(value: Duration | undefined, path: string, maxMs: number, issues: ValidationIssue[]): void {
  if (value === undefined) return;
  const ms = parseDuration(value);
  if (ms === undefined) issues.push({ path, message: `"${value}" is not a duration` });
  else if (ms > maxMs) issues.push({ path, message: `must be at most ${maxMs} ms` });
}

/** Checks of single fields and steps that a schema cannot express. */
function fieldIssues(definition: WellFormedDefinition, ids: ReadonlySet<string>): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
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
  if (definition.input !== undefined) issues.push(...checkInputSchema(definition.input).issues);
  issues.push(...debounceIssues(definition.debounce));

  const seen = new Set<string>();
  definition.steps.forEach((step, index) => {
    if (!step) return;
    const at = `steps[${index}]`;
    if (seen.has(step.id)) issues.push({ path: `${at}.id`, message: `duplicate step id "${step.id}"` });
    seen.add(step.id);
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
    checkDuration(step.rateLimit?.per, `${at}.rateLimit.per`, LIMITS.maxRateWindowMs, issues);
    const perMs = step.rateLimit ? parseDuration(step.rateLimit.per) : undefined;
    if (perMs !== undefined && perMs < LIMITS.minRateWindowMs) issues.push({ path: `${at}.rateLimit.per`, message: `must be at least ${LIMITS.minRateWindowMs} ms` });
    if (step.priority !== undefined && step.concurrency === undefined) {
      issues.push({ path: `${at}.priority`, message: 'priority orders the units waiting for a slot of a concurrency key: give the step a concurrency' });
    }
    // A step's key group (its own, else its breaker's or task's name) must not take the name space
    // of workflow-level keys: its units would be taken for cases, holding slots for a year.
    for (const limit of ['concurrency', 'rateLimit'] as const) {
      const group = step[limit] === undefined ? undefined : (step[limit]?.group ?? step.breaker ?? step.task);
      if (group?.startsWith(CASE_GROUP_PREFIX)) {
        issues.push({
          path: `${at}.${limit}${step[limit]?.group === undefined ? '' : '.group'}`,
          message: `the key group "${group}" starts with "${CASE_GROUP_PREFIX}", kept for workflow-level concurrency keys: name another group`,
        });
      }
    }
    // Only tasks run on workers; a sleep, a wait or a child case holds nothing a limit protects.
    for (const limit of ['concurrency', 'rateLimit', 'priority'] as const) {
      if (step[limit] !== undefined && step.task === undefined) issues.push({ path: `${at}.${limit}`, message: `${limit} limits the units of a task: give the step a task` });
    }
    for (const [path, expression] of [
      [`${at}.when`, step.when],
      [`${at}.repeat.while`, step.repeat?.while],
    ] as const) {
      const problem = expression === undefined ? undefined : expressionProblem(expression);
      if (problem) issues.push({ path, message: problem });
    }
    if (step.onFailure === 'compensate' && !definition.steps.some((other) => other?.compensate)) {
      issues.push({ path: `${at}.onFailure`, message: 'compensate needs steps with a compensate task to run' });
    }
  });
  return issues;
}

/** Most problems one answer lists; a document with more is far from right anyway. */
const MAX_ISSUES = 100;

/**
 * Every problem of a definition document, in one pass: the schema's, then those of the parts
 * that have the right shape (fields, conditions, the graph, references). Each once.
 */
function definitionIssues(document: unknown): ValidationIssue[] {
  const definition = wellFormedParts(document);
  const steps = definition.steps.filter((step): step is StepDefinition => step !== undefined);
  const ids = new Set(steps.map((step) => step.id));
  const cycle = findCycle(steps);
  const all = [
    ...schemaIssues(WorkflowDefinitionSchema, document),
    ...fieldIssues(definition, ids),
    ...(cycle ? [{ path: 'steps', message: `dependency cycle: ${cycle.join(' → ')}` }] : []),
    ...referenceIssues(definition, ids),
  ];
  const seen = new Set<string>();
  const unique = all.filter((issue) => {
    const key = `${issue.path}\u0000${issue.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  if (unique.length <= MAX_ISSUES) return unique;
  return [...unique.slice(0, MAX_ISSUES), { path: '', message: `and ${unique.length - MAX_ISSUES} more problems` }];
}

/**
 * Checks a definition document (parsed JSON or YAML) and returns it typed, or throws
 * DefinitionInvalidError listing every problem with its path.
 */
export function validateDefinition(document: unknown): WorkflowDefinition {
  const issues = definitionIssues(document);
  if (issues.length > 0) throw new DefinitionInvalidError(issues);
  return document as WorkflowDefinition;
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
      priority: step.priority ?? 0,
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
    if (step.concurrency) compiled.concurrency = { group: step.concurrency.group ?? compiled.breaker, key: step.concurrency.key, limit: step.concurrency.limit };
    if (step.rateLimit) {
      compiled.rateLimit = { group: step.rateLimit.group ?? compiled.breaker, key: step.rateLimit.key, max: step.rateLimit.max, perMs: msOr(step.rateLimit.per, LIMITS.minRateWindowMs) };
    }
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
    ...(definition.input === undefined ? {} : { inputSchema: compileInputSchema(definition.input) }),
    compensateOnCancel: definition.onCancel === 'compensate',
    ...(definition.concurrency === undefined
      ? {}
      : { concurrency: { group: `${CASE_GROUP_PREFIX}${definition.name}`, key: definition.concurrency.key, limit: definition.concurrency.limit, strategy: definition.concurrency.strategy ?? 'queue' } }),
    ...(definition.debounce === undefined ? {} : { debounce: compileDebounce(definition.debounce) }),
  };
}
