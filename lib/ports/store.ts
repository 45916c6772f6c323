import type { Role } from '../core/auth.js';
import type { WorkflowDefinition } from '../core/definition.js';
import type { BulkCaseResult, BulkOperation, CaseFilter } from '../core/bulk.js';
import type { CaseState, CaseStatus, TraceEvent } from '../core/state.js';

/**
 * What the engine needs from its database. The MongoDB adapter implements it with
 * single-document atomic writes only (no multi-document transactions), so it also runs on
 * FerretDB; the contract suite in test/contract runs against it.
 */

export interface StoredWorkflow {
  name: string;
  version: number;
  /** Hash of the canonical definition: re-applying an identical one finds this version. */
  hash: string;
  definition: WorkflowDefinition;
  createdAt: number;
}

export interface WorkflowSummary {
  name: string;
  latestVersion: number;
  versions: number;
  description?: string;
  updatedAt: number;
}

export interface WorkflowStore {
  /**
   * Stores a definition as the next version of its name, unless a version with the same hash
   * exists: then that one is returned with `created: false`.
   */
  saveWorkflow(definition: WorkflowDefinition, hash: string, now: number): Promise<{ workflow: StoredWorkflow; created: boolean }>;
  /** The given version, or the latest when `version` is omitted. */
  getWorkflow(name: string, version?: number): Promise<StoredWorkflow | undefined>;
  listWorkflows(): Promise<WorkflowSummary[]>;
  listVersions(name: string): Promise<Array<{ version: number; hash: string; createdAt: number }>>;
}

/** A case as stored: its state plus how it was started. */
export interface CaseRecord extends CaseState {
  /** The API key that started it ("intake" for the intake queue, "anonymous" with auth off). */
  startedBy?: string;
  /** Names and values given at start to find the case by. */
  businessKeys?: Record<string, string>;
  /** The key as its producer sent it, or as the engine derived it. */
  idempotencyKey?: string;
  /**
   * Whose the key is (lib/core/idempotency.ts): a key is unique within its scope only. Set with
   * every key; missing only on a case stored before keys had scopes, until the store's upgrade.
   */
  idempotencyScope?: string;
  /** Hash of the start request, to tell a replay from a conflicting reuse of the key. */
  requestHash?: string;
  /**
   * When the key stops answering for this case (ms; the start's `idempotencyWindow` after its
   * creation): a start with it from then on makes a new case. None: it answers for ever.
   */
  idempotencyExpiresAt?: number;
}

export interface CaseSummary {
  id: string;
  workflow: string;
  version: number;
  status: CaseStatus;
  createdAt: number;
  updatedAt: number;
  /** When a finished case finished (lists show how long cases took). */
  finishedAt?: number;
  error?: CaseState['error'];
}

/** A page of the case listing: the filter, whose cases they are, and where the page starts. */
export interface CaseQuery extends CaseFilter {
  /** Only cases started by this key. */
  startedBy?: string;
  limit: number;
  /** Opaque: the `nextCursor` of the previous page. */
  cursor?: string;
}

export type CreateResult = { created: true } | { created: false; existing: CaseRecord };

/**
 * A case as read from the store: its latest committed state, and the state its document (what
 * the store's queries read) was last written at, which is older when the projection lags its
 * history (the same object when it does not).
 */
export interface CaseRead {
  record: CaseRecord;
  projected: CaseState;
}

/**
 * Cases are kept as a history of transitions plus a document that projects it. A transition is
 * committed by appending its history entry under a key unique per case and revision: the
 * insert is the one write every MongoDB-compatible store makes atomic (FerretDB v1 does not make
 * a conditional update atomic), so of two writers racing for a revision exactly one wins, and
 * it is the transition's only durable write. The case document is written at creation and,
 * by the engine's case repository (lib/engine/case-repository.ts), after a transition the store
 * says `projects` and when catching a lagging case up; reads of one case fold the entries it
 * lacks, so they always see every committed revision. Every method is a plain read or write:
 * what is enqueued after a commit, and when a projection is written, is the repository's.
 */
