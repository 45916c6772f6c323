import type { Collection, Filter } from 'mongodb';
import { isTerminalCase, type CaseState, type CaseStatus } from '../../core/state.js';
import { deleteByIds, bulkWriteInChunks, insertIgnoringDuplicates } from './bulk.js';
import type { CaseDocument } from './documents.js';

/**
 * How the store finds open cases for its periodic work (deadlines, the reconciler, stuck
 * detection), which must cost what the open cases cost, not what every case ever stored costs.
 * Two ways, chosen by what the server can filter (see server-features.ts):
 * - `QueriedOpenCases`: status equalities on the cases collection, served by its indexes
 *   (MongoDB; FerretDB on PostgreSQL with the backend indexes of lib/local-servers/ferretdb-indexes.ts).
 * - `RegisteredOpenCases`: a small `open_cases` collection with one entry per open case, for a
 *   server that answers nothing but `_id` lookups from an index (FerretDB on SQLite): reading the
 *   whole registry reads only open cases, and each case is then fetched by `_id`.
 */
export interface OpenCases {
  /** Before new case documents are inserted. */
  register(docs: readonly CaseDocument[]): Promise<void>;
  /** New cases whose insert failed: forgotten unless a case with the id exists after all. */
  unregisterFailed(ids: readonly string[]): Promise<void>;
  /** After committed transitions were applied to their case documents. */
  follow(commits: ReadonlyArray<{ previous: CaseState; next: CaseState }>): Promise<void>;
  /** Open cases not updated since `before`, by id, after `afterId`. */
  findStale(before: number, limit: number, afterId?: string): Promise<CaseDocument[]>;
  /** Open cases whose deadline is at or before `now`, soonest first. */
  findExpired(now: number, limit: number): Promise<string[]>;
  /** Open cases marked stuck: how many, and the longest-stuck `limit` of them. */
  findStuck(limit: number): Promise<{ count: number; cases: CaseDocument[] }>;
}

/**
 * Open statuses, queried one equality at a time rather than with `$in`: MongoDB serves either
 * from the `status_*` indexes, but FerretDB v1 passes only equalities down to its backend and
 * would otherwise read and decode every case, finished ones included, on each periodic check.
 */
const OPEN_STATUSES = ['pending', 'running', 'waiting'] as const satisfies readonly CaseStatus[];

const byId = (a: { _id: string }, b: { _id: string }) => (a._id < b._id ? -1 : a._id > b._id ? 1 : 0);

export class QueriedOpenCases implements OpenCases {
  constructor(private readonly cases: Collection<CaseDocument>) {}

  async register(): Promise<void> {}
  async unregisterFailed(): Promise<void> {}
  async follow(): Promise<void> {}

  async findStale(before: number, limit: number, afterId?: string): Promise<CaseDocument[]> {
    const pages = await Promise.all(
      OPEN_STATUSES.map((status) => {
        const filter: Filter<CaseDocument> = { status, updatedAt: { $lt: new Date(before) } };
        if (afterId !== undefined) filter._id = { $gt: afterId };
        return this.cases.find(filter).sort({ _id: 1 }).limit(limit).toArray();
      }),
    );
    return pages.flat().sort(byId).slice(0, limit);
  }

  async findExpired(now: number, limit: number): Promise<string[]> {
    const found = await Promise.all(
      OPEN_STATUSES.map((status) =>
        this.cases
          .find({ status, deadlineAt: { $lte: new Date(now) } }, { projection: { _id: 1, deadlineAt: 1 } })
          .sort({ deadlineAt: 1 })
          .limit(limit)
          .toArray(),
      ),
    );
    return found
      .flat()
      .sort((a, b) => a.deadlineAt.getTime() - b.deadlineAt.getTime())
      .slice(0, limit)
      .map((doc) => doc._id);
  }

