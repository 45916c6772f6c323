import { api, ApiError } from './api.js';
import type { CaseSummary, CaseView } from './model.js';

/**
 * Finding a case by its id from the case list. The list endpoint has no id filter (an id is a
 * key: one read finds it), so an exact id is read directly and shown as a list of one, or none.
 */
export async function pageOfId(id: string): Promise<{ cases: CaseSummary[]; nextCursor: null }> {
  try {
    const found = await api<CaseView>('GET', `/v1/cases/${encodeURIComponent(id)}`);
    const { workflow, version, status, createdAt, updatedAt, finishedAt, error } = found;
    return { cases: [{ id: found.id, workflow, version, status, createdAt, updatedAt, finishedAt, error }], nextCursor: null };
  } catch (error) {
    // 404: no such case (or one this key may not read); 400: not even a possible id.
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) return { cases: [], nextCursor: null };
    throw error;
  }
}
