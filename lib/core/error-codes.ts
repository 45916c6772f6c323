/**
 * Every error code workfleet gives, in one table: whether trying the same thing again can help,
 * the HTTP status the API answers it with, where it shows, and what it means. Code branches on
 * these constants (`ErrorCode.caseNotFound`), never on a code spelled out or on a message; the
 * API takes its statuses and Retry-After from here, and the error-code table of
 * docs/PRODUCERS.md is generated from it (`npm run generate`).
 */

/** Where a code shows. */
export type ErrorSurface =
  /** An HTTP error answer (`{"error": {"code", "message"}}`, with the entry's `httpStatus`). */
  | 'http'
  /** The error recorded on a step that failed (its `error.code`, in the case and its trace). */
  | 'step'
  /** The error recorded on a case that failed or was cancelled. */
  | 'case'
  /** A bulk operation's result for one case. */
  | 'bulk'
  /** The failed reason of a queue job (Bull Board), when no case records it. */
  | 'job'
  /** A warning in a successful answer. */
  | 'warning'
  /** Raised by the TypeScript client (`workfleet/client`) or the CLI, without an answer of the API to pass on. */
  | 'client'
  /** A process that refuses to start. */
  | 'process'
  /** Between parts of workfleet only; the API answers it under another code. */
  | 'internal';

export interface ErrorCodeEntry {
  readonly code: string;
  /** Whether the same operation, repeated unchanged, may succeed: engines retry it (`WorkfleetError.retryable`). */
  readonly retryable: boolean;
  /** The status the API answers with; codes without one are answered 500. */
  readonly httpStatus?: number;
  /** The Retry-After the API sends with it, in seconds. */
  readonly retryAfterSeconds?: number;
  readonly surfaces: readonly ErrorSurface[];
  readonly description: string;
}

