import type { BulkCaseResult, BulkOperation, CaseFilter } from '../../core/bulk.js';
import type { WorkflowDefinition } from '../../core/definition.js';
import { ErrorCode } from '../../core/error-codes.js';
import { WorkfleetError } from '../../core/errors.js';
import { keyExpired } from '../../core/idempotency.js';
import type { CaseState, CaseStatus, TraceEvent } from '../../core/state.js';
import type { CaseQuery, CaseRead, CaseRecord, CaseSummary, CreateResult, Store, StoredKey, StoredWorkflow, WorkflowSummary } from '../../ports/store.js';
import { CaseTable, type CaseEntry } from './case-table.js';
import { MemoryBulkOperations } from './bulk-operations.js';
import { decodeCursor, encodeCursor } from '../case-cursor.js';

/** The fields of a CaseRecord that say how the case was started; a transition never changes them. */
const START_FIELDS = ['startedBy', 'businessKeys', 'idempotencyKey', 'idempotencyScope', 'requestHash', 'idempotencyExpiresAt'] as const satisfies ReadonlyArray<keyof CaseRecord>;

/** Whether a case matches a filter, as the MongoDB adapter's query decides it. */
function matchesFilter(record: CaseRecord, query: CaseFilter): boolean {
  const cause = (record.error?.details as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return (
    (query.status === undefined || record.status === query.status) &&
    (query.workflow === undefined || record.workflow === query.workflow) &&
    (query.businessKey === undefined ||
      (record.businessKeys !== undefined && Object.hasOwn(record.businessKeys, query.businessKey.name) && record.businessKeys[query.businessKey.name] === query.businessKey.value)) &&
    (query.createdAfter === undefined || record.createdAt >= query.createdAfter) &&
    (query.createdBefore === undefined || record.createdAt < query.createdBefore) &&
    (query.updatedAfter === undefined || record.updatedAt >= query.updatedAfter) &&
    (query.updatedBefore === undefined || record.updatedAt < query.updatedBefore) &&
    (query.errorCode === undefined || record.error?.code === query.errorCode || cause === query.errorCode)
  );
}

const byId = (a: CaseEntry, b: CaseEntry): number => (a.record.id < b.record.id ? -1 : a.record.id > b.record.id ? 1 : 0);

/**
 * The Store port in this process's memory, with the MongoDB adapter's guarantees: exactly one
 * writer commits each revision of a case, an idempotency key makes one case, and every value is
 * copied on the way in and out (payload keys with dots or `$` round-trip as they are), so no
 * caller can change what is stored. Payloads are expected to be JSON values, as they are
 * wherever they come from; a value JSON cannot carry (a Date, `undefined` in an array) comes
 * back as it went in here, where MongoDB would give back what JSON makes of it.
 *
 * For tests of the engine and for benchmarking it apart from its database, nothing else: it
 * forgets everything when the process ends and is shared by no other process, so it must never
 * be the store of `npm start`, of production, or of an integration test (those prove the engine
 * on MongoDB). Every method is async like the port's, but does no I/O; a commit's history entry
 * and case document are written in one step, so the document is never behind its history.
 */
export class MemoryStore implements Store {
  private readonly cases = new CaseTable();
  /** Each name's versions, version 1 first. */
  private readonly workflows = new Map<string, StoredWorkflow[]>();
  private readonly keys = new Map<string, StoredKey>();
  private readonly bulk = new MemoryBulkOperations();

  async init(): Promise<void> {}

  async ping(_timeoutMs: number): Promise<void> {}

  async close(): Promise<void> {}

  // --- workflows ---

  async saveWorkflow(definition: WorkflowDefinition, hash: string, now: number): Promise<{ workflow: StoredWorkflow; created: boolean }> {
    const versions = this.workflows.get(definition.name) ?? [];
    const same = versions.find((stored) => stored.hash === hash);
    if (same) return { workflow: structuredClone(same), created: false };
    const workflow: StoredWorkflow = { name: definition.name, version: versions.length + 1, hash, definition: structuredClone(definition), createdAt: now };
    versions.push(workflow);
    this.workflows.set(definition.name, versions);
    return { workflow: structuredClone(workflow), created: true };
  }

  async getWorkflow(name: string, version?: number): Promise<StoredWorkflow | undefined> {
    const versions = this.workflows.get(name);
    const stored = version === undefined ? versions?.at(-1) : versions?.[version - 1];
    return stored && structuredClone(stored);
  }

  async listWorkflows(): Promise<WorkflowSummary[]> {
    return [...this.workflows.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .flatMap(([name, versions]) => {
        const latest = versions.at(-1);
        if (!latest) return [];
        const { description } = latest.definition;
        return [{ name, latestVersion: latest.version, versions: versions.length, updatedAt: latest.createdAt, ...(description ? { description } : {}) }];
      });
  }

  async listVersions(name: string): Promise<Array<{ version: number; hash: string; createdAt: number }>> {
    return (this.workflows.get(name) ?? []).map(({ version, hash, createdAt }) => ({ version, hash, createdAt })).reverse();
  }

  // --- cases ---

  async createCase(record: CaseRecord, events: readonly TraceEvent[]): Promise<CreateResult> {
    const existing = this.cases.byIdempotencyKey(record);
    if (existing && !keyExpired(existing.record, record.createdAt)) return { created: false, existing: structuredClone(existing.record) };
    // Only a case id taken by another case (ids are UUIDv7: practically never); a new id will do.
    if (this.cases.get(record.id)) throw new WorkfleetError(ErrorCode.caseIdTaken, `case id ${record.id} is already taken`);
    // Its window is over: the key moves to the new case.
    if (existing) this.cases.releaseKey(existing);
    this.cases.insert({ record: structuredClone(record), createdTrace: structuredClone(events), history: [] });
    return { created: true };
  }

  async getCase(id: string): Promise<CaseRecord | undefined> {
    const entry = this.cases.get(id);
    return entry && structuredClone(entry.record);
  }

  /** The document is never behind its history here (both are written in one step): the case as it is. */
  async readCase(id: string): Promise<CaseRead | undefined> {
    const record = await this.getCase(id);
    return record && { record, projected: record };
  }

  async appendTransition(previous: CaseState, next: CaseState, events: readonly TraceEvent[]): Promise<'committed' | 'conflict'> {
    const entry = this.cases.get(next.id);
    // No case (never made, or deleted): whoever asks finds it gone when reading it again.
    if (!entry) return 'conflict';
    // History holds revisions 1..length: a revision already in it belongs to another writer.
    if (next.revision <= entry.history.length) return 'conflict';
    if (next.revision !== entry.history.length + 1 || next.revision !== previous.revision + 1) {
      throw new Error(`case ${next.id}: revision ${next.revision} does not follow the committed revision ${entry.history.length}`);
    }
    const record: CaseRecord = structuredClone(next);
    // How the case was started stays as stored, whatever the caller's state carries.
    for (const field of START_FIELDS) delete record[field];
    for (const field of START_FIELDS) if (entry.record[field] !== undefined) Object.assign(record, { [field]: entry.record[field] });
    entry.history.push(structuredClone(events));
    this.cases.update(entry, record);
    return 'committed';
  }

  /** The append wrote the state the queries read already: no projection to write, ever. */
  projects(_previous: CaseState, _next: CaseState): boolean {
    return false;
  }

  async writeProjection(_previous: CaseState, _next: CaseState): Promise<boolean> {
    return false;
  }

  async listCases(query: CaseQuery): Promise<{ cases: CaseSummary[]; nextCursor?: string }> {
    const matches = (record: CaseRecord): boolean => matchesFilter(record, query) && (query.startedBy === undefined || record.startedBy === query.startedBy);
    const page: CaseRecord[] = [];
    let more = false;
    for (const { record } of this.cases.newestFirst(query.cursor === undefined ? undefined : decodeCursor(query.cursor))) {
      if (!matches(record)) continue;
      if (page.length === query.limit) {
        more = true;
        break;
      }
      page.push(record);
    }
    const last = page.at(-1);
    return {
      cases: page.map((record) => ({
        id: record.id,
        workflow: record.workflow,
        version: record.version,
        status: record.status,
        createdAt: record.createdAt,
        updatedAt: record.updatedAt,
        ...(record.finishedAt === undefined ? {} : { finishedAt: record.finishedAt }),
        ...(record.error ? { error: structuredClone(record.error) } : {}),
      })),
      ...(more && last ? { nextCursor: encodeCursor(last.id) } : {}),
    };
  }

  async readTrace(caseId: string): Promise<TraceEvent[]> {
    const entry = this.cases.get(caseId);
    if (!entry) return [];
    return structuredClone([...entry.createdTrace, ...entry.history.flat()]).sort((a, b) => a.seq - b.seq);
  }

  async findStaleCases(before: number, limit: number, afterId?: string): Promise<CaseRecord[]> {
    const found: CaseEntry[] = [];
    for (const entry of this.cases.openCases()) {
      if (entry.record.updatedAt < before && (afterId === undefined || entry.record.id > afterId)) found.push(entry);
    }
    return found
      .sort(byId)
      .slice(0, limit)
      .map((entry) => structuredClone(entry.record));
  }

  async findChildren(caseId: string): Promise<Array<{ id: string; status: CaseStatus; parent?: CaseState['parent'] }>> {
    return this.cases.childrenOf(caseId).map(({ record }) => ({ id: record.id, status: record.status, ...(record.parent ? { parent: { ...record.parent } } : {}) }));
  }

  async findExpiredCases(now: number, limit: number): Promise<Array<{ id: string }>> {
    const found: CaseRecord[] = [];
    for (const { record } of this.cases.openCases()) if (record.deadlineAt <= now) found.push(record);
    return found
      .sort((a, b) => a.deadlineAt - b.deadlineAt)
      .slice(0, limit)
      .map((record) => ({ id: record.id }));
  }

  async countByStatus(): Promise<Partial<Record<CaseStatus, number>>> {
    return this.cases.countByStatus();
  }

  async countCases(filter: CaseFilter, max: number): Promise<{ total: number; byStatus: Partial<Record<CaseStatus, number>> }> {
    const byStatus: Partial<Record<CaseStatus, number>> = {};
    let total = 0;
    for (const { record } of this.cases.newestFirst()) {
      if (total >= max) break;
      if (!matchesFilter(record, filter)) continue;
      byStatus[record.status] = (byStatus[record.status] ?? 0) + 1;
      total += 1;
    }
    return { total, byStatus };
  }

  // --- bulk operations ---

  insertBulkOperation(operation: BulkOperation): Promise<void> {
    return this.bulk.insert(operation);
  }

  getBulkOperation(id: string): Promise<BulkOperation | undefined> {
    return this.bulk.get(id);
  }

  saveBulkPage(operation: BulkOperation, results: readonly BulkCaseResult[]): Promise<'saved' | 'taken'> {
    return this.bulk.savePage(operation, results);
  }

  stopBulkOperation(id: string, at: number): Promise<BulkOperation | undefined> {
    return this.bulk.stop(id, at);
  }

  readBulkResults(id: string, page: number): Promise<BulkCaseResult[] | undefined> {
    return this.bulk.readResults(id, page);
  }

  findStalledBulkOperations(before: number, limit: number): Promise<BulkOperation[]> {
    return this.bulk.findStalled(before, limit);
  }

  async findStuckCases(limit: number): Promise<{ count: number; cases: CaseRecord[] }> {
    const stuck = Array.from(this.cases.openCases(), (entry) => entry.record).filter((record) => record.stuck !== undefined);
    const longest = stuck.sort((a, b) => (a.stuck?.since ?? 0) - (b.stuck?.since ?? 0)).slice(0, Math.max(0, limit));
    return { count: stuck.length, cases: longest.map((record) => structuredClone(record)) };
  }

  async deleteFinishedCases(before: number, limit: number): Promise<number> {
    const doomed: CaseEntry[] = [];
    for (const entry of this.cases.finishedCases()) {
      if (doomed.length >= limit) break;
      if (entry.record.finishedAt !== undefined && entry.record.finishedAt < before) doomed.push(entry);
    }
    this.cases.remove(doomed);
    return doomed.length;
  }

  // --- keys ---

  async insertKey(key: StoredKey): Promise<void> {
    if (this.keys.has(key.id)) throw new Error(`API key ${key.id} already exists`);
    // As on MongoDB, a key is stored unrevoked.
    const { revokedAt: _revokedAt, ...stored } = structuredClone(key);
    this.keys.set(key.id, stored);
  }

  async getKey(id: string): Promise<StoredKey | undefined> {
    const key = this.keys.get(id);
    return key && structuredClone(key);
  }

  async listKeys(): Promise<StoredKey[]> {
    return structuredClone([...this.keys.values()]).sort((a, b) => a.createdAt - b.createdAt);
  }

  async revokeKey(id: string, at: number): Promise<boolean> {
    const key = this.keys.get(id);
    if (!key) return false;
    key.revokedAt = at;
    return true;
  }
}
