import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from './duration.js';
import type { CompiledInputSchema } from './input-schema.js';

/**
 * The workflow definition language, version 1, as a JSON Schema (TypeBox builds the schema and
 * the TypeScript type from one source). The schema is published as `schemas/workflow.schema.json`
 * and at `GET /v1/schema/workflow`; `validateDefinition` adds the checks a schema cannot express
 * (unknown steps, cycles, references to steps that have not run yet).
 */

/** Names of queues workfleet uses itself; a step may not put its tasks there. */
export const RESERVED_QUEUES = ['cases', 'results', 'timers'] as const;

export const LIMITS = {
  /** Steps in one definition. */
  maxSteps: 500,
  /** Attempts of one step, the first included. */
  maxAttempts: 100,
  /** Longest step timeout: 24 hours. */
  maxTimeoutMs: 86_400_000,
  /** Longest case deadline: 365 days. */
  maxDeadlineMs: 365 * 86_400_000,
  /** Items one forEach step may fan out to. */
  maxForEachItems: 10_000,
  /** Sub-workflows nested in each other at most (a workflow may start itself, but not forever). */
  maxNesting: 10,
  /** Signals kept for steps that have not started waiting yet. */
  maxBufferedSignals: 100,
  /** Slots of one concurrency key. */
  maxConcurrencyLimit: 10_000,
  /** Attempts of one rate-limit key per window. */
  maxRateLimit: 100_000,
  /** Shortest and longest rate-limit window. */
  minRateWindowMs: 1_000,
  maxRateWindowMs: 86_400_000,
  /** Priorities of starts and steps lie in -maxPriority..maxPriority. */
  maxPriority: 100,
} as const;

export const DEFAULTS = {
  /** Queue of a step that names none. */
  queue: 'default',
  /** Attempts of a step, the first included. */
  maxAttempts: 3,
  /** Backoff between attempts. */
  backoff: { type: 'exponential', delayMs: 1_000, maxDelayMs: 300_000, jitter: 0.2 },
  /** Time one attempt of a step may take. */
  timeoutMs: 60_000,
  /** Time a whole case may take. */
  deadlineMs: 86_400_000,
  /** Items of a forEach step running at once. */
  forEachConcurrency: 10,
} as const;

/** A duration field: milliseconds or text. `x-kind` lets validation explain a bad value plainly. */
const Duration = (description: string) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    description: `${description} Milliseconds, or text such as "250ms", "30s", "5m", "1h30m", "2d".`,
    'x-kind': 'duration',
  });

const Name = (description: string, pattern: string, maxLength: number) => Type.String({ pattern, minLength: 1, maxLength, description });

export const STEP_ID_PATTERN = '^[A-Za-z][A-Za-z0-9_-]*$';
export const WORKFLOW_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_.-]*$';
const TASK_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_.:/-]*$';
const QUEUE_NAME_PATTERN = '^[a-z][a-z0-9_-]*$';
export const SIGNAL_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_.-]*$';

const Backoff = Type.Object(
  {
    type: Type.Optional(
      Type.Union([Type.Literal('fixed'), Type.Literal('exponential')], {
        description: 'fixed: the same delay each time; exponential: delay × 2^(attempt-1). Default exponential.',
      }),
    ),
    delay: Type.Optional(Duration('Delay before the second attempt. Default 1s.')),
    maxDelay: Type.Optional(Duration('Longest delay between attempts. Default 5m.')),
    jitter: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'Random share taken off each delay. Default 0.2.' })),
  },
  { additionalProperties: false },
);

const Retry = Type.Object(
  {
    maxAttempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: LIMITS.maxAttempts,
        description: 'Attempts in all, the first included; 1 means no retry. Default 3.',
      }),
    ),
    backoff: Type.Optional(Backoff),
  },
  { additionalProperties: false },
);

const StepDefaults = Type.Object(
  {
    queue: Type.Optional(Name('Queue for steps that name none. Default "default".', QUEUE_NAME_PATTERN, 64)),
    retry: Type.Optional(Retry),
    timeout: Type.Optional(Duration('Time one attempt may take. Default 60s.')),
  },
  { additionalProperties: false },
);

const Template = (description: string) => Type.Unknown({ description });

const Condition = (description: string) => Type.String({ minLength: 1, maxLength: 2_000, description: `${description} A CEL expression, e.g. "input.amount > 100 && steps.check.output.ok".` });

