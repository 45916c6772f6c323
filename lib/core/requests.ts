import { Type, type Static } from '@sinclair/typebox';
import { LIMITS, WORKFLOW_NAME_PATTERN } from './definition.js';
import { parseDuration } from './duration.js';
import { InputInvalidError, type ValidationIssue } from './errors.js';
import { MAX_IDEMPOTENCY_WINDOW_MS } from './idempotency.js';
import { segmentsToPath } from './paths.js';
import { ILL_FORMED_MESSAGE, isWellFormed } from './text.js';
import { schemaIssues } from './validate.js';

/** Limits on what one case may carry; they keep a hostile request from exhausting memory. */
export const PAYLOAD_LIMITS = {
  /** Nesting depth of a case input or a step output. */
  maxDepth: 64,
  /** Size of a case input as JSON. */
  maxInputBytes: 512 * 1024,
  /** Size of a step output as JSON. */
  maxOutputBytes: 1024 * 1024,
} as const;

/** Names of business keys: short identifiers. */
const BUSINESS_KEY_NAME = '^[A-Za-z][A-Za-z0-9_]{0,39}$';

/** The body of `POST /v1/cases` and the data of a `start` job on the intake queue. */
export const StartCaseRequestSchema = Type.Object(
  {
    workflow: Type.String({ pattern: WORKFLOW_NAME_PATTERN, minLength: 1, maxLength: 100, description: 'Workflow name.' }),
    version: Type.Optional(Type.Integer({ minimum: 1, description: 'Definition version; the latest when omitted.' })),
    input: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'The case input: a JSON object.' })),
    businessKeys: Type.Optional(
      Type.Record(Type.String({ pattern: BUSINESS_KEY_NAME }), Type.String({ minLength: 1, maxLength: 200 }), {
        maxProperties: 10,
        description: 'Up to 10 names and values (e.g. {"orderId": "A-17"}) to find the case by: GET /v1/cases?key=orderId=A-17. Values are well-formed UTF-16.',
      }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: -LIMITS.maxPriority,
        maximum: LIMITS.maxPriority,
        description:
          'Orders the units of this case (and its child cases) that wait for a slot of a concurrency key: higher first, each second of waiting counting as one level, so low priority is late but never starved. Default 0.',
      }),
    ),
    idempotencyKey: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description:
          "A second start with the same key from the same producer (API key; the intake queue's, or with auth off every caller's, are one) returns the first case instead of making another. Another producer's same key is another key. Well-formed UTF-16 only.",
      }),
    ),
    idempotencyWindow: Type.Optional(
      // Shapes only: `windowOf` checks the value, at every door, with a message that says what a window is.
      Type.Union([Type.Integer(), Type.String({ maxLength: 40 })], {
        description:
          'How long the case this start makes answers for its idempotencyKey: a start with the key after the window makes a new case (and the key moves to it). ' +
          'Milliseconds, or text such as "30s", "1h", "7d"; at most 365 days. Default: for ever. Needs an idempotencyKey.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type StartCaseRequest = Static<typeof StartCaseRequestSchema>;

/** Checks depth and size of a JSON value without recursing on the call stack. */
export function payloadIssues(value: unknown, path: string, maxBytes: number): ValidationIssue[] {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (current === null || typeof current !== 'object') continue;
    if (depth > PAYLOAD_LIMITS.maxDepth) return [{ path, message: `nests deeper than ${PAYLOAD_LIMITS.maxDepth} levels` }];
    for (const child of Object.values(current)) stack.push([child, depth + 1]);
  }
  let text: string;
  try {
    text = JSON.stringify(value ?? null);
  } catch {
    return [{ path, message: 'is not JSON (a cycle or a BigInt)' }];
  }
  // Length in UTF-16 units bounds the UTF-8 size from below; good enough for a limit.
  if (text.length > maxBytes) return [{ path, message: `is larger than ${maxBytes} bytes as JSON` }];
  return [];
}

/** The strings that become stored keys, each with a lone surrogate named by its path (lib/core/text.ts). */
function storedKeyIssues(request: StartCaseRequest): ValidationIssue[] {
  const strings: Array<[string, string]> = [];
  if (request.idempotencyKey !== undefined) strings.push(['idempotencyKey', request.idempotencyKey]);
  for (const [name, value] of Object.entries(request.businessKeys ?? {})) strings.push([segmentsToPath(['businessKeys', name]), value]);
  return strings.filter(([, text]) => !isWellFormed(text)).map(([path]) => ({ path, message: ILL_FORMED_MESSAGE }));
}

/** The request's idempotency window in milliseconds (undefined: none), or the problem with it. */
function windowOf(request: StartCaseRequest): { ms?: number; issue?: ValidationIssue } {
  if (request.idempotencyWindow === undefined) return {};
  const path = 'idempotencyWindow';
  const ms = parseDuration(request.idempotencyWindow);
  if (ms === undefined) return { issue: { path, message: `${JSON.stringify(request.idempotencyWindow)} is not a duration: use milliseconds or text like "30s", "1h", "7d"` } };
  if (ms < 1) return { issue: { path, message: `${JSON.stringify(request.idempotencyWindow)} is not a window: give at least 1ms` } };
  if (ms > MAX_IDEMPOTENCY_WINDOW_MS) return { issue: { path, message: `must be at most 365d (${MAX_IDEMPOTENCY_WINDOW_MS} ms)` } };
  if (request.idempotencyKey === undefined) return { issue: { path, message: 'is the lifetime of an idempotency key: send an idempotencyKey with it' } };
  return { ms };
}

/** The idempotency window of a request that passed `parseStartRequest`, in milliseconds; undefined when it has none. */
export function idempotencyWindowMs(request: StartCaseRequest): number | undefined {
  return windowOf(request).ms;
}

/** Validates a start request from any door; throws InputInvalidError naming each problem. */
export function parseStartRequest(data: unknown): StartCaseRequest {
  const issues = schemaIssues(StartCaseRequestSchema, data);
  if (issues.length > 0) throw new InputInvalidError(issues, 'start request');
  const request = data as StartCaseRequest;
  const window = windowOf(request).issue;
  if (window) throw new InputInvalidError([window], 'start request');
  const stored = storedKeyIssues(request);
  if (stored.length > 0) throw new InputInvalidError(stored, 'start request');
  const payload = payloadIssues(request.input ?? {}, 'input', PAYLOAD_LIMITS.maxInputBytes);
  if (payload.length > 0) throw new InputInvalidError(payload, 'start request');
  return request;
}

export { canonicalJson } from './canonical-json.js';