export interface CaseStore {
  /**
   * Inserts a new case (its creation and first transition, one write); with an idempotency key
   * already used in the same scope, returns the case it made instead, at its latest revision.
   * The same key in another scope is another key. A key whose window is over (`keyExpired` at
   * the new case's `createdAt`, lib/core/idempotency.ts) is taken from its case, which keeps it
   * as a record only, and the new case is inserted with it.
   */
  createCase(record: CaseRecord, events: readonly TraceEvent[]): Promise<CreateResult>;
  /** The case at its latest committed revision. */
  getCase(id: string): Promise<CaseRecord | undefined>;
  /** The case at its latest committed revision, with the state its document holds (see CaseRead). */
  readCase(id: string): Promise<CaseRead | undefined>;
  /**
   * Appends `next` (revision `previous.revision + 1`) with its trace events to the case's
   * history: the commit. 'conflict' when another writer appended that revision first: read the
   * case again and decide again. Where the case document can lag its history, it is not
   * written here (see `projects` and `writeProjection`).
   * Rejects with CaseNotCommittableError when the store would refuse the entry every time.
   */
  appendTransition(previous: CaseState, next: CaseState, events: readonly TraceEvent[]): Promise<'committed' | 'conflict'>;
  /**
   * Whether the case document should be written after the committed transition `previous` →
   * `next`: when it changes what the store's queries read (status, deadline, stuck mark; the
   * adapter may ask for it more often). Never on a store whose document cannot lag its history.
   */
  projects(previous: CaseState, next: CaseState): boolean;
  /**
   * Writes the case document as the projection of the committed state `next`, unless the
   * document is at `next`'s revision or later already (then false). `previous` is the state the
   * document is known to hold, or the committed state before `next`.
   */
  writeProjection(previous: CaseState, next: CaseState): Promise<boolean>;
  /** Newest first. */
  listCases(query: CaseQuery): Promise<{ cases: CaseSummary[]; nextCursor?: string }>;
  /** A case's trace in seq order. */
  readTrace(caseId: string): Promise<TraceEvent[]>;
  /** Cases not terminal and not updated since `before`, by id, after `afterId` when given. */
  findStaleCases(before: number, limit: number, afterId?: string): Promise<CaseRecord[]>;
  /** Open cases started by a step of `caseId` (sub-workflows). */
  findChildren(caseId: string): Promise<Array<{ id: string; status: CaseStatus; parent?: CaseState['parent'] }>>;
  /** Cases still open whose deadline has passed, soonest first. */
  findExpiredCases(now: number, limit: number): Promise<Array<{ id: string }>>;
  countByStatus(): Promise<Partial<Record<CaseStatus, number>>>;
  /** Cases matching `filter` by status, counting at most `max` of them (the newest); `total` equal to `max` means "at least". */
  countCases(filter: CaseFilter, max: number): Promise<{ total: number; byStatus: Partial<Record<CaseStatus, number>> }>;
  /** Open cases the reconciler marked stuck: how many, and the longest-stuck `limit` of them. */
  findStuckCases(limit: number): Promise<{ count: number; cases: CaseRecord[] }>;
  /** Deletes up to `limit` cases that finished before `before`, with their history; returns how many. */
  deleteFinishedCases(before: number, limit: number): Promise<number>;
}

/** An API key as stored: never the key itself, only the hash of its secret. */
export interface StoredKey {
  id: string;
  name: string;
  roles: Role[];
  /** SHA-256 of the secret part, hex. */
  hash: string;
  createdAt: number;
  expiresAt?: number;
  revokedAt?: number;
}

export interface KeyStore {
  insertKey(key: StoredKey): Promise<void>;
  getKey(id: string): Promise<StoredKey | undefined>;
  listKeys(): Promise<StoredKey[]>;
  /** Marks a key revoked; false when there is no such key. */
  revokeKey(id: string, at: number): Promise<boolean>;
}

/**
 * Bulk operations and their results. An operation's results are stored a page at a time, each
 * page one document inserted under a key unique per operation and page: the insert decides
 * which runner did the page, so a second runner resuming the operation stops at the first page
 * it finds taken.
 */
export interface BulkStore {
  insertBulkOperation(operation: BulkOperation): Promise<void>;
  /** The operation; `stopped` once stopped, whatever its runner last wrote. */
  getBulkOperation(id: string): Promise<BulkOperation | undefined>;
  /**
   * Inserts the results of page `operation.pages - 1`, then writes the operation's progress
   * (never over a stop). 'taken' when that page was stored before: another runner has it.
   */
  saveBulkPage(operation: BulkOperation, results: readonly BulkCaseResult[]): Promise<'saved' | 'taken'>;
  /** Stops a running operation before its next page; the operation as it is then, undefined when there is none. */
  stopBulkOperation(id: string, at: number): Promise<BulkOperation | undefined>;
  /** The results of one page, undefined when it was not stored (yet). */
  readBulkResults(id: string, page: number): Promise<BulkCaseResult[] | undefined>;
  /** Running operations whose progress was last written before `before` (their runner died): oldest first. */
  findStalledBulkOperations(before: number, limit: number): Promise<BulkOperation[]>;
}

export interface Store extends WorkflowStore, CaseStore, KeyStore, BulkStore {
  /** Creates collections and indexes; safe to call from every process at start-up. */
  init(): Promise<void>;
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}
