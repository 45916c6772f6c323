import { apiErrorFor, CLIENT_ERROR_CODES, InvalidResponseError, NotFoundError, WaitTimeoutError, WorkfleetAbortError, WorkfleetApiError, WorkfleetConnectionError, WorkfleetError } from './errors.js';
import {
  FINISHED_CASE_STATUSES,
  type BulkAction,
  type BulkOperation,
  type BulkPreview,
  type BulkRequestFor,
  type BulkResult,
  type BulkResults,
  type CancelOptions,
  type CaseFilter,
  type CaseList,
  type CaseSummary,
  type CaseView,
  type DebouncedStart,
  type FinishedCase,
  type ListCasesQuery,
  type StartCaseRequest,
  type StartedCase,
  type Trace,
} from './types.js';

export interface WorkfleetClientOptions {
  /** Base URL of the API, e.g. `https://workfleet.internal` (a path prefix is kept). Required. */
  baseUrl: string;
  /** API key, sent as `Authorization: Bearer`. Default: none (for an API with AUTH_ENABLED=false). */
  apiKey?: string;
  /** How long one HTTP request may take. Default 15000 ms. */
  timeoutMs?: number;
  /**
   * How often a request that is safe to repeat is retried after no answer, 429, 502, 503 or 504.
   * Safe: reads, and starts that carry an idempotency key. Default 2.
   */
  retries?: number;
  /** First pause before such a retry, doubled each time; a Retry-After header wins. Default 250 ms. */
  retryDelayMs?: number;
  /** Headers sent with every request (e.g. a tracing header). Default none. */
  headers?: Record<string, string>;
  /** The fetch to use. Default `globalThis.fetch`. */
  fetch?: typeof fetch;
}

/** Per-call options. */
export interface RequestOptions {
  /** Aborts the call (and its retries); the call rejects with WorkfleetAbortError. */
  signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this call. */
  timeoutMs?: number;
  /** Sent as X-Request-Id; the API echoes it and stores it with a started case. Default: the API makes one. */
  requestId?: string;
}

export interface WaitOptions {
  /** Give up after this long with WaitTimeoutError. Default 60000 ms. */
  timeoutMs?: number;
  /** First pause between reads of the case; grows by half each time up to `maxPollIntervalMs`. Default 250 ms. */
  pollIntervalMs?: number;
  /** Longest pause between reads. Default 2000 ms. */
  maxPollIntervalMs?: number;
  /** Stops waiting; rejects with WorkfleetAbortError. */
  signal?: AbortSignal;
}

/**
 * A started case, and whether this call made it (false: its idempotency key had made it before);
 * or, for a workflow with `debounce:`, the burst the start joined (`status: 'debounced'`).
 */
export type StartResult = (StartedCase & { created: boolean }) | (DebouncedStart & { created: false });

/** A case operation the client performs, as `openapi.json` names it (checked by a contract test). */
export interface ClientOperation {
  method: 'GET' | 'POST';
  path: string;
  /** The statuses the client takes as success. */
  success: readonly number[];
}

/** Every route the client calls, for the contract test against openapi.json. */
export const CLIENT_OPERATIONS = {
  start: { method: 'POST', path: '/v1/cases', success: [200, 201, 202] },
  get: { method: 'GET', path: '/v1/cases/{id}', success: [200] },
  list: { method: 'GET', path: '/v1/cases', success: [200] },
  trace: { method: 'GET', path: '/v1/cases/{id}/trace', success: [200] },
  cancel: { method: 'POST', path: '/v1/cases/{id}/cancel', success: [200] },
  signal: { method: 'POST', path: '/v1/cases/{id}/signals/{name}', success: [200] },
  retry: { method: 'POST', path: '/v1/cases/{id}/retry', success: [200] },
  bulkRetry: { method: 'POST', path: '/v1/cases/bulk/retry', success: [200, 202] },
  bulkCancel: { method: 'POST', path: '/v1/cases/bulk/cancel', success: [200, 202] },
  bulkSignal: { method: 'POST', path: '/v1/cases/bulk/signal', success: [200, 202] },
  getBulk: { method: 'GET', path: '/v1/bulk/{id}', success: [200] },
  bulkResults: { method: 'GET', path: '/v1/bulk/{id}/results', success: [200] },
  stopBulk: { method: 'POST', path: '/v1/bulk/{id}/stop', success: [200] },
} as const satisfies Record<string, ClientOperation>;

const BULK_OPERATIONS = { retry: CLIENT_OPERATIONS.bulkRetry, cancel: CLIENT_OPERATIONS.bulkCancel, signal: CLIENT_OPERATIONS.bulkSignal } as const;