const CompensationSchema = Type.Object(
  {
    task: Name('Handler that undoes the step.', TASK_NAME_PATTERN, 128),
    input: Type.Optional(Template('Its input, by references like a step input; `${steps.<this step>.output}` reads what is to be undone.')),
    queue: Type.Optional(Name('Queue of the compensating task. Default: the step queue.', QUEUE_NAME_PATTERN, 64)),
    retry: Type.Optional(Retry),
    timeout: Type.Optional(Duration('Time one attempt of the compensation may take.')),
  },
  { additionalProperties: false },
);

/** Names a group of limits (concurrency, rate): steps naming the same group share it. */
const LIMIT_GROUP_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$';

const LimitKey = (description: string) =>
  Type.String({ minLength: 1, maxLength: 200, description: `${description} A reference such as "\${input.customerId}" (or "\${item.domain}" in a forEach step), or a fixed text.` });

const ConcurrencySchema = Type.Object(
  {
    key: LimitKey('The concurrency key: units with the same key share `limit` slots across the whole fleet.'),
    limit: Type.Integer({ minimum: 1, maximum: LIMITS.maxConcurrencyLimit, description: 'Units of one key running at once, at most.' }),
    group: Type.Optional(Name('The key space: steps naming the same group share slots by key. Default: the step breaker (the task name).', LIMIT_GROUP_PATTERN, 128)),
  },
  {
    additionalProperties: false,
    description:
      'At most `limit` units with the same rendered key run at once across the fleet; the others wait their turn in the key line (higher priority first, aging), and keys are served in turn. A slot is a lease: a crashed worker loses it.',
  },
);

const RateLimitSchema = Type.Object(
  {
    key: LimitKey('The rate-limit key: units with the same key share `max` starts per `per`.'),
    max: Type.Integer({ minimum: 1, maximum: LIMITS.maxRateLimit, description: 'Attempts of units with one key started within any window of `per`, at most.' }),
    per: Duration('The window, from 1s to 1d.'),
    group: Type.Optional(Name('The key space: steps naming the same group share the limit. Default: the step breaker (the task name).', LIMIT_GROUP_PATTERN, 128)),
  },
  { additionalProperties: false, description: 'An attempt over the limit is deferred to its reserved time without spending an attempt; the trace says so.' },
);

