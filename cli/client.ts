import { ErrorCode } from '../lib/core/error-codes.js';

/** A small HTTP client for the workfleet API, used by the CLI's client commands. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ClientOptions {
  /** Base URL, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  apiKey?: string;
  /** Per-request timeout. Default 15000 ms. */
  timeoutMs?: number;
}

export class WorkfleetClient {
  constructor(private readonly options: ClientOptions) {}

  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = contentType;
    if (this.options.apiKey) headers.authorization = `Bearer ${this.options.apiKey}`;
    let response: Response;
    try {
      response = await fetch(new URL(path, this.options.baseUrl), {
        method,
        headers,
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new ApiError(0, ErrorCode.unreachable, `cannot reach the workfleet API at ${this.options.baseUrl} (${cause}); is it running? (npm start, or set WORKFLEET_API_URL)`);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
      throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? response.statusText, error?.details);
    }
    return { status: response.status, body: parsed as T };
  }
}
