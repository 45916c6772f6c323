import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from './duration.js';

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
} as const;

/** A duration field: milliseconds or text. `x-kind` lets validation explain a bad value plainly. */
const Duration = (description: string) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    description: `${description} Milliseconds, or text such as "250ms", "30s", "5m", "1h30m", "2d".`,
    'x-kind': 'duration',
  });

const Name = (description: string, pattern: string, maxLength: number) =>
  Type.String({ pattern, minLength: 1, maxLength, description });

export const STEP_ID_PATTERN = '^[A-Za-z][A-Za-z0-9_-]*$';
export const WORKFLOW_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_.-]*$';
export const TASK_NAME_PATTERN = '^[A-Za-z][A-Za-z0-9_.:/-]*$';
export const QUEUE_NAME_PATTERN = '^[a-z][a-z0-9_-]*$';

const Backoff = Type.Object(
  {
    type: Type.Optional(
      Type.Union([Type.Literal('fixed'), Type.Literal('exponential')], {
        description: 'fixed: the same delay each time; exponential: delay × 2^(attempt-1). Default exponential.',
      }),
    ),
    delay: Type.Optional(Duration('Delay before the second attempt. Default 1s.')),
    maxDelay: Type.Optional(Duration('Longest delay between attempts. Default 5m.')),
    jitter: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: 'Random share taken off each delay. Default 0.2.' }),
    ),
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

export const StepSchema = Type.Object(
  {
    id: Name('Unique within the workflow; other steps name it in `after` and in references.', STEP_ID_PATTERN, 64),
    task: Name('Name of the handler that runs this step.', TASK_NAME_PATTERN, 128),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
    after: Type.Optional(
      Type.Array(Type.String({ maxLength: 64 }), {
        uniqueItems: true,
        maxItems: LIMITS.maxSteps,
        description: 'Steps that must complete before this one starts. None: it starts with the case.',
      }),
    ),
    input: Type.Optional(
      Type.Unknown({
        description:
          'The handler input: any JSON. A string "${input.x}" or "${steps.a.output.y}" is replaced by that value; ' +
          'inside a longer string it is interpolated as text. "$${" writes a literal "${".',
      }),
    ),
    queue: Type.Optional(Name('BullMQ queue the task goes to. Default from `defaults.queue`.', QUEUE_NAME_PATTERN, 64)),
    retry: Type.Optional(Retry),
    timeout: Type.Optional(Duration('Time one attempt may take before it is aborted. Default from `defaults.timeout`.')),
    breaker: Type.Optional(
      Name(
        'Circuit-breaker key: steps naming the same key share one breaker (per worker process). Default: the task name.',
        '^[A-Za-z0-9][A-Za-z0-9_.:/-]*$',
        128,
      ),
    ),
  },
  { additionalProperties: false },
);

export const WorkflowDefinitionSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String({ description: 'Ignored; lets editors find this schema.' })),
    name: Name('Workflow name; cases start it by this name.', WORKFLOW_NAME_PATTERN, 100),
    description: Type.Optional(Type.String({ maxLength: 4000 })),
    deadline: Type.Optional(Duration('Time a case may take before it fails with DEADLINE_EXCEEDED. Default 24h.')),
    defaults: Type.Optional(StepDefaults),
    steps: Type.Array(StepSchema, { minItems: 1, maxItems: LIMITS.maxSteps }),
    output: Type.Optional(
      Type.Unknown({
        description:
          'The case output, built by references like step inputs. Default: an object of the outputs of the steps no other step waits for.',
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

/** A step as the engine runs it: defaults applied, durations in milliseconds. */
export interface CompiledStep {
  id: string;
  task: string;
  after: readonly string[];
  /** Steps that list this one in `after`. */
  dependents: readonly string[];
  input: unknown;
  queue: string;
  maxAttempts: number;
  backoff: BackoffPolicy;
  timeoutMs: number;
  breaker: string;
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
}
