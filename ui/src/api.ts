/**
 * Calls to the workfleet API with the key the person signed in with. The key stays in this
 * tab (sessionStorage, so a reload keeps it and closing the tab forgets it) and only ever
 * travels in the Authorization header: never in a URL, so never in an access log or history.
 */

const STORAGE = 'workfleet.explorer.key';
let key: string | undefined = readStored();

function readStored(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE) ?? undefined;
  } catch {
    return undefined;
  }
}

export function setKey(value: string | undefined): void {
  key = value;
  try {
    if (value) sessionStorage.setItem(STORAGE, value);
    else sessionStorage.removeItem(STORAGE);
  } catch {
    // Storage may be off (private modes): the key then lives in memory only, for this page.
  }
}

export const hasKey = (): boolean => key !== undefined;

/** An answer the API refused, with its code and message shown as they are. */
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

/** Called when the API says the key is not (or no longer) valid. */
let onUnauthenticated: () => void = () => undefined;
export function whenUnauthenticated(handler: () => void): void {
  onUnauthenticated = handler;
}

export async function api<T>(method: 'GET' | 'POST', path: string, body?: unknown, options: { signal?: AbortSignal; keyOverride?: string } = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const sent = options.keyOverride ?? key;
  if (sent) headers.authorization = `Bearer ${sent}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      ...(options.signal ? { signal: options.signal } : {}),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (error) {
    if ((error as Error).name === 'AbortError') throw error;
    throw new ApiError(0, 'UNREACHABLE', `the API did not answer: ${(error as Error).message}`);
  }
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error;
    if (response.status === 401 && options.keyOverride === undefined) onUnauthenticated();
    throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? (text.slice(0, 300) || response.statusText), error?.details);
  }
  return parsed as T;
}

export interface Session {
  authEnabled: boolean;
  principal: { id: string; name: string; roles: string[] };
  permissions: string[];
}

/** Who the key is; with `candidate`, checks a key before keeping it. */
export function fetchSession(candidate?: string): Promise<Session> {
  return api<Session>('GET', '/v1/explorer/session', undefined, candidate === undefined ? {} : { keyOverride: candidate });
}

export function describeError(error: unknown): string {
  if (error instanceof ApiError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
