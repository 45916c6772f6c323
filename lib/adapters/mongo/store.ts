import { BSON, MongoClient, MongoServerError, type Collection, type Db, type MongoClientOptions } from 'mongodb';
import { GroupCommit } from '../../concurrency/group-commit.js';
import type { BulkCaseResult, BulkOperation, CaseFilter } from '../../core/bulk.js';
import type { WorkflowDefinition } from '../../core/definition.js';
import { ErrorCode } from '../../core/error-codes.js';
import { CaseNotCommittableError, WorkfleetError } from '../../core/errors.js';
import type { CaseState, CaseStatus, TraceEvent } from '../../core/state.js';
import type { CaseQuery, CaseRead, CaseRecord, CaseSummary, CreateResult, Store, StoredKey, StoredWorkflow, WorkflowSummary } from '../../ports/store.js';
import {
  applyChanges,
  caseChanges,
  changesProjection,
  decodeCase,
  decodeTrace,
  encodeCase,
  encodeTrace,
  projectionUpdate,
  type CaseDocument,
  type HistoryDocument,
  type KeyDocument,
  type WorkflowDocument,
} from './documents.js';
import { DUPLICATE_KEY, writeErrorsByIndex } from './bulk.js';
import { QueriedOpenCases, RegisteredOpenCases, type OpenCaseDocument, type OpenCases } from './open-cases.js';
import { CaseListing } from './case-listing.js';
import { MongoBulkOperations, type BulkOperationDocument, type BulkResultsDocument } from './bulk-operations.js';
import { MongoKeys } from './keys.js';
import { Retention } from './retention.js';
import { probeServerFeatures, type ServerFeatures } from './server-features.js';
import { MongoWorkflows } from './workflows.js';
import { upgradeIdempotencyKeys } from './idempotency-upgrade.js';
import { keyExpired, scopedKey } from '../../core/idempotency.js';

/**
 * Case documents one batch of projections updates at once (so at most twice this many per
 * process, with two batches in flight). Kept small on purpose: FerretDB v1 deadlocks when as many
 * updates run at once as it has PostgreSQL connections (an update holds one while it waits
 * for another), and a pool of 12 is what the tests give it.
 */
const UPDATES_AT_ONCE = 2;

/**
 * The largest document MongoDB (and FerretDB) stores. A history entry over it is refused before
 * it is sent: the driver would otherwise fail the whole batch it is in, other cases' commits too.
 */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** Inserts of a case whose idempotency key was taken, each after releasing a key whose window was over. */
const KEY_RELEASE_ATTEMPTS = 3;

/** History entries looked up by `_id` at once where the server answers nothing else from an index. */
const HISTORY_LOOKUPS_AT_ONCE = 8;

export interface MongoStoreOptions {
  /** mongodb:// URL with the database in its path. */
  url: string;
  /** Driver options, e.g. timeouts for tests. */
  client?: MongoClientOptions;
  /**
   * Batches of commits (and of case inserts, and of projections) written to the database at
   * once, a batch of commits or inserts one insertMany for all the cases in it. Default 2: one
   * batch on the wire while the next fills.
   */
  commitsInFlight?: number;
}

interface Commit {
  previous: CaseState;
  next: CaseState;
  events: readonly TraceEvent[];
}

/** A case document to write as the projection of `next`; `previous` is what it held (for the open-case registry). */
interface Projection {
  previous: CaseState;
  next: CaseState;
}

/**
 * The Store port on MongoDB (or FerretDB): single-document atomic writes only (no transactions),
 * over the collections workflows, cases, history (the case's committed transitions, its trace
 * with them), open_cases, api_keys, bulk_operations, bulk_results, retention and migrations.
 */
export class MongoStore implements Store {
  private readonly client: MongoClient;
  private readonly db: Db;
  private readonly workflows: Collection<WorkflowDocument>;
  private readonly cases: Collection<CaseDocument>;
  private readonly history: Collection<HistoryDocument>;
  private readonly workflowStore: MongoWorkflows;
  private readonly keyStore: MongoKeys;
  private readonly openCaseRegistry: Collection<OpenCaseDocument>;
  /** Until `init` has asked the server: MongoDB's answers. */
  private features: ServerFeatures = { ferretdb: false, filtersBeyondId: true };
  private openCases: OpenCases;
  private readonly retention: Retention;
  private readonly listing: CaseListing;
  private readonly bulk: MongoBulkOperations;
  private readonly commits: GroupCommit<Commit, 'committed' | 'conflict'>;
  private readonly inserts: GroupCommit<CaseDocument, 'created' | 'duplicate'>;
  private readonly projections: GroupCommit<Projection, boolean>;