  async findStuck(limit: number): Promise<{ count: number; cases: CaseDocument[] }> {
    const perStatus = await Promise.all(OPEN_STATUSES.map((status) => this.cases.find({ status, stuck: { $exists: true } }).toArray()));
    const stuck = perStatus.flat().sort((a, b) => (a.stuck?.since ?? 0) - (b.stuck?.since ?? 0));
    return { count: stuck.length, cases: stuck.slice(0, limit) };
  }
}

/** One open case in the registry: what the periodic queries filter on, kept in step by the store. */
export interface OpenCaseDocument {
  _id: string;
  createdAt: Date;
  deadlineAt: Date;
  stuckSince?: number;
  /**
   * When the case finished, as its writer saw it. The entry stays until a scan of stale cases
   * finds the document still finished past the stale threshold (see `follow`).
   */
  finishedAt?: Date;
}

/** A finished case's entry is removed only once its document has been finished this long before the scan's `before`. */
const FINISHED_ENTRY_KEPT_MS = 30_000;

/** An entry whose case document is missing is an insert in flight for this long, then a crash's leftover. */
const MISSING_CASE_GRACE_MS = 60_000;
/** Case documents fetched by `_id` at once while checking registry entries. */
const LOOKUPS_AT_ONCE = 16;

export class RegisteredOpenCases implements OpenCases {
  constructor(
    private readonly cases: Collection<CaseDocument>,
    private readonly registry: Collection<OpenCaseDocument>,
  ) {}

  async register(docs: readonly CaseDocument[]): Promise<void> {
    await insertIgnoringDuplicates(
      this.registry,
      docs.filter((doc) => !isTerminalCase(doc.status)).map((doc) => entryOf(doc._id, doc.createdAt, doc.deadlineAt, doc.stuck)),
    );
  }

  async unregisterFailed(ids: readonly string[]): Promise<void> {
    const orphans: string[] = [];
    for (const id of ids) if (!(await this.cases.findOne({ _id: id }, { projection: { _id: 1 } }))) orphans.push(id);
    await deleteByIds(this.registry, orphans);
  }

  /**
   * A finished case keeps its entry, marked finished, rather than losing it at once: FerretDB v1
   * updates are not atomic, so a slower writer of an earlier revision (the committer of revision
   * n while another process catches the document up to n and commits n+1) can land after the
   * finishing update and put the document back to an open revision behind its history. The
   * entry is what keeps such a case where the reconciler looks (it catches the document up);
   * `findStale` removes it once the document is seen still finished past the stale threshold.
   */
  async follow(commits: ReadonlyArray<{ previous: CaseState; next: CaseState }>): Promise<void> {
    const changed: OpenCaseDocument[] = [];
    const reopened: OpenCaseDocument[] = [];
    for (const { previous, next } of commits) {
      if (isTerminalCase(next.status)) {
        if (!isTerminalCase(previous.status)) changed.push({ ...entryOf(next.id, new Date(next.createdAt), new Date(next.deadlineAt), undefined), finishedAt: new Date(next.finishedAt ?? next.updatedAt) });
      } else if (isTerminalCase(previous.status)) {
        // A failed case retried: its entry may be gone already, so it is written anew.
        reopened.push(entryOf(next.id, new Date(next.createdAt), new Date(next.deadlineAt), next.stuck));
      } else if (previous.deadlineAt !== next.deadlineAt || previous.stuck !== next.stuck) {
        changed.push(entryOf(next.id, new Date(next.createdAt), new Date(next.deadlineAt), next.stuck));
      }
    }
    await Promise.all([this.rewrite(changed), this.rewrite(reopened, true)]);
  }

  async findStale(before: number, limit: number, afterId?: string): Promise<CaseDocument[]> {
    // A case created after `before` cannot have been idle since then: only older entries are candidates.
    const filter: Filter<OpenCaseDocument> = { createdAt: { $lt: new Date(before) } };
    if (afterId !== undefined) filter._id = { $gt: afterId };
    // A case that finished since `before` is not looked up yet: its document is checked (and its
    // entry removed if it stayed finished) once it has been finished for the stale threshold.
    const candidates = (await this.registry.find(filter).toArray()).filter((entry) => !(entry.finishedAt && entry.finishedAt.getTime() >= before)).sort(byId);
    // Whoever asks (the explorer asks for every open case, `before` = now), an entry stays for
    // a while after its case finished: the window in which a slower writer can put it back.
    return this.openCases(candidates, limit, (doc) => doc.updatedAt.getTime() < before, before - FINISHED_ENTRY_KEPT_MS);
  }

