import { isTerminalCase, type CaseStatus, type TraceEvent } from '../../core/state.js';
import { scopedKey } from '../../core/idempotency.js';
import type { CaseRecord } from '../../ports/store.js';

/** The unique idempotency key of a record, as the MongoDB adapter's index has it: scope and key. */
const keyOf = (record: CaseRecord): string | undefined => (record.idempotencyKey === undefined ? undefined : scopedKey(record.idempotencyScope, record.idempotencyKey));

/** One stored case: its latest state, the trace of its creation, and its committed history. */
export interface CaseEntry {
  record: CaseRecord;
  createdTrace: readonly TraceEvent[];
  /** The trace events of each committed revision: revision r is at index r - 1. */
  history: Array<readonly TraceEvent[]>;
}

/**
 * The cases of a MemoryStore and the indexes its queries use, kept in step on every write:
 * open cases apart from finished ones (the periodic queries look at open cases only), ids in
 * ascending order (listing, newest first), idempotency keys by scope, children by parent, and counts by
 * status. It holds what it is given; copying at the boundary is the store's job.
 */
export class CaseTable {
  private readonly entries = new Map<string, CaseEntry>();
  private readonly open = new Map<string, CaseEntry>();
  private readonly finished = new Map<string, CaseEntry>();
  private readonly keys = new Map<string, CaseEntry>();
  private readonly children = new Map<string, Set<string>>();
  private readonly counts = new Map<CaseStatus, number>();
  /** Every case id, ascending. Ids are UUIDv7, so a new one almost always goes at the end. */
  private ids: string[] = [];

  get(id: string): CaseEntry | undefined {
    return this.entries.get(id);
  }

  /** The case `record`'s idempotency key (in its scope) already made. */
  byIdempotencyKey(record: CaseRecord): CaseEntry | undefined {
    const key = keyOf(record);
    return key === undefined ? undefined : this.keys.get(key);
  }

  /** Frees the idempotency key `entry` holds (its window is over); the case keeps it as a record. */
  releaseKey(entry: CaseEntry): void {
    const key = keyOf(entry.record);
    if (key !== undefined && this.keys.get(key) === entry) this.keys.delete(key);
  }

  insert(entry: CaseEntry): void {
    const { record } = entry;
    this.entries.set(record.id, entry);
    const key = keyOf(record);
    if (key !== undefined) this.keys.set(key, entry);
    if (record.parent) {
      const siblings = this.children.get(record.parent.caseId) ?? new Set<string>();
      siblings.add(record.id);
      this.children.set(record.parent.caseId, siblings);
    }
    const at = this.ids.length === 0 || (this.ids.at(-1) as string) < record.id ? this.ids.length : this.firstAtOrAfter(record.id);
    this.ids.splice(at, 0, record.id);
    this.track(entry, undefined);
  }

  /** Replaces the state of a stored case (a committed transition). */
  update(entry: CaseEntry, record: CaseRecord): void {
    const before = entry.record.status;
    entry.record = record;
    this.track(entry, before);
  }

  remove(doomed: readonly CaseEntry[]): void {
    if (doomed.length === 0) return;
    const gone = new Set<string>();
    for (const entry of doomed) {
      const { record } = entry;
      gone.add(record.id);
      this.entries.delete(record.id);
      this.open.delete(record.id);
      this.finished.delete(record.id);
      const key = keyOf(record);
      if (key !== undefined && this.keys.get(key) === entry) this.keys.delete(key);
      if (record.parent) {
        const siblings = this.children.get(record.parent.caseId);
        siblings?.delete(record.id);
        if (siblings?.size === 0) this.children.delete(record.parent.caseId);
      }
      this.count(record.status, -1);
    }
    this.ids = this.ids.filter((id) => !gone.has(id));
  }

  /** Cases not in a terminal status, in no particular order. */
  openCases(): IterableIterator<CaseEntry> {
    return this.open.values();
  }

  /** Cases in a terminal status, in no particular order. */
  finishedCases(): IterableIterator<CaseEntry> {
    return this.finished.values();
  }

  childrenOf(caseId: string): CaseEntry[] {
    return [...(this.children.get(caseId) ?? [])].flatMap((id) => this.entries.get(id) ?? []);
  }

  /** Cases by id, highest first, starting below `belowId` when given. */
  *newestFirst(belowId?: string): Generator<CaseEntry> {
    for (let index = (belowId === undefined ? this.ids.length : this.firstAtOrAfter(belowId)) - 1; index >= 0; index--) {
      const entry = this.entries.get(this.ids[index] as string);
      if (entry) yield entry;
    }
  }

  countByStatus(): Partial<Record<CaseStatus, number>> {
    return Object.fromEntries(this.counts);
  }

  /** Files a case under its current status, having been under `before` (undefined: new). */
  private track(entry: CaseEntry, before: CaseStatus | undefined): void {
    const { id, status } = entry.record;
    if (before === status) return;
    if (before !== undefined) this.count(before, -1);
    this.count(status, 1);
    if (isTerminalCase(status)) {
      this.open.delete(id);
      this.finished.set(id, entry);
    } else {
      this.finished.delete(id);
      this.open.set(id, entry);
    }
  }

  private count(status: CaseStatus, by: number): void {
    const count = (this.counts.get(status) ?? 0) + by;
    if (count > 0) this.counts.set(status, count);
    else this.counts.delete(status);
  }

  /** The index of the first id not below `id` (binary search). */
  private firstAtOrAfter(id: string): number {
    let low = 0;
    let high = this.ids.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.ids[middle] as string) < id) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
