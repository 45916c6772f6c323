import { Value } from '@sinclair/typebox/value';
import { StepSchema, WorkflowDefinitionSchema, type StepDefinition, type WorkflowDefinition } from './definition.js';

/**
 * The parts of a definition document that have the right shape. Validation reports schema
 * problems and then runs its other checks (references, conditions, cycles) on these parts, so
 * that one pass finds every problem: a field with a wrong shape is left out here (its schema
 * problem is reported already) instead of stopping the checks of everything else.
 */
export interface WellFormedDefinition extends Partial<Omit<WorkflowDefinition, 'steps' | 'debounce'>> {
  /** By the index the step has in the document; undefined where a step has no string id. */
  steps: Array<StepDefinition | undefined>;
  /** Its fields of the right shape, so that a bad `for` does not hide a bad `key`. */
  debounce?: Partial<NonNullable<WorkflowDefinition['debounce']>>;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Keeps each field whose value passes its own schema. */
function wellFormedFields(value: Record<string, unknown>, properties: Record<string, Parameters<typeof Value.Check>[0]>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const schema = properties[key];
    if (schema !== undefined && Value.Check(schema, item)) kept[key] = item;
  }
  return kept;
}

function wellFormedStep(step: unknown): StepDefinition | undefined {
  // Without an id a step cannot be in the graph; with a malformed one (`a.b`) it still can.
  if (!isObject(step) || typeof step.id !== 'string') return undefined;
  const kept = wellFormedFields(step, StepSchema.properties);
  kept.id = step.id;
  if (Array.isArray(step.after)) kept.after = step.after.filter((item): item is string => typeof item === 'string');
  return kept as StepDefinition;
}

export function wellFormedParts(document: unknown): WellFormedDefinition {
  if (!isObject(document)) return { steps: [] };
  const { steps, ...rest } = document;
  const kept = wellFormedFields(rest, WorkflowDefinitionSchema.properties) as Omit<WellFormedDefinition, 'steps'>;
  if (isObject(rest.debounce)) kept.debounce = wellFormedFields(rest.debounce, WorkflowDefinitionSchema.properties.debounce.properties);
  return { ...kept, steps: Array.isArray(steps) ? steps.map(wellFormedStep) : [] };
}