export const StepSchema = Type.Object(
  {
    id: Name('Unique within the workflow; other steps name it in `after` and in references.', STEP_ID_PATTERN, 64),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    after: Type.Optional(
      Type.Array(Type.String({ maxLength: 64 }), {
        uniqueItems: true,
        maxItems: LIMITS.maxSteps,
        description:
          'Steps that must be done (completed, skipped, or failed with onFailure: continue) before this one starts. ' + 'None: it starts with the case. If all of them were skipped, this step is skipped too.',
      }),
    ),
    when: Type.Optional(Condition('Run the step only if this holds when it is ready; otherwise it is skipped (and so are steps that wait only for skipped steps).')),
    task: Type.Optional(Name('Name of the handler that runs this step.', TASK_NAME_PATTERN, 128)),
    sleep: Type.Optional(
      Type.Object(
        {
          for: Type.Optional(Duration('How long to wait.')),
          until: Type.Optional(Type.String({ maxLength: 200, description: 'An ISO 8601 time to wait for, often a reference: "${input.sendAt}".' })),
        },
        { additionalProperties: false, description: 'Wait, then complete: a timer (a delayed job, no worker waits).' },
      ),
    ),
    waitFor: Type.Optional(
      Type.Object(
        {
          signals: Type.Array(Type.String({ pattern: SIGNAL_NAME_PATTERN, maxLength: 64 }), { minItems: 1, maxItems: 20, uniqueItems: true }),
          timeout: Type.Optional(Duration('How long to wait before completing with {"timedOut": true}. Default: forever (until the case deadline).')),
        },
        {
          additionalProperties: false,
          description:
            'Wait for one of these signals (POST /v1/cases/:id/signals/:name). Output: {"signal", "payload"}, or {"signal": null, "timedOut": true}. ' +
            'Steps after it choose a branch with `when` (deferred choice).',
        },
      ),
    ),
    workflow: Type.Optional(
      Type.Object(
        {
          name: Name('The workflow to run as a child case.', WORKFLOW_NAME_PATTERN, 100),
          version: Type.Optional(Type.Integer({ minimum: 1, description: 'Default: the latest when the step starts.' })),
        },
        { additionalProperties: false, description: 'Run a sub-workflow: `input` is the child case input, its output this step output.' },
      ),
    ),
    forEach: Type.Optional(
      Type.Object(
        {
          items: Type.String({ maxLength: 200, description: 'An array, by reference: "${input.lines}". The task runs once per item; `${item}` and `${index}` in `input` read it.' }),
          concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000, description: 'Items running at once. Default 10.' })),
          failure: Type.Optional(
            Type.Union([Type.Literal('failFast'), Type.Literal('collect')], {
              description: 'failFast (default): the first item that fails fails the step; collect: run all and list the failures.',
            }),
          ),
        },
        { additionalProperties: false, description: 'Run the task for each item. Output: {"items": [outputs in item order], "failed": [{"index", "error"}]}.' },
      ),
    ),
    repeat: Type.Optional(
      Type.Object(
        {
          while: Condition('Run the task again while this holds; it reads `output` (this iteration) and `iteration` (from 1).'),
          maxIterations: Type.Integer({ minimum: 1, maximum: 1_000, description: 'Stop after this many iterations even if the condition still holds.' }),
        },
        { additionalProperties: false, description: 'A structured loop over the task. The step output is the last iteration output.' },
      ),
    ),
    input: Type.Optional(
      Template(
        'The handler input (or the child case input): any JSON. A string "${input.x}" or "${steps.a.output.y}" is replaced by that value; ' +
          'inside a longer string it is interpolated as text. "$${" writes a literal "${".',
      ),
    ),
    queue: Type.Optional(Name('BullMQ queue the task goes to. Default from `defaults.queue`.', QUEUE_NAME_PATTERN, 64)),
    retry: Type.Optional(Retry),
    timeout: Type.Optional(Duration('Time one attempt may take before it is aborted. Default from `defaults.timeout`.')),
    breaker: Type.Optional(Name('Circuit-breaker key: steps naming the same key share one breaker (per worker process). Default: the task name.', '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$', 128)),
    onFailure: Type.Optional(
      Type.Union([Type.Literal('fail'), Type.Literal('continue'), Type.Literal('compensate')], {
        description:
          'fail (default): the case fails; continue: the step is failed and the case goes on as if it had finished; ' +
          'compensate: the compensations of completed steps run in reverse order, then the case fails.',
      }),
    ),
    compensate: Type.Optional(CompensationSchema),
    concurrency: Type.Optional(ConcurrencySchema),
    rateLimit: Type.Optional(RateLimitSchema),
    priority: Type.Optional(
      Type.Integer({
        minimum: -LIMITS.maxPriority,
        maximum: LIMITS.maxPriority,
        description: 'Added to the case priority: among units waiting for a slot of one concurrency key, higher goes first; each second of waiting counts as one level (aging). Default 0.',
      }),
    ),
  },
  { additionalProperties: false },
);

const WorkflowConcurrencySchema = Type.Object(
  {
    key: Type.String({ minLength: 1, maxLength: 200, description: 'The key, rendered from the start input: "${input.customerId}", or a fixed text.' }),
    limit: Type.Integer({ minimum: 1, maximum: LIMITS.maxConcurrencyLimit, description: 'Open cases of one key at once, at most.' }),
    strategy: Type.Optional(
      Type.Union([Type.Literal('queue'), Type.Literal('cancel-in-progress'), Type.Literal('cancel-newest')], {
        description:
          'When the key is full: queue (default) — the new case waits its turn (higher priority first); cancel-in-progress — the oldest open cases of the key are cancelled to make room (the latest start wins); cancel-newest — the new case is cancelled at once.',
      }),
    ),
  },
  { additionalProperties: false, description: 'At most `limit` open cases of this workflow with the same key; each case holds its slot from its start to its end.' },
);

/** `debounce:` (lib/core/debounce.ts checks what the schema cannot: references, bounds). */
const DebounceSchema = Type.Object(
  {
    key: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 500,
        description: 'Starts whose key renders the same (per producer) are one burst: a template over the start input, e.g. "${input.userId}". None: every start is.',
      }),
    ),
    for: Duration('Quiet time: the case starts this long after the last start of its burst. 1ms to 7d.'),
    maxWait: Type.Optional(Duration('The longest a burst may put its case off, from its first start, however often starts come. At least `for`, at most 7d. Default: no bound.')),
  },
  {
    additionalProperties: false,
    description: "Collapse a burst of starts into one case, started `for` after the last of them (or at `maxWait`) with the last one's input.",
  },
);