  constructor(options: MongoStoreOptions) {
    this.client = new MongoClient(options.url, {
      serverSelectionTimeoutMS: 5_000,
      ...options.client,
    });
    this.db = this.client.db();
    this.workflows = this.db.collection('workflows');
    this.cases = this.db.collection('cases');
    this.history = this.db.collection('history');
    this.workflowStore = new MongoWorkflows(this.workflows);
    this.keyStore = new MongoKeys(this.db.collection<KeyDocument>('api_keys'));
    this.openCaseRegistry = this.db.collection('open_cases');
    this.openCases = new QueriedOpenCases(this.cases);
    this.listing = new CaseListing(this.cases);
    this.bulk = new MongoBulkOperations(this.db.collection<BulkOperationDocument>('bulk_operations'), this.db.collection<BulkResultsDocument>('bulk_results'));
    this.retention = new Retention(this.cases, this.history, this.db.collection('retention'));
    const inFlight = { maxInFlight: options.commitsInFlight ?? 2 };
    this.commits = new GroupCommit((batch) => this.writeCommits(batch), inFlight);
    this.inserts = new GroupCommit((batch) => this.insertCases(batch), inFlight);
    this.projections = new GroupCommit((batch) => this.writeProjections(batch), inFlight);
  }

  async init(): Promise<void> {
    await this.client.connect();
    // Unique indexes first: they keep the store's guarantees on every server (and create the collections the probe explains).
    await Promise.all([
      this.workflows.createIndex({ name: 1, version: -1 }, { unique: true, name: 'name_version' }),
      this.workflows.createIndex({ name: 1, hash: 1 }, { unique: true, name: 'name_hash' }),
      // Unique per scope: the same key from two producers is two keys (lib/core/idempotency.ts).
      this.cases.createIndex({ scopedIdempotencyKey: 1 }, { unique: true, sparse: true, name: 'scoped_idempotency_key' }),
      // `_id` (case:revision) is what makes commits unique; this index serves reading a trace.
      this.history.createIndex({ caseId: 1, revision: 1 }, { unique: true, name: 'case_revision' }),
    ]);
    await upgradeIdempotencyKeys(this.db, this.cases);
    this.features = await probeServerFeatures(this.db, 'cases');
    // FerretDB v1 never reads its backend through these (it filters with `@>` on PostgreSQL, by
    // `_id` alone on SQLite, and sorts by itself): there they would only slow every write down.
    // Its owner adds the backend indexes its queries do use (lib/local-servers/ferretdb-indexes.ts).
    if (!this.features.ferretdb) {
      await Promise.all([
        this.cases.createIndex({ status: 1, updatedAt: 1 }, { name: 'status_updated' }),
        this.cases.createIndex({ status: 1, deadlineAt: 1 }, { name: 'status_deadline' }),
        this.cases.createIndex({ workflow: 1, _id: -1 }, { name: 'workflow_newest' }),
        this.cases.createIndex({ status: 1, _id: -1 }, { name: 'status_newest' }),
        this.cases.createIndex({ startedBy: 1, _id: -1 }, { name: 'started_by_newest' }),
        this.cases.createIndex({ finishedDay: 1 }, { name: 'finished_day', sparse: true }),
        this.cases.createIndex({ businessKeys: 1, _id: -1 }, { name: 'business_keys_newest' }),
        this.cases.createIndex({ createdAt: -1 }, { name: 'created_at' }),
        this.cases.createIndex({ 'parent.caseId': 1 }, { name: 'parent', sparse: true }),
        this.cases.createIndex({ 'stuck.since': 1 }, { name: 'stuck_since', sparse: true }),
      ]);
    }
    if (!this.features.filtersBeyondId) {
      // Creates the collection, so that whoever owns the database can index its backend table.
      await this.openCaseRegistry.createIndex({ createdAt: 1 }, { name: 'created_at' });
      this.openCases = new RegisteredOpenCases(this.cases, this.openCaseRegistry);
    }
  }

  /** What `init` found the server can do (tests and the benchmark report it). */
  get serverFeatures(): Readonly<ServerFeatures> {
    return this.features;
  }

