import { waitFor } from './wait.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- tests read answers freely */

export interface WireStep {
  status: string;
  attempts: number;
  output: any;
  error: { code: string; message: string } | null;
  waitingFor?: { signals: string[]; until: string | null };
  items?: { total: number; completed: number; failed: number };
  iteration?: number;
  childCaseId?: string;
  compensation?: { status: string };
}

export interface WireCase {
  id: string;
  status: string;
  version: number;
  input: any;
  output: any;
  error: { code: string; message: string; stepId?: string; details?: any } | null;
  steps: Record<string, WireStep>;
  waitingFor: Array<{ stepId: string; signals: string[] }>;
  parent?: { caseId: string; stepId: string };
  idempotencyKey?: string;
  createdAt: string;
}

export interface WireEvent {
  seq: number;
  type: string;
  stepId?: string;
  at: string;
  data: Record<string, unknown>;
}

/** A small client of a running API for end-to-end tests: requests, cases, traces, waiting for a status. */
export function httpClient(baseUrl: () => string) {
  async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const response = await fetch(`${baseUrl()}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : {}) as T };
  }
  const getCase = async (id: string) => (await api<WireCase>('GET', `/v1/cases/${id}`)).body;
  const getTrace = async (id: string) => (await api<{ events: WireEvent[] }>('GET', `/v1/cases/${id}/trace`)).body.events;
  /** The case once its status is one of `statuses`. */
  const until = (id: string, statuses: string | string[], timeoutMs = 30_000) =>
    waitFor(
      `case ${id} to be ${String(statuses)}`,
      async () => {
        const record = await getCase(id);
        return ([] as string[]).concat(statuses).includes(record.status) ? record : undefined;
      },
      { timeoutMs, intervalMs: 100 },
    );
  return { api, getCase, getTrace, until, finished: (id: string, timeoutMs?: number) => until(id, ['completed', 'failed', 'cancelled'], timeoutMs) };
}