export const WorkflowDefinitionSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Ignored; lets editors find this schema.' })),
    name: Name('Workflow name; cases start it by this name.', WORKFLOW_NAME_PATTERN, 100),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    deadline: Type.Optional(Duration('Time a case may take before it fails with DEADLINE_EXCEEDED. Default 24h.')),
    defaults: Type.Optional(StepDefaults),
    concurrency: Type.Optional(WorkflowConcurrencySchema),
    onCancel: Type.Optional(
      Type.Union([Type.Literal('stop'), Type.Literal('compensate')], {
        description: 'What a cancel does unless the request says: stop (default) ends the case at once; compensate undoes completed steps first.',
      }),
    ),
    input: Type.Optional(
      Type.Object(
        {},
        {
          additionalProperties: true,
          description:
            'A JSON Schema (draft 2020-12) for the case input: a start whose input does not match it is refused with INPUT_INVALID and ' +
            'the path of each problem. Checked when the definition is applied; self-contained ($ref only inside it, no $id).',
        },
      ),
    ),
    debounce: Type.Optional(DebounceSchema),
    steps: Type.Array(StepSchema, { minItems: 1, maxItems: LIMITS.maxSteps }),
    output: Type.Optional(
      Type.Unknown({
        description: 'The case output, built by references like step inputs. Default: an object of the outputs of the steps no other step waits for.',
      }),
    ),
  },
  {
    additionalProperties: false,
    $id: 'https://workfleet.dev/schemas/workflow.schema.json',
    title: 'workfleet workflow definition',
  },
);

export type StepDefinition = Static<typeof StepSchema>;
export type WorkflowDefinition = Static<typeof WorkflowDefinitionSchema>;

/** A backoff policy with its defaults filled in, in milliseconds. */
export interface BackoffPolicy {
  type: 'fixed' | 'exponential';
  delayMs: number;
  maxDelayMs: number;
  jitter: number;
}

/** How a task runs: handler, queue, retries, timeout, breaker, with defaults applied. */
export interface TaskSettings {
  task: string;
  queue: string;
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  breaker: string;
}

export type StepKind = 'task' | 'sleep' | 'waitFor' | 'workflow';

/** A step as the engine runs it: defaults applied, durations in milliseconds. */
export interface CompiledStep extends TaskSettings {
  id: string;
  kind: StepKind;
  after: readonly string[];
  /** Steps that list this one in `after`. */
  dependents: readonly string[];
  input: unknown;
  when?: string;
  onFailure: 'fail' | 'continue' | 'compensate';
  compensate?: TaskSettings & { input: unknown };
  sleep?: { forMs?: number; until?: string };
  waitFor?: { signals: readonly string[]; timeoutMs?: number };
  workflow?: { name: string; version?: number };
  forEach?: { items: string; concurrency: number; failure: 'failFast' | 'collect' };
  repeat?: { while: string; maxIterations: number };
  /** Slots by key, shared by the steps of one group (compensations are not limited: they undo, and must not queue behind new work). */
  concurrency?: { group: string; key: string; limit: number };
  rateLimit?: { group: string; key: string; max: number; perMs: number };
  /** Added to the case priority for this step units. */
  priority: number;
}

/** A validated definition ready to run. */
export interface CompiledWorkflow {
  name: string;
  version: number;
  deadlineMs: number;
  steps: ReadonlyMap<string, CompiledStep>;
  /** Step ids in a dependency-respecting order. */
  order: readonly string[];
  /** Steps that wait for nothing: they start with the case. */
  roots: readonly string[];
  /** Steps that nothing waits for: their outputs make the default case output. */
  sinks: readonly string[];
  output: unknown;
  /** The declared `input:` schema, prepared once: a start's input must match it. */
  inputSchema?: CompiledInputSchema;
  /** Whether a cancel that does not say runs compensations. */
  compensateOnCancel: boolean;
  /** Open cases by key: their key group is `workflow:<name>`. */
  concurrency?: { group: string; key: string; limit: number; strategy: CaseConcurrencyStrategy };
  /** `debounce:`, durations in ms: starts are collapsed into one case per burst. */
  debounce?: CompiledDebounce;
}

/** A workflow's debounce: the key template (none: one burst for all starts), the quiet time and the bound. */
export interface CompiledDebounce {
  key?: string;
  forMs: number;
  maxWaitMs?: number;
}

export type CaseConcurrencyStrategy = 'queue' | 'cancel-in-progress' | 'cancel-newest';
