import { limitKeyText } from './machine/jobs.js';
import type { CompiledDebounce, WorkflowDefinition } from './definition.js';
import { parseDuration } from './duration.js';
import { ErrorCode } from './error-codes.js';
import { WorkfleetError, type ValidationIssue } from './errors.js';
import { collectReferences, renderTemplate } from './template.js';
import { isWellFormed } from './text.js';

/**
 * Debounced starts (`debounce:` in a definition): a burst of starts with the same key, each
 * within `for` of the one before, makes ONE case, with the last start's request, `for` after the
 * last start, or `maxWait` after the first, whichever is earlier (the trailing edge, as Inngest's
 * `debounce: { key, period, timeout }`). What is pure lives here: checking the definition, its
 * compiled form, a start's key and the time its burst closes. Bursts themselves are kept where
 * every replica sees them (lib/ports/debounce.ts).
 */

const DEBOUNCE_LIMITS = {
  /** Longest quiet time and longest bound: 7 days (a burst's state lives in Redis meanwhile). */
  maxMs: 7 * 86_400_000,
  /** Characters of a rendered key, as of an idempotency key. */
  maxKeyLength: 200,
} as const;

type DebounceDefinition = NonNullable<WorkflowDefinition['debounce']>;

/**
 * What the schema cannot say about `debounce:`: its key reads the start's input only, and its
 * durations fit. Given the fields of the right shape only (lib/core/well-formed.ts).
 */
export function debounceIssues(debounce: Partial<DebounceDefinition> | undefined): ValidationIssue[] {
  if (debounce === undefined) return [];
  const issues: ValidationIssue[] = [];
  if (debounce.key !== undefined) {
    const { references, issues: malformed } = collectReferences(debounce.key, 'debounce.key');
    issues.push(...malformed);
    for (const { path, reference } of references) {
      if (reference.root !== 'input') issues.push({ path, message: `"\${${reference.text}}": a debounce key is made before the case exists, so it reads the start's input only (\${input.…})` });
    }
  }
  const forMs = debounce.for === undefined ? undefined : parseDuration(debounce.for);
  const maxWaitMs = debounce.maxWait === undefined ? undefined : parseDuration(debounce.maxWait);
  const days = `${DEBOUNCE_LIMITS.maxMs / 86_400_000}d`;
  if (forMs !== undefined && forMs < 1) issues.push({ path: 'debounce.for', message: 'must be at least 1ms' });
  if (forMs !== undefined && forMs > DEBOUNCE_LIMITS.maxMs) issues.push({ path: 'debounce.for', message: `must be at most ${days}` });
  if (maxWaitMs !== undefined && maxWaitMs > DEBOUNCE_LIMITS.maxMs) issues.push({ path: 'debounce.maxWait', message: `must be at most ${days}` });
  if (forMs !== undefined && maxWaitMs !== undefined && maxWaitMs < forMs) {
    issues.push({ path: 'debounce.maxWait', message: `must be at least debounce.for (${String(debounce.for)}): a bound shorter than the quiet time would start every burst at the bound` });
  }
  return issues;
}

/** `debounce:` of a valid definition, durations in milliseconds. */
export function compileDebounce(debounce: DebounceDefinition): CompiledDebounce {
  const maxWaitMs = debounce.maxWait === undefined ? undefined : parseDuration(debounce.maxWait);
  return {
    ...(debounce.key === undefined ? {} : { key: debounce.key }),
    forMs: parseDuration(debounce.for) ?? 0,
    ...(maxWaitMs === undefined ? {} : { maxWaitMs }),
  };
}

function keyInvalid(message: string, details: Record<string, unknown>): WorkfleetError {
  return new WorkfleetError(ErrorCode.debounceKeyInvalid, message, { details });
}

/**
 * The debounce key of a start: `debounce.key` rendered against its input ("" without a key: one
 * burst for every start). Refused with DEBOUNCE_KEY_INVALID when a reference reads nothing
 * (missing, null or ""): such starts would all fall into one burst by accident, and one of them
 * would swallow the others. A value that is not text becomes its canonical JSON.
 */
export function debounceKeyOf(debounce: CompiledDebounce, workflow: { name: string; version: number }, input: unknown): string {
  if (debounce.key === undefined) return '';
  const scope = { input, stepOutputs: {}, case: { id: '', workflow: workflow.name, version: workflow.version } };
  for (const { reference } of collectReferences(debounce.key, 'debounce.key').references) {
    const value = renderTemplate(`\${${reference.text}}`, scope);
    if (value === null || value === '') {
      throw keyInvalid(`workflow ${workflow.name} debounces starts by "${debounce.key}", and this start's \${${reference.text}} is ${value === null ? 'missing or null' : 'empty'}`, {
        key: debounce.key,
        reference: reference.text,
      });
    }
  }
  const rendered = renderTemplate(debounce.key, scope);
  const key = limitKeyText(rendered);
  if (key.length > DEBOUNCE_LIMITS.maxKeyLength) {
    throw keyInvalid(`workflow ${workflow.name} debounces starts by "${debounce.key}", which this start renders to ${key.length} characters (at most ${DEBOUNCE_LIMITS.maxKeyLength})`, {
      key: debounce.key,
      length: key.length,
    });
  }
  // Lone surrogates: UTF-8 would make different keys one (as for idempotency keys, lib/core/text.ts).
  if (!isWellFormed(key)) throw keyInvalid(`workflow ${workflow.name} debounces starts by "${debounce.key}", which this start renders to text with a lone surrogate`, { key: debounce.key });
  return key;
}

/**
 * When a burst closes: `forMs` after its latest start (`now`), but never later than `maxWaitMs`
 * after its first (`firstAt`). The Redis adapter's script applies the same rule.
 */
export function burstDueAt(debounce: Pick<CompiledDebounce, 'forMs' | 'maxWaitMs'>, firstAt: number, now: number): number {
  const quiet = now + debounce.forMs;
  return debounce.maxWaitMs === undefined ? quiet : Math.min(quiet, firstAt + debounce.maxWaitMs);
}