const TABLE = {
  // Requests the API refuses.
  inputInvalid: {
    code: 'INPUT_INVALID',
    retryable: false,
    httpStatus: 400,
    surfaces: ['http'],
    description: 'A request (a start, its input, a signal, a schedule, a key, a step report) is invalid; `details.issues` names each problem with its path.',
  },
  definitionInvalid: {
    code: 'DEFINITION_INVALID',
    retryable: false,
    httpStatus: 400,
    surfaces: ['http'],
    description: 'A workflow definition is invalid; `details.issues` names each problem with its path.',
  },
  badRequest: {
    code: 'BAD_REQUEST',
    retryable: false,
    httpStatus: 400,
    surfaces: ['http'],
    description: "The request is not well-formed HTTP, or Fastify's parsers refused it (then with their own 4xx status).",
  },
  unauthenticated: {
    code: 'UNAUTHENTICATED',
    retryable: false,
    httpStatus: 401,
    surfaces: ['http'],
    description: 'The API key is missing, unknown, wrong, revoked or expired.',
  },
  forbidden: {
    code: 'FORBIDDEN',
    retryable: false,
    httpStatus: 403,
    surfaces: ['http'],
    description: "The key's roles do not allow this.",
  },
  workflowNotFound: {
    code: 'WORKFLOW_NOT_FOUND',
    retryable: false,
    httpStatus: 404,
    surfaces: ['http'],
    description: 'No such workflow or version; `details.suggestions` names existing workflows with close names.',
  },
  caseNotFound: {
    code: 'CASE_NOT_FOUND',
    retryable: false,
    httpStatus: 404,
    surfaces: ['http', 'bulk'],
    description: 'No such case (or, for a producer key, a case it did not start).',
  },
  stepNotFound: {
    code: 'STEP_NOT_FOUND',
    retryable: false,
    httpStatus: 404,
    surfaces: ['http'],
    description: 'The case has no such step (or no such forEach step).',
  },
  keyNotFound: {
    code: 'KEY_NOT_FOUND',
    retryable: false,
    httpStatus: 404,
    surfaces: ['http', 'client'],
    description: 'No API key with this id.',
  },
  scheduleNotFound: {
    code: 'SCHEDULE_NOT_FOUND',
    retryable: false,
    httpStatus: 404,
    surfaces: ['http'],
    description: 'No schedule with this id.',
  },
  bulkOperationNotFound: {
    code: 'BULK_OPERATION_NOT_FOUND',
    retryable: false,
    httpStatus: 404,
    surfaces: ['http'],
    description: 'No bulk operation with this id.',
  },
  routeNotFound: {
    code: 'ROUTE_NOT_FOUND',
    retryable: false,
    httpStatus: 404,
    surfaces: ['http'],
    description: 'No such route or file (the API, the explorer, the metrics port of schedulers and workers).',
  },
  methodNotAllowed: {
    code: 'METHOD_NOT_ALLOWED',
    retryable: false,
    httpStatus: 405,
    surfaces: ['http'],
    description: 'The metrics port of schedulers and workers answers GET only.',
  },
  requestTimeout: {
    code: 'REQUEST_TIMEOUT',
    retryable: true,
    httpStatus: 408,
    surfaces: ['http', 'client'],
    description: 'The request did not arrive in time; from the client, no answer came within its `timeoutMs`.',
  },
  idempotencyConflict: {
    code: 'IDEMPOTENCY_CONFLICT',
    retryable: false,
    httpStatus: 409,
    surfaces: ['http'],
    description: 'The idempotency key already started a case with a different request; `details.caseId` names it.',
  },
  debounceKeyInvalid: {
    code: 'DEBOUNCE_KEY_INVALID',
    retryable: false,
    httpStatus: 400,
    surfaces: ['http', 'job'],
    description:
      "The workflow debounces its starts by a key (`debounce.key`), and this start's input renders it to nothing (a reference reads a missing, null or empty value) or to more than 200 characters; `details.reference` names the reference.",
  },
  caseStateConflict: {
    code: 'CASE_STATE_CONFLICT',
    retryable: false,
    httpStatus: 409,
    surfaces: ['http', 'bulk'],
    description: "The case's status does not allow this (signal a finished case, retry one that has not failed); `details.status` is its status.",
  },
  signalNotAccepted: {
    code: 'SIGNAL_NOT_ACCEPTED',
    retryable: false,
    httpStatus: 409,
    surfaces: ['http', 'bulk'],
    description: 'No step of the case waits or may still wait for this signal; `details.accepted` lists those that do.',
  },
  signalBufferFull: {
    code: 'SIGNAL_BUFFER_FULL',
    retryable: false,
    httpStatus: 409,
    surfaces: ['http'],
    description: 'The case already keeps 100 signals (or 1 MiB of them) for steps not yet waiting; nothing kept is dropped.',
  },
  boardActionRefused: {
    code: 'BOARD_ACTION_REFUSED',
    retryable: false,
    httpStatus: 409,
    surfaces: ['http'],
    description: 'The queue board refuses an action that would split a case from its jobs; the answer names the workfleet command to use.',
  },
  bodyTooLarge: {
    code: 'BODY_TOO_LARGE',
    retryable: false,
    httpStatus: 413,
    surfaces: ['http'],
    description: 'The request body is over API_BODY_LIMIT_BYTES.',
  },
  caseTooLarge: {
    code: 'CASE_TOO_LARGE',
    retryable: false,
    httpStatus: 413,
    surfaces: ['http', 'step'],
    description: 'A signal (refused) or a step result (its step fails) would take the case past CASE_MAX_BYTES.',
  },
  uriTooLong: {
    code: 'URI_TOO_LONG',
    retryable: false,
    httpStatus: 414,
    surfaces: ['http'],
    description: 'A path parameter is longer than the API accepts.',
  },
  unsupportedMediaType: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    retryable: false,
    httpStatus: 415,
    surfaces: ['http'],
    description: "The body's content type is neither JSON nor YAML.",
  },
  rateLimited: {
    code: 'RATE_LIMITED',
    retryable: true,
    httpStatus: 429,
    surfaces: ['http'],
    description: 'Too many requests for this key, or too many failed authentications from this address; Retry-After says when to come back.',
  },
  headersTooLarge: {
    code: 'HEADERS_TOO_LARGE',
    retryable: false,
    httpStatus: 431,
    surfaces: ['http'],
    description: "The request's headers are over API_MAX_HEADER_BYTES.",
  },
  internal: {
    code: 'INTERNAL',
    retryable: false,
    httpStatus: 500,
    surfaces: ['http'],
    description: 'A fault of the server; its log has the details (a start that may have made its case names it in `details.caseId`).',
  },
  serviceUnavailable: {
    code: 'SERVICE_UNAVAILABLE',
    retryable: true,
    httpStatus: 503,
    retryAfterSeconds: 5,
    surfaces: ['http'],
    description: 'MongoDB or Redis is away, full or too slow to answer within the request deadline; retry shortly (a start with the same idempotency key).',
  },
  caseNotCommittable: {
    code: 'CASE_NOT_COMMITTABLE',
    retryable: false,
    httpStatus: 503,
    retryAfterSeconds: 30,
    surfaces: ['http', 'internal'],
    description: "The store refuses the case's next transition and would refuse it again; the case is marked stuck. Not retried by the engine; a cancel may be tried again later.",
  },
  uiNotBuilt: {
    code: 'UI_NOT_BUILT',
    retryable: false,
    httpStatus: 503,
    surfaces: ['http'],
    description: 'The case explorer is not built into this installation (npm run build).',
  },
  noLiveWorker: {
    code: 'NO_LIVE_WORKER',
    retryable: false,
    surfaces: ['warning'],
    description: 'A workflow was applied whose task queue no live worker serves: its steps wait until one does.',
  },

  // What steps end with.
  stepTimeout: {
    code: 'STEP_TIMEOUT',
    retryable: true,
    surfaces: ['step'],
    description: 'An attempt took longer than its timeout and was aborted.',
  },
  handlerFailed: {
    code: 'HANDLER_FAILED',
    retryable: true,
    surfaces: ['step'],
    description: 'The handler threw an error without a code of its own (handlers may give their own codes).',
  },
  handlerNotFound: {
    code: 'HANDLER_NOT_FOUND',
    retryable: true,
    surfaces: ['step'],
    description: "The worker's handlers module has no handler for the task.",
  },
  nonRetryable: {
    code: 'NON_RETRYABLE',
    retryable: false,
    surfaces: ['step'],
    description: 'The handler threw a NonRetryableError without a code of its own.',
  },
  outputInvalid: {
    code: 'OUTPUT_INVALID',
    retryable: false,
    surfaces: ['step'],
    description: 'The handler returned an output that is not JSON or is too large.',
  },
  stepCancelled: {
    code: 'STEP_CANCELLED',
    retryable: false,
    surfaces: ['job'],
    description: "The case was cancelled while an attempt ran; the attempt's job fails with this reason.",
  },
  workerLost: {
    code: 'WORKER_LOST',
    retryable: false,
    surfaces: ['step'],
    description: "The step's workers kept dying under it (crash loop, kill, blocked event loop); it is not run again.",
  },
  stepJobInvalid: {
    code: 'STEP_JOB_INVALID',
    retryable: false,
    surfaces: ['step', 'job'],
    description: 'A job on a step queue that no workfleet scheduler or worker made (its id or payload fits no workflow).',
  },
  conditionFailed: {
    code: 'CONDITION_FAILED',
    retryable: false,
    surfaces: ['step'],
    description: 'A `when` or `repeat.while` condition could not be evaluated (a missing field, a type mismatch, not a boolean).',
  },
  conditionBudgetExceeded: {
    code: 'CONDITION_BUDGET_EXCEEDED',
    retryable: false,
    surfaces: ['step'],
    description: 'A condition ran out of its evaluation budget (steps, or the size of a value it builds); the same data costs the same again.',
  },
  itemsInvalid: {
    code: 'ITEMS_INVALID',
    retryable: false,
    surfaces: ['step'],
    description: "A forEach step's items are not an array, or more than it may have.",
  },
  sleepUntilInvalid: {
    code: 'SLEEP_UNTIL_INVALID',
    retryable: false,
    surfaces: ['step'],
    description: "A sleep step's `until` is not a time.",
  },
  nestingTooDeep: {
    code: 'NESTING_TOO_DEEP',
    retryable: false,
    surfaces: ['step'],
    description: 'A sub-workflow would nest deeper than sub-workflows may.',
  },
  childCancelled: {
    code: 'CHILD_CANCELLED',
    retryable: false,
    surfaces: ['step'],
    description: "The sub-workflow's case was cancelled.",
  },
  childFailed: {
    code: 'CHILD_FAILED',
    retryable: false,
    surfaces: ['step'],
    description: "The sub-workflow's case failed.",
  },
  itemFailed: {
    code: 'ITEM_FAILED',
    retryable: false,
    surfaces: ['step'],
    description: 'An item of a forEach step failed; `details.index` and `details.cause` say which and why.',
  },

  // What cases end with.
  stepFailed: {
    code: 'STEP_FAILED',
    retryable: false,
    surfaces: ['case'],
    description: 'A step failed and the workflow failed with it.',
  },
  deadlineExceeded: {
    code: 'DEADLINE_EXCEEDED',
    retryable: false,
    surfaces: ['case'],
    description: 'The case did not finish by its deadline.',
  },
  cancelled: {
    code: 'CANCELLED',
    retryable: false,
    surfaces: ['case'],
    description: 'The case was cancelled; the message is the reason given.',
  },

  // A bulk operation's results.
  bulkActionFailed: {
    code: 'BULK_ACTION_FAILED',
    retryable: false,
    surfaces: ['bulk'],
    description: 'The action failed for a reason that is no refusal of the case (the store or Redis away, a bug): the case may be acted on again.',
  },

  // Between parts of workfleet.
  caseIdTaken: {
    code: 'CASE_ID_TAKEN',
    retryable: true,
    surfaces: ['internal'],
    description: 'A new case drew the id of a case that exists (ids are UUIDv7: practically never); a start made again draws a new one.',
  },
  revisionConflict: {
    code: 'REVISION_CONFLICT',
    retryable: true,
    surfaces: ['internal'],
    description: 'The case changed while a transition was being applied; the caller reads it again and tries again.',
  },
  startIncomplete: {
    code: 'START_INCOMPLETE',
    retryable: true,
    surfaces: ['internal'],
    description: 'A start whose case may be stored did not finish; the API answers SERVICE_UNAVAILABLE or INTERNAL with its `details.caseId`.',
  },
  unknownJobName: {
    code: 'UNKNOWN_JOB_NAME',
    retryable: false,
    surfaces: ['job'],
    description: 'A job on the cases (intake) queue that is not a start.',
  },

  // The client and the CLI.
  unreachable: {
    code: 'UNREACHABLE',
    retryable: true,
    surfaces: ['client', 'process'],
    description: 'No answer from the API (refused connection, DNS failure, reset), or a starting process cannot reach MongoDB or Redis.',
  },
  aborted: {
    code: 'ABORTED',
    retryable: false,
    surfaces: ['client'],
    description: "The caller's AbortSignal fired.",
  },
  waitTimeout: {
    code: 'WAIT_TIMEOUT',
    retryable: false,
    surfaces: ['client'],
    description: 'Waiting for a case to finish gave up before it did.',
  },
  invalidResponse: {
    code: 'INVALID_RESPONSE',
    retryable: false,
    surfaces: ['client'],
    description: 'The API answered something that is not the JSON it documents.',
  },

  // Processes that refuse to start.
  configInvalid: {
    code: 'CONFIG_INVALID',
    retryable: false,
    surfaces: ['process'],
    description: 'The configuration (environment, flags) is invalid; the message lists each problem.',
  },
  handlersModuleInvalid: {
    code: 'HANDLERS_MODULE_INVALID',
    retryable: false,
    surfaces: ['process'],
    description: "A worker's handlers module (WORKER_HANDLERS) is missing or exports no handlers.",
  },
} as const satisfies Record<string, ErrorCodeEntry>;