  async findExpired(now: number, limit: number): Promise<string[]> {
    const candidates = (await this.registry.find({ deadlineAt: { $lte: new Date(now) } }).toArray())
      .filter((entry) => entry.finishedAt === undefined)
      .sort((a, b) => a.deadlineAt.getTime() - b.deadlineAt.getTime());
    // The case document decides: an entry may lag behind a deadline that was moved.
    const expired = await this.openCases(candidates, limit, (doc) => doc.deadlineAt.getTime() <= now);
    return expired.map((doc) => doc._id);
  }

  async findStuck(limit: number): Promise<{ count: number; cases: CaseDocument[] }> {
    const candidates = (await this.registry.find({ stuckSince: { $exists: true } }).toArray()).sort((a, b) => (a.stuckSince ?? 0) - (b.stuckSince ?? 0));
    if (limit === 0) return { count: candidates.length, cases: [] };
    const cases = await this.openCases(candidates, candidates.length, (doc) => doc.stuck !== undefined);
    return { count: cases.length, cases: cases.slice(0, limit) };
  }

  /**
   * The case documents of `entries`, in their order, that are open and pass `keep`, up to
   * `limit`. Entries left behind by a crash (never inserted) are removed, entries of cases whose
   * documents were last updated (finished) before `finishedBefore` are removed, and entries that
   * lag behind their case are brought up to date on the way.
   */
  private async openCases(entries: readonly OpenCaseDocument[], limit: number, keep: (doc: CaseDocument) => boolean, finishedBefore?: number): Promise<CaseDocument[]> {
    const found: CaseDocument[] = [];
    const leftovers: string[] = [];
    const lagging: OpenCaseDocument[] = [];
    for (let from = 0; from < entries.length && found.length < limit; from += LOOKUPS_AT_ONCE) {
      const batch = entries.slice(from, from + LOOKUPS_AT_ONCE);
      const docs = await Promise.all(batch.map((entry) => this.cases.findOne({ _id: entry._id })));
      batch.forEach((entry, index) => {
        const doc = docs[index];
        if (!doc) {
          if (entry.createdAt.getTime() < Date.now() - MISSING_CASE_GRACE_MS) leftovers.push(entry._id);
          return;
        }
        if (isTerminalCase(doc.status)) {
          if (finishedBefore !== undefined && doc.updatedAt.getTime() < finishedBefore) leftovers.push(entry._id);
          return;
        }
        // Open after all (or again: its document was put back behind its history): no longer marked finished.
        if (doc.deadlineAt.getTime() !== entry.deadlineAt.getTime() || doc.stuck?.since !== entry.stuckSince || entry.finishedAt !== undefined) {
          lagging.push(entryOf(doc._id, doc.createdAt, doc.deadlineAt, doc.stuck));
        }
        if (keep(doc)) found.push(doc);
      });
    }
    await Promise.all([deleteByIds(this.registry, leftovers), this.rewrite(lagging)]);
    return found.slice(0, limit);
  }

  private async rewrite(entries: readonly OpenCaseDocument[], upsert = false): Promise<void> {
    await bulkWriteInChunks(
      this.registry,
      entries.map((entry) => ({ replaceOne: { filter: { _id: entry._id }, replacement: entry, upsert } })),
    );
  }
}

function entryOf(id: string, createdAt: Date, deadlineAt: Date, stuck: { since: number } | undefined): OpenCaseDocument {
  return { _id: id, createdAt, deadlineAt, ...(stuck ? { stuckSince: stuck.since } : {}) };
}
