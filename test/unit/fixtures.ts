import { expect } from 'vitest';
import type { CompiledWorkflow } from '../../lib/core/definition.js';
import { DefinitionInvalidError } from '../../lib/core/errors.js';
import type { CaseState } from '../../lib/core/state.js';
import { createCase } from '../../lib/core/transition.js';
import { compileWorkflow, validateDefinition } from '../../lib/core/validate.js';

/** The issues validation reports for a document, as "path: message" strings; none when it is valid. */
export function problems(document: unknown): string[] {
  try {
    validateDefinition(document);
  } catch (error) {
    expect(error).toBeInstanceOf(DefinitionInvalidError);
    expect((error as DefinitionInvalidError).code).toBe('DEFINITION_INVALID');
    return (error as DefinitionInvalidError).issues.map((issue) => (issue.path ? `${issue.path}: ${issue.message}` : issue.message));
  }
  return [];
}

/** reserve ∥ charge → ship: a parallel split and a synchronizing join. */
export const orderDefinition = {
  name: 'order',
  steps: [
    { id: 'reserve', task: 'inventory.reserve', input: { sku: '${input.sku}' } },
    { id: 'charge', task: 'payments.charge', input: { amount: '${input.amount}' }, retry: { maxAttempts: 2 } },
    {
      id: 'ship',
      task: 'shipping.ship',
      after: ['reserve', 'charge'],
      input: { reservation: '${steps.reserve.output.id}', note: 'receipt ${steps.charge.output.receipt}' },
    },
  ],
};

export const order: CompiledWorkflow = compileWorkflow(orderDefinition, 1);

export const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

export function startedOrder(input: Record<string, unknown> = { sku: 'book', amount: 25 }): CaseState {
  return createCase(order, { id: 'case-1', input, now: T0 }).state;
}