/** A filter's times as ISO 8601 text. */
function wireFilter(filter: CaseFilter): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(filter) as Array<[string, string | Date | undefined]>) {
    if (value !== undefined) out[name] = value instanceof Date ? value.toISOString() : value;
  }
  return out;
}

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);
const FINISHED = new Set<string>(FINISHED_CASE_STATUSES);

/** Waits `ms`, or rejects as soon as `signal` fires. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal | undefined): WorkfleetAbortError {
  return new WorkfleetAbortError(CLIENT_ERROR_CODES.aborted, 'the call was aborted', { cause: signal?.reason });
}

function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

const segment = (value: string) => encodeURIComponent(value);

/**
 * A typed client of the workfleet HTTP API for producers: start cases, read them, wait for
 * their result, signal, cancel, retry, list. It has no dependencies beyond the platform's
 * fetch (Node.js 18+, browsers, Deno, Bun).
 *
 * ```ts
 * import { WorkfleetClient } from 'workfleet/client';
 * const workfleet = new WorkfleetClient({ baseUrl: process.env.WORKFLEET_API_URL!, apiKey: process.env.WORKFLEET_API_KEY });
 * const { id } = await workfleet.start({ workflow: 'order', input: { sku: 'book-42' }, idempotencyKey: 'order-7731' });
 * const done = await workfleet.waitForResult(id, { timeoutMs: 30_000 });
 * if (done.status === 'completed') console.log(done.output);
 * ```
 */
