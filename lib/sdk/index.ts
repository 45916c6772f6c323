/**
 * What a handlers module imports from workfleet: the handler types and the error that stops
 * retries. A handlers module's default export maps task names to handlers:
 *
 * ```ts
 * import { defineHandlers, NonRetryableError } from 'workfleet';
 * export default defineHandlers({
 *   'payments.charge': async (input, ctx) => {
 *     const receipt = await payments.charge(input, { idempotencyKey: ctx.idempotencyKey, signal: ctx.signal });
 *     return { receipt: receipt.id };
 *   },
 * });
 * ```
 */
import { ErrorCode } from '../core/error-codes.js';

/** A pino-compatible logger, bound to the case and step. */
export interface TaskLogger {
  trace(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface TaskContext {
  caseId: string;
  stepId: string;
  workflow: string;
  version: number;
  /** 1 for the first attempt. */
  attempt: number;
  maxAttempts: number;
  /** In a forEach step: the item's position (the item itself is in the input, as the step says). */
  index?: number;
  /** In a repeat step: the iteration, from 1. */
  iteration?: number;
  /** True when this call undoes the step (its compensation) rather than does it. */
  compensation: boolean;
  /**
   * The same for every attempt of this step of this case: pass it to the systems you call
   * (payment providers, your own database) so that a retried effect happens once.
   */
  idempotencyKey: string;
  logger: TaskLogger;
  /** Aborted when the attempt times out, the case is cancelled, or the worker shuts down. */
  signal: AbortSignal;
  /** Reports progress (a number or an object), visible in Bull Board. */
  progress(value: number | object): Promise<void>;
}

/** Receives the step's input and returns its output (any JSON). */
// `any` by default so that authors can type the input parameter of each handler as they need.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler<I = any, O = unknown> = (input: I, ctx: TaskContext) => Promise<O>;

export type Handlers = Record<string, Handler>;

/** Identity function that gives handler maps their types. */
export function defineHandlers<T extends Handlers>(handlers: T): T {
  return handlers;
}

/**
 * Throw this for failures that no retry can fix (bad input, a declined payment): the step fails
 * at once, and its breaker does not count it as a failure of the dependency.
 */
export class NonRetryableError extends Error {
  /** Recognized by this flag, not by class identity, so a second copy of this package still works. */
  readonly nonRetryable = true;
  readonly code: string;
  readonly details: unknown;

  constructor(message: string, options: { code?: string; details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NonRetryableError';
    this.code = options.code ?? ErrorCode.nonRetryable;
    this.details = options.details;
  }
}

/**
 * Throw this (or any error with a `code`) for failures worth retrying that you want to name;
 * the code shows in the case, the trace and Bull Board.
 */
export class TaskError extends Error {
  readonly code: string;
  readonly details: unknown;

  constructor(code: string, message: string, options: { details?: unknown; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TaskError';
    this.code = code;
    this.details = options.details;
  }
}