  /**
   * Writes the projection of `state` over a case document that is behind it (at an older
   * revision). One conditional update where the server filters; where it answers only `_id`
   * lookups (FerretDB on SQLite) a conditional filter would read every case, so the revision is
   * checked by a lookup first. That is no weaker there (FerretDB v1 itself reads, checks and
   * writes in separate steps), and a projection that loses such a race to an older one costs
   * nothing but a later catch-up: the history insert decided the revision, and every read folds
   * the entries the document lacks.
   */
  private async project(state: CaseState): Promise<boolean> {
    const update = projectionUpdate(state);
    if (this.features.filtersBeyondId) return (await this.cases.updateOne({ _id: state.id, revision: { $lt: state.revision } }, update)).matchedCount === 1;
    const current = await this.cases.findOne({ _id: state.id }, { projection: { revision: 1 } });
    if (current === null || current.revision >= state.revision) return false;
    return (await this.cases.updateOne({ _id: state.id }, update)).matchedCount === 1;
  }

  async ping(timeoutMs: number): Promise<void> {
    await this.db.command({ ping: 1 }, { timeoutMS: timeoutMs });
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  // --- workflows and keys: their own collections, their own classes ---

  saveWorkflow(definition: WorkflowDefinition, hash: string, now: number): Promise<{ workflow: StoredWorkflow; created: boolean }> {
    return this.workflowStore.saveWorkflow(definition, hash, now);
  }

  getWorkflow(name: string, version?: number): Promise<StoredWorkflow | undefined> {
    return this.workflowStore.getWorkflow(name, version);
  }

  listWorkflows(): Promise<WorkflowSummary[]> {
    return this.workflowStore.listWorkflows();
  }

  listVersions(name: string): Promise<Array<{ version: number; hash: string; createdAt: number }>> {
    return this.workflowStore.listVersions(name);
  }

  insertKey(key: StoredKey): Promise<void> {
    return this.keyStore.insertKey(key);
  }

  getKey(id: string): Promise<StoredKey | undefined> {
    return this.keyStore.getKey(id);
  }

  listKeys(): Promise<StoredKey[]> {
    return this.keyStore.listKeys();
  }

  revokeKey(id: string, at: number): Promise<boolean> {
    return this.keyStore.revokeKey(id, at);
  }

  // --- cases ---

  async createCase(record: CaseRecord, events: readonly TraceEvent[]): Promise<CreateResult> {
    const doc = encodeCase(record, events);
    const scoped = record.idempotencyKey === undefined ? undefined : scopedKey(record.idempotencyScope, record.idempotencyKey);
    for (let attempt = 1; ; attempt++) {
      if ((await this.inserts.submit(doc)) === 'created') return { created: true };
      const existing = scoped === undefined ? null : await this.cases.findOne({ scopedIdempotencyKey: scoped });
      if (existing && !keyExpired({ idempotencyExpiresAt: existing.idempotencyExpiresAt?.getTime() }, record.createdAt)) {
        // At its latest revision: the replay carries out the work the case still has under way.
        await this.foldHistory(existing);
        return { created: false, existing: decodeCase(existing) };
      }
      // The key is free again (another start released it and has not inserted yet), or its window
      // is over: released, conditionally (a racer may have released it first), then inserted again.
      // Neither lasts: a released key is taken by the first insert, whose window has just begun.
      if (scoped === undefined || attempt >= KEY_RELEASE_ATTEMPTS) break;
      if (existing) await this.cases.updateOne({ _id: existing._id, scopedIdempotencyKey: scoped }, { $unset: { scopedIdempotencyKey: '' }, $set: { releasedIdempotencyKey: scoped } });
    }
    // Only a case id taken by another case (ids are UUIDv7: practically never); a new id will do.
    throw new WorkfleetError(ErrorCode.caseIdTaken, `case id ${record.id} is already taken`);
  }

  /** New cases of many callers in one unordered insertMany; a duplicate (idempotency key) fails only its own document. */
  private async insertCases(docs: readonly CaseDocument[]): Promise<Array<'created' | 'duplicate' | Error>> {
    // Registered first: a crash in between leaves an entry without a case, which is cleaned up, never a case nobody watches.
    await this.openCases.register(docs);
    try {
      await this.cases.insertMany(docs, { ordered: false });
      return docs.map(() => 'created' as const);
    } catch (error) {
      const failed = writeErrorsByIndex(error);
      if (!failed) throw error;
      await this.openCases.unregisterFailed([...failed.keys()].flatMap((index) => docs[index]?._id ?? []));
      return docs.map((_, index) => {
        const problem = failed.get(index);
        if (!problem) return 'created';
        return problem.code === DUPLICATE_KEY ? 'duplicate' : new MongoServerError({ message: problem.message, errmsg: problem.message, code: problem.code });
      });
    }
  }

  /** The case as its history says: the document with the entries committed since it was written folded in. */
  async getCase(id: string): Promise<CaseRecord | undefined> {
    const doc = await this.cases.findOne({ _id: id });
    if (!doc) return undefined;
    await this.foldHistory(doc);
    return decodeCase(doc);
  }

  /** The case document as stored and the case as its history says (see CaseRead). */
  async readCase(id: string): Promise<CaseRead | undefined> {
    const doc = await this.cases.findOne({ _id: id });
    if (!doc) return undefined;
    const entries = await this.historyAfter(doc._id, doc.revision, { field: 'changes' });
    if (entries.length === 0) {
      const record = decodeCase(doc);
      return { record, projected: record };
    }
    // Decoded before folding: decoding copies every object a change can write into (the case, its steps, their items).
    const projected = decodeCase(doc);
    for (const entry of entries) applyChanges(doc, entry.changes);
    return { record: decodeCase(doc), projected };
  }

  /** Applies to `doc`, in place, the history entries committed after its revision. */
  private async foldHistory(doc: CaseDocument): Promise<void> {
    const entries = await this.historyAfter(doc._id, doc.revision, { field: 'changes' });
    for (const entry of entries) applyChanges(doc, entry.changes);
  }

  appendTransition(previous: CaseState, next: CaseState, events: readonly TraceEvent[]): Promise<'committed' | 'conflict'> {
    return this.commits.submit({ previous, next, events });
  }

  /**
   * Group commit of transitions of many cases: one unordered insertMany of their history
   * entries. Each insert alone decides its case's revision (a duplicate `_id` is that case's
   * conflict and nobody else's) and is the transition's one durable write.
   */
  private async writeCommits(batch: readonly Commit[]): Promise<Array<'committed' | 'conflict' | Error>> {
    const entries = batch.map(({ previous, next, events }) => {
      const entry: HistoryDocument = {
        _id: `${next.id}:${next.revision}`,
        caseId: next.id,
        revision: next.revision,
        at: new Date(next.updatedAt),
        events: events.map(encodeTrace),
        changes: caseChanges(previous, next),
      };
      return entry;
    });
    const results: Array<'committed' | 'conflict' | Error> = batch.map(() => 'committed');
    // Indexes (in the batch) of the entries sent: those the store can take.
    const sent: number[] = [];
    entries.forEach((entry, index) => {
      const bytes = BSON.calculateObjectSize(entry);
      if (bytes <= MAX_DOCUMENT_BYTES) sent.push(index);
      else results[index] = new CaseNotCommittableError(entry.caseId, `its next history entry is larger than the store's document limit of 16 MiB`, { bytes });
    });
    try {
      if (sent.length > 0)
        await this.history.insertMany(
          sent.map((index) => entries[index] as HistoryDocument),
          { ordered: false },
        );
    } catch (error) {
      const failed = writeErrorsByIndex(error);
      if (!failed) throw error;
      for (const [at, problem] of failed) {
        const index = sent[at] ?? at;
        // A document the server refuses (other than for its `_id`) it would refuse again: say so, with the server's words.
        results[index] =
          problem.code === DUPLICATE_KEY
            ? 'conflict'
            : new CaseNotCommittableError(
                batch[index]?.next.id ?? '?',
                `the store refused its next history entry: ${problem.message}`,
                { code: problem.code },
                new MongoServerError({ message: problem.message, errmsg: problem.message, code: problem.code }),
              );
      }
    }
    return results;
  }

  /**
   * The case document is a projection, written only for transitions that change what queries
   * filter on (status, deadline, stuck mark), of a finished case, or at every PROJECT_EVERY
   * revisions (`changesProjection`): a step's end that schedules the next step costs its
   * history entry alone, and readers fold what the document lacks.
   */
  projects(previous: CaseState, next: CaseState): boolean {
    return changesProjection(previous, next);
  }

  writeProjection(previous: CaseState, next: CaseState): Promise<boolean> {
    return this.projections.submit({ previous, next });
  }

  /**
   * Projections of many cases. One updateOne each, a few at a time, rather than one bulkWrite:
   * FerretDB v1 runs a bulk update's statements one after another (slower than separate calls,
   * and it stalled at a few hundred), while separate calls spread over its connections. The cap
   * keeps a large batch from taking every connection of FerretDB's backend pool (see
   * UPDATES_AT_ONCE). A failed update fails its own projection only.
   */
  private async writeProjections(batch: readonly Projection[]): Promise<Array<boolean | Error>> {
    const results: Array<boolean | Error> = batch.map(() => false);
    const pending = [...batch.keys()];
    const written: Projection[] = [];
    const projectNext = async (): Promise<void> => {
      for (let index = pending.shift(); index !== undefined; index = pending.shift()) {
        const projection = batch[index] as Projection;
        try {
          results[index] = await this.project(projection.next);
          if (results[index] === true) written.push(projection);
        } catch (error) {
          results[index] = error instanceof Error ? error : new Error(String(error));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(UPDATES_AT_ONCE, batch.length) }, projectNext));
    try {
      await this.openCases.follow(written);
    } catch {
      // The registry lags; the periodic checks compare each entry with its case and mend it.
    }
    return results;
  }

  async readTrace(caseId: string): Promise<TraceEvent[]> {
    const created = await this.cases.findOne({ _id: caseId }, { projection: { createdTrace: 1, revision: 1 } });
    const entries = await this.historyAfter(caseId, 0, { field: 'events', known: created?.revision ?? 0, batch: HISTORY_LOOKUPS_AT_ONCE });
    const events = [...(created?.createdTrace ?? []), ...entries.flatMap((entry) => entry.events)].map(decodeTrace);
    return events.sort((a, b) => a.seq - b.seq);
  }

  /**
   * A case's history entries committed after `revision`, in order and without gaps, with one of
   * their fields. Where the server filters, one query by `caseId`. Where it answers only `_id`
   * lookups, entry by entry (`<case>:<revision>`): the `known` ones (up to the document's
   * revision) HISTORY_LOOKUPS_AT_ONCE at a time, then `batch` at a time until one is missing
   * (the document lags its history; a fold usually finds nothing, so it looks one at a time).
   */
  private async historyAfter(caseId: string, revision: number, read: { field: 'changes' | 'events'; known?: number; batch?: number }): Promise<HistoryDocument[]> {
    const projection = { [read.field]: 1, revision: 1 };
    const entries: HistoryDocument[] = [];
    if (this.features.filtersBeyondId) {
      const found = await this.history
        .find({ caseId, revision: { $gt: revision } }, { projection })
        .sort({ revision: 1 })
        .toArray();
      for (const entry of found) {
        if (entry.revision !== revision + entries.length + 1) break;
        entries.push(entry);
      }
      return entries;
    }
    for (let next = revision + 1, known = read.known ?? 0; ;) {
      const size = known > 0 ? Math.min(known, HISTORY_LOOKUPS_AT_ONCE) : (read.batch ?? 1);
      const found = await Promise.all(Array.from({ length: size }, (_, index) => this.history.findOne({ _id: `${caseId}:${next + index}` }, { projection })));
      next += size;
      known -= size;
      for (const entry of found) {
        if (!entry) return entries;
        entries.push(entry);
      }
    }
  }

  async findStaleCases(before: number, limit: number, afterId?: string): Promise<CaseRecord[]> {
    return (await this.openCases.findStale(before, limit, afterId)).map(decodeCase);
  }

  listCases(query: CaseQuery): Promise<{ cases: CaseSummary[]; nextCursor?: string }> {
    return this.listing.listCases(query);
  }

  findChildren(caseId: string): Promise<Array<{ id: string; status: CaseStatus; parent?: CaseState['parent'] }>> {
    return this.listing.findChildren(caseId);
  }

  async findStuckCases(limit: number): Promise<{ count: number; cases: CaseRecord[] }> {
    const { count, cases } = await this.openCases.findStuck(limit);
    return { count, cases: cases.map(decodeCase) };
  }

  async findExpiredCases(now: number, limit: number): Promise<Array<{ id: string }>> {
    return (await this.openCases.findExpired(now, limit)).map((id) => ({ id }));
  }

  deleteFinishedCases(before: number, limit: number): Promise<number> {
    return this.retention.deleteFinishedBefore(before, limit);
  }

  countCases(filter: CaseFilter, max: number): Promise<{ total: number; byStatus: Partial<Record<CaseStatus, number>> }> {
    return this.listing.countCases(filter, max);
  }

  // --- bulk operations: their own collections, their own class ---

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

  async countByStatus(): Promise<Partial<Record<CaseStatus, number>>> {
    const rows = await this.cases.aggregate<{ _id: CaseStatus; count: number }>([{ $group: { _id: '$status', count: { $sum: 1 } } }]).toArray();
    return Object.fromEntries(rows.map((row) => [row._id, row.count]));
  }
}