export class WorkfleetClient {
  private readonly base: URL;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: WorkfleetClientOptions) {
    // A trailing slash makes relative paths append to a prefix such as https://host/workfleet/.
    this.base = new URL(options.baseUrl.endsWith('/') ? options.baseUrl : `${options.baseUrl}/`);
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * Starts a case. With an `idempotencyKey` a repeated call (or a retry after a lost answer)
   * returns the same case with `created: false`; a key reused for a different request is a
   * ConflictError (IDEMPOTENCY_CONFLICT).
   */
  async start(request: StartCaseRequest, options: RequestOptions = {}): Promise<StartResult> {
    const { status, body } = await this.call<StartedCase | DebouncedStart>(CLIENT_OPERATIONS.start, {}, { body: request, idempotent: request.idempotencyKey !== undefined, ...options });
    return body.status === 'debounced' ? { ...body, created: false } : { ...body, created: status === 201 };
  }

  /** The case with its steps. NotFoundError when there is none (or the key may not read it). */
  async get(id: string, options: RequestOptions = {}): Promise<CaseView> {
    return (await this.call<CaseView>(CLIENT_OPERATIONS.get, { id }, { idempotent: true, ...options })).body;
  }

  /** One page of cases, newest first; pass `nextCursor` back as `cursor` for the next. */
  async list(query: ListCasesQuery = {}, options: RequestOptions = {}): Promise<CaseList> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query) as Array<[string, string | number | Date | undefined]>) {
      if (value === undefined) continue;
      search.set(name, value instanceof Date ? value.toISOString() : String(value));
    }
    return (await this.call<CaseList>(CLIENT_OPERATIONS.list, {}, { idempotent: true, search, ...options })).body;
  }

  /** Every case matching `query`, page after page. */
  async *listAll(query: Omit<ListCasesQuery, 'cursor'> = {}, options: RequestOptions = {}): AsyncGenerator<CaseSummary> {
    let cursor: string | undefined;
    do {
      const page = await this.list({ ...query, ...(cursor ? { cursor } : {}) }, options);
      yield* page.cases;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }

  /** Every state change of the case, in order. */
  async trace(id: string, options: RequestOptions = {}): Promise<Trace> {
    return (await this.call<Trace>(CLIENT_OPERATIONS.trace, { id }, { idempotent: true, ...options })).body;
  }

  /** Cancels a case (role operator or admin); ConflictError when it already finished. */
  async cancel(id: string, cancel: CancelOptions = {}, options: RequestOptions = {}): Promise<CaseView> {
    return (await this.call<CaseView>(CLIENT_OPERATIONS.cancel, { id }, { body: cancel, ...options })).body;
  }

  /** Sends a signal with a JSON payload: a step waiting for it goes on, or it is kept for one. */
  async signal(id: string, name: string, payload: unknown = null, options: RequestOptions = {}): Promise<CaseView> {
    return (await this.call<CaseView>(CLIENT_OPERATIONS.signal, { id, name }, { body: payload, ...options })).body;
  }

  /** Resumes a failed case from its failed steps; ConflictError when it has not failed. */
  async retry(id: string, options: RequestOptions = {}): Promise<CaseView> {
    return (await this.call<CaseView>(CLIENT_OPERATIONS.retry, { id }, { ...options })).body;
  }

  /**
   * Counts the cases a bulk action would act on, by status, without changing any: how many
   * match, how many the action applies to (the others would be skipped), the newest few.
   */
  async previewBulk<A extends BulkAction>(action: A, request: BulkRequestFor<A>, options: RequestOptions = {}): Promise<BulkPreview> {
    const body = { ...request, filter: wireFilter(request.filter), dryRun: true };
    return (await this.call<BulkPreview>(BULK_OPERATIONS[action], {}, { body, idempotent: true, ...options })).body;
  }

  /**
   * Starts a bulk operation (role operator or admin): retry, cancel or signal every case the
   * filter matches, newest first, up to `limit`. It runs in the API; follow it with `getBulk`,
   * `waitForBulk` and `bulkResults`. A case its action does not fit is a `skipped` result.
   */
  async startBulk<A extends BulkAction>(action: A, request: BulkRequestFor<A>, options: RequestOptions = {}): Promise<BulkOperation> {
    const body = { ...request, filter: wireFilter(request.filter) };
    return (await this.call<BulkOperation>(BULK_OPERATIONS[action], {}, { body, ...options })).body;
  }

  /** A bulk operation's progress. NotFoundError when there is none. */
  async getBulk(id: string, options: RequestOptions = {}): Promise<BulkOperation> {
    return (await this.call<BulkOperation>(CLIENT_OPERATIONS.getBulk, { id }, { idempotent: true, ...options })).body;
  }

  /** Per-case results stored so far, up to 200 an answer; pass `nextCursor` back as `cursor`. */
  async bulkResults(id: string, query: { cursor?: string; outcome?: BulkResult['outcome'] } = {}, options: RequestOptions = {}): Promise<BulkResults> {
    const search = new URLSearchParams();
    if (query.cursor !== undefined) search.set('cursor', query.cursor);
    if (query.outcome !== undefined) search.set('outcome', query.outcome);
    return (await this.call<BulkResults>(CLIENT_OPERATIONS.bulkResults, { id }, { idempotent: true, search, ...options })).body;
  }

  /** Stops a bulk operation before its next page; a finished one is returned as it is. */
  async stopBulk(id: string, options: RequestOptions = {}): Promise<BulkOperation> {
    return (await this.call<BulkOperation>(CLIENT_OPERATIONS.stopBulk, { id }, { idempotent: true, ...options })).body;
  }

  /**
   * Reads a bulk operation until it is completed or stopped, calling `onProgress` with each
   * read; WaitTimeoutError after `timeoutMs` (default 60000).
   */
  async waitForBulk(id: string, options: Omit<WaitOptions, 'pollIntervalMs' | 'maxPollIntervalMs'> & { pollIntervalMs?: number; onProgress?: (operation: BulkOperation) => void } = {}): Promise<BulkOperation> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const operation = await this.getBulk(id, options.signal ? { signal: options.signal } : {});
      options.onProgress?.(operation);
      if (operation.status !== 'running') return operation;
      if (Date.now() >= deadline) throw new WaitTimeoutError(`bulk operation ${id} is still running after ${timeoutMs} ms (${operation.done}/${operation.total})`, undefined);
      await pause(Math.max(0, Math.min(options.pollIntervalMs ?? 500, deadline - Date.now())), options.signal);
    }
  }

  /**
   * Reads the case until it is completed, failed or cancelled, and returns it. Rejects with
   * WaitTimeoutError (carrying the case as last seen) after `timeoutMs`; a failed case is a
   * result, not an error: look at `status` and `error`.
   */
  async waitForResult(id: string, options: WaitOptions = {}): Promise<FinishedCase> {
    return this.waitFor(id, options, false);
  }

  /** `waitForResult`; with `missingIsPending` (a debounced start's case, made when its burst closes) a case not made yet is waited for too. */
  private async waitFor(id: string, options: WaitOptions, missingIsPending: boolean): Promise<FinishedCase> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let interval = options.pollIntervalMs ?? 250;
    const maxInterval = options.maxPollIntervalMs ?? 2_000;
    let last: CaseView | undefined;
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new WaitTimeoutError(`case ${id} did not finish within ${timeoutMs} ms (last status: ${last?.status ?? 'unknown'})`, last);
      try {
        last = await this.get(id, { ...(options.signal ? { signal: options.signal } : {}), timeoutMs: Math.min(remaining, this.options.timeoutMs ?? 15_000) });
      } catch (error) {
        // A read that timed out because the wait's own deadline ran out is the wait timing out.
        if (error instanceof WorkfleetConnectionError && error.code === CLIENT_ERROR_CODES.requestTimeout && Date.now() >= deadline) continue;
        if (!(missingIsPending && last === undefined && error instanceof NotFoundError)) throw error;
      }
      if (last && FINISHED.has(last.status)) return last as FinishedCase;
      await pause(Math.max(0, Math.min(interval, deadline - Date.now())), options.signal);
      interval = Math.min(maxInterval, Math.ceil(interval * 1.5));
    }
  }

  /** `start`, then `waitForResult`; for a debounced start, the case its burst makes (its wait includes the burst's). */
  async run(request: StartCaseRequest, options: WaitOptions = {}): Promise<FinishedCase> {
    const started = await this.start(request, options.signal ? { signal: options.signal } : {});
    return this.waitFor(started.id, options, started.status === 'debounced');
  }

  private async call<T>(
    operation: { method: string; path: string; success: readonly number[] },
    params: Record<string, string>,
    options: RequestOptions & { body?: unknown; idempotent?: boolean; search?: URLSearchParams },
  ): Promise<{ status: number; body: T }> {
    const path = operation.path.replace(/\{(\w+)\}/g, (_, name: string) => segment(params[name] ?? ''));
    const url = new URL(path.slice(1), this.base);
    if (options.search) url.search = options.search.toString();
    const headers: Record<string, string> = { accept: 'application/json', ...this.options.headers };
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    if (options.requestId) headers['x-request-id'] = options.requestId;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const attempts = 1 + (options.idempotent ? (this.options.retries ?? 2) : 0);
    let delay = this.options.retryDelayMs ?? 250;

    for (let attempt = 1; ; attempt++) {
      let failure: WorkfleetError;
      let wait = delay;
      try {
        const response = await this.send(url, operation.method, headers, options);
        const requestId = response.headers.get('x-request-id') ?? undefined;
        const text = await response.text();
        let parsed: unknown;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          throw new InvalidResponseError(CLIENT_ERROR_CODES.invalidResponse, `${operation.method} ${path} answered ${response.status} with non-JSON: ${text.slice(0, 200)}`);
        }
        if (operation.success.includes(response.status)) {
          if (parsed === undefined || typeof parsed !== 'object') {
            throw new InvalidResponseError(CLIENT_ERROR_CODES.invalidResponse, `${operation.method} ${path} answered ${response.status} without a JSON object`);
          }
          return { status: response.status, body: parsed as T };
        }
        const info = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
        const after = retryAfterMs(response.headers.get('retry-after'));
        failure = apiErrorFor(
          response.status,
          typeof info?.code === 'string' ? info.code : `HTTP_${response.status}`,
          typeof info?.message === 'string' ? info.message : `${operation.method} ${path} answered ${response.status}`,
          info?.details,
          requestId,
          after,
        );
        if (!RETRIED_STATUSES.has(response.status)) throw failure;
        if (after !== undefined) wait = after;
      } catch (error) {
        if (error instanceof WorkfleetApiError || error instanceof InvalidResponseError || error instanceof WorkfleetAbortError) throw error;
        if (options.signal?.aborted) throw abortError(options.signal);
        // The body can still fail after the headers came (reset, timeout while reading).
        failure =
          error instanceof WorkfleetError
            ? error
            : new WorkfleetConnectionError(CLIENT_ERROR_CODES.unreachable, `${operation.method} ${path}: the answer broke off (${(error as Error).message})`, { cause: error });
      }
      if (attempt >= attempts) throw failure;
      await pause(wait, options.signal);
      delay *= 2;
    }
  }

  /** One HTTP exchange, with the timeout and the caller's signal; transport failures become WorkfleetErrors. */
  private async send(url: URL, method: string, headers: Record<string, string>, options: RequestOptions & { body?: unknown }): Promise<Response> {
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? 15_000;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    try {
      return await this.fetchImpl(url, {
        method,
        headers,
        signal,
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
    } catch (error) {
      if (options.signal?.aborted) throw abortError(options.signal);
      if (timeout.aborted) throw new WorkfleetConnectionError(CLIENT_ERROR_CODES.requestTimeout, `${method} ${url.pathname} got no answer within ${timeoutMs} ms`, { cause: error });
      const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new WorkfleetConnectionError(CLIENT_ERROR_CODES.unreachable, `cannot reach the workfleet API at ${this.base.origin} (${reason})`, { cause: error });
    }
  }
}