type Table = typeof TABLE;

/** Each code by its name: `ErrorCode.caseNotFound` is `'CASE_NOT_FOUND'`. */
export const ErrorCode = Object.fromEntries(Object.entries(TABLE).map(([name, entry]) => [name, entry.code])) as {
  readonly [Name in keyof Table]: Table[Name]['code'];
};

/** One of workfleet's error codes. */
export type ErrorCode = Table[keyof Table]['code'];

const ENTRIES = Object.fromEntries(Object.values(TABLE).map((entry): [string, ErrorCodeEntry] => [entry.code, entry])) as Record<ErrorCode, ErrorCodeEntry>;

/** Every entry of the table, in its order. */
export const ERROR_CODE_ENTRIES: readonly ErrorCodeEntry[] = Object.values(TABLE);

/** The table's entry of a code. */
export function errorCodeEntry(code: ErrorCode): ErrorCodeEntry {
  return ENTRIES[code];
}

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ENTRIES, value);
}

/** The HTTP status the API answers a code with: 500 for codes that reach it only as a server fault. */
export function httpStatusOf(code: ErrorCode): number {
  return ENTRIES[code].httpStatus ?? 500;
}

const SURFACE_WORDS: Record<ErrorSurface, string> = {
  http: 'HTTP answer',
  step: 'step',
  case: 'case',
  bulk: 'bulk result',
  job: 'job reason',
  warning: 'warning',
  client: 'client or CLI',
  process: 'process start',
  internal: 'internal',
};

/** The table as Markdown, for docs/PRODUCERS.md (between its error-codes markers; `npm run generate`). */
export function errorCodeTable(): string {
  const rows = ERROR_CODE_ENTRIES.map((entry) => {
    const status = entry.httpStatus === undefined ? '' : `${entry.httpStatus}${entry.retryAfterSeconds === undefined ? '' : ` (Retry-After ${entry.retryAfterSeconds} s)`}`;
    const where = entry.surfaces.map((surface) => SURFACE_WORDS[surface]).join(', ');
    return `| \`${entry.code}\` | ${status} | ${entry.retryable ? 'yes' : 'no'} | ${where} | ${entry.description.replaceAll('|', '\\|')} |`;
  });
  return ['| Code | HTTP status | Retryable | Where | Meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}
