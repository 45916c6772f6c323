import type { WorkflowDefinition } from '../../core/definition.js';
import { isTerminalCase, type CaseState, type CaseStatus, type ErrorInfo, type LimitWait, type StepState, type TraceEvent, type TraceType, type UnitFields, type UnitState } from '../../core/state.js';
import { scopedKey, scopeOf } from '../../core/idempotency.js';
import type { CaseRecord, StoredKey, StoredWorkflow } from '../../ports/store.js';

/**
 * How core values map to MongoDB documents. User payloads (inputs, outputs, error details,
 * definitions) are stored as JSON text: MongoDB and FerretDB refuse keys with "." or a leading
 * "$" and limit nesting depth, and a payload must never be refused for the shape of its keys.
 */

export interface WorkflowDocument {
  _id: string;
  name: string;
  version: number;
  hash: string;
  description?: string;
  source: string;
  createdAt: Date;
}

export interface ErrorDocument {
  code: string;
  message: string;
  retryable?: boolean;
  stepId?: string;
  attempt?: number;
  details?: string;
}

/** A unit (task attempt bookkeeping) as stored: its output as JSON text. */
export interface UnitDocument {
  status: UnitState['status'];
  attempts: number;
  attemptsDone: number;
  startedAt?: number;
  finishedAt?: number;
  output?: string;
  error?: ErrorDocument;
  nextAttemptAt?: number;
  deferredBy?: string;
  deferredFor?: LimitWait;
}

export interface StepDocument extends Omit<UnitDocument, 'status'> {
  status: StepState['status'];
  scheduledAt?: number;
  run?: number;
  iteration?: number;
  /** Keyed by item index, so that one item's change is one `$set` path. */
  instances?: Record<string, UnitDocument>;
  itemCount?: number;
  waitingFor?: { signals?: string[]; until?: number };
  childCaseId?: string;
  skipReason?: string;
  compensation?: UnitDocument;
}

export interface TraceDocument {
  seq: number;
  type: TraceType;
  stepId?: string;
  at: Date;
  data: string;
}

/**
 * One change of a history entry: a value set or unset at a path, or, for an array (the buffered
 * signals), the entries removed by their index in the array before (`pull`) and those appended
 * (`push`), so that an entry carries what changed rather than the whole array again.
 */
export interface HistoryChange {
  path: string;
  value?: unknown;
  unset?: true;
  pull?: number[];
  push?: unknown[];
}

/**
 * One committed transition of a case. Its `_id` is `<caseId>:<revision>`: inserting it is the
 * commit, and the unique `_id` lets exactly one writer commit each revision. `changes` are the
 * `$set`/`$unset` that bring the case document from the previous revision to this one, kept as
 * path/value pairs because stored field names may not contain dots.
 */
export interface HistoryDocument {
  _id: string;
  caseId: string;
  revision: number;
  at: Date;
  events: TraceDocument[];
  changes: HistoryChange[];
}

export interface CaseDocument {
  _id: string;
  workflow: string;
  version: number;
  status: CaseStatus;
  input: string;
  output?: string;
  error?: ErrorDocument;
  steps: Record<string, StepDocument>;
  createdAt: Date;
  updatedAt: Date;
  deadlineAt: Date;
  finishedAt?: Date;
  /** The UTC day (days since the epoch) `finishedAt` falls on: retention finds cases by it with an equality. */
  finishedDay?: number;
  revision: number;
  seq: number;
  requestId?: string;
  parent?: CaseState['parent'];
  depth?: number;
  priority?: number;
  concurrency?: CaseState['concurrency'];
  /** Buffered signals, their payloads as JSON text. */
  signals?: Array<{ name: string; payload: string; at: number }>;
  compensating?: { status: 'failed' | 'cancelled'; error: ErrorDocument };
  stuck?: { reason: string; since: number };
  /** The trace events of the case's creation (revision 0); later ones are in its history. */
  createdTrace: TraceDocument[];
  /** The key as sent or derived; shown, searched, not unique (another scope may use it too). */
  idempotencyKey?: string;
  /**
   * `<scope>|<key>` (lib/core/idempotency.ts): the unique one. Missing on cases stored before keys
   * had scopes until the store's upgrade gives them one (idempotency-upgrade.ts).
   */
  scopedIdempotencyKey?: string;
  /**
   * `scopedIdempotencyKey` once its window is over and a new case took the key: kept to show
   * whose the key was, out of the unique index.
   */
  releasedIdempotencyKey?: string;
  /** When the key stops answering for this case (the start's idempotencyWindow); none: never. */
  idempotencyExpiresAt?: Date;
  requestHash?: string;
  startedBy?: string;
  /** `name=value` strings, one per business key, indexed for search. */
  businessKeys?: string[];
}

export interface KeyDocument {
  _id: string;
  name: string;
  roles: StoredKey['roles'];
  hash: string;
  createdAt: Date;
  expiresAt?: Date;
  revokedAt?: Date;
}

export function decodeKey(doc: KeyDocument): StoredKey {
  return compact({
    id: doc._id,
    name: doc.name,
    roles: doc.roles,
    hash: doc.hash,
    createdAt: doc.createdAt.getTime(),
    expiresAt: doc.expiresAt?.getTime(),
    revokedAt: doc.revokedAt?.getTime(),
  });
}

const toJson = (value: unknown): string => JSON.stringify(value ?? null);
const fromJson = (text: string | undefined): unknown => (text === undefined ? undefined : JSON.parse(text));

function compact<T extends object>(value: T): T {
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] === undefined) delete value[key];
  return value;
}

function encodeError(error: ErrorInfo): ErrorDocument {
  return compact({
    code: error.code,
    message: error.message,
    retryable: error.retryable,
    stepId: error.stepId,
    attempt: error.attempt,
    details: error.details === undefined ? undefined : toJson(error.details),
  });
}

export function decodeError(doc: ErrorDocument): ErrorInfo {
  return compact({
    code: doc.code,
    message: doc.message,
    retryable: doc.retryable,
    stepId: doc.stepId,
    attempt: doc.attempt,
    details: fromJson(doc.details),
  });
}

/** A unit's fields as stored; a step that is its own unit stores them with its own status. */
function encodeUnit<S extends StepState['status']>(unit: UnitFields & { status: S }): Omit<UnitDocument, 'status'> & { status: S } {
  return compact({
    status: unit.status,
    attempts: unit.attempts,
    attemptsDone: unit.attemptsDone,
    startedAt: unit.startedAt,
    finishedAt: unit.finishedAt,
    output: unit.output === undefined ? undefined : toJson(unit.output),
    error: unit.error && encodeError(unit.error),
    nextAttemptAt: unit.nextAttemptAt,
    deferredBy: unit.deferredBy,
    deferredFor: unit.deferredFor && compact({ ...unit.deferredFor }),
  });
}

function decodeUnit(doc: UnitDocument): UnitState {
  return compact({
    status: doc.status,
    attempts: doc.attempts,
    attemptsDone: doc.attemptsDone,
    startedAt: doc.startedAt,
    finishedAt: doc.finishedAt,
    output: fromJson(doc.output),
    error: doc.error && decodeError(doc.error),
    nextAttemptAt: doc.nextAttemptAt,
    deferredBy: doc.deferredBy,
    deferredFor: doc.deferredFor && compact({ ...doc.deferredFor }),
  });
}

function mapValues<A, B>(record: Readonly<Record<string, A>> | undefined, map: (value: A) => B): Record<string, B> | undefined {
  if (!record) return undefined;
  const out: Record<string, B> = {};
  for (const [key, value] of Object.entries(record)) out[key] = map(value);
  return out;
}

function encodeStep(step: StepState): StepDocument {
  return compact({
    ...encodeUnit(step),
    status: step.status,
    scheduledAt: step.scheduledAt,
    run: step.run,
    iteration: step.iteration,
    instances: mapValues(step.instances, encodeUnit),
    itemCount: step.itemCount,
    waitingFor: step.waitingFor && compact({ signals: step.waitingFor.signals && [...step.waitingFor.signals], until: step.waitingFor.until }),
    childCaseId: step.childCaseId,
    skipReason: step.skipReason,
    compensation: step.compensation && encodeUnit(step.compensation),
  });
}

function decodeStep(doc: StepDocument): StepState {
  return compact({
    ...(decodeUnit(doc as unknown as UnitDocument) as unknown as StepState),
    status: doc.status,
    scheduledAt: doc.scheduledAt,
    run: doc.run,
    iteration: doc.iteration,
    instances: mapValues(doc.instances, decodeUnit),
    itemCount: doc.itemCount,
    waitingFor: doc.waitingFor,
    childCaseId: doc.childCaseId,
    skipReason: doc.skipReason,
    compensation: doc.compensation && decodeUnit(doc.compensation),
  });
}

export function encodeTrace(event: TraceEvent): TraceDocument {
  return compact({ seq: event.seq, type: event.type, stepId: event.stepId, at: new Date(event.at), data: toJson(event.data) });
}

export function decodeTrace(doc: TraceDocument): TraceEvent {
  return compact({
    seq: doc.seq,
    type: doc.type,
    stepId: doc.stepId,
    at: doc.at.getTime(),
    data: (fromJson(doc.data) ?? {}) as Record<string, unknown>,
  });
}

/**
 * The changes that turn the stored document of `previous` into that of `next`. Steps the
 * transition did not touch keep their object identity, so only changed steps are written.
 */
export function caseChanges(previous: CaseState, next: CaseState): HistoryChange[] {
  const changes: HistoryChange[] = [];
  const fields: Array<[string, unknown, unknown, (value: never) => unknown]> = [
    ['status', previous.status, next.status, (value: string) => value],
    ['output', previous.output, next.output, (value: unknown) => toJson(value)],
    ['error', previous.error, next.error, encodeError],
    ['finishedAt', previous.finishedAt, next.finishedAt, (value: number) => new Date(value)],
    ['finishedDay', previous.finishedAt, next.finishedAt, finishedDay],
    ['deadlineAt', previous.deadlineAt, next.deadlineAt, (value: number) => new Date(value)],
    ['compensating', previous.compensating, next.compensating, (value: NonNullable<CaseState['compensating']>) => ({ status: value.status, error: encodeError(value.error) })],
    ['stuck', previous.stuck, next.stuck, (value: NonNullable<CaseState['stuck']>) => value],
    ['concurrency', previous.concurrency, next.concurrency, (value: NonNullable<CaseState['concurrency']>) => value],
  ];
  for (const [path, before, after, encode] of fields) {
    if (before === after) continue;
    changes.push(after === undefined ? { path, unset: true } : { path, value: encode(after as never) });
  }
  changes.push(...signalChanges(previous.signals, next.signals));
  for (const [id, step] of Object.entries(next.steps)) {
    const before = previous.steps[id];
    if (before === step) continue;
    // Within a run a forEach step's items are all made when it starts and none goes away.
    if (before?.instances && step.instances && before.run === step.run && before.itemCount === step.itemCount) {
      // A forEach step changes one item at a time: write that item, not all of them (also when
      // the step ends: its output repeats every item's already, the items need not come again).
      const beforeDoc = encodeStep({ ...before, instances: {} });
      const afterDoc = encodeStep({ ...step, instances: {} });
      for (const key of new Set([...Object.keys(beforeDoc), ...Object.keys(afterDoc)])) {
        if (key === 'instances') continue;
        const value = (afterDoc as unknown as Record<string, unknown>)[key];
        if (JSON.stringify(value) === JSON.stringify((beforeDoc as unknown as Record<string, unknown>)[key])) continue;
        changes.push(value === undefined ? { path: `steps.${id}.${key}`, unset: true } : { path: `steps.${id}.${key}`, value });
      }
      for (const [index, unit] of Object.entries(step.instances)) {
        if (before.instances[index] !== unit) changes.push({ path: `steps.${id}.instances.${index}`, value: encodeUnit(unit) });
      }
      continue;
    }
    changes.push({ path: `steps.${id}`, value: encodeStep(step) });
  }
  changes.push({ path: 'updatedAt', value: new Date(next.updatedAt) }, { path: 'revision', value: next.revision }, { path: 'seq', value: next.seq });
  return changes;
}

/**
 * The buffered signals' changes: a signal kept is appended, one taken by a step is removed, and
 * the entry says only that. Writing the whole buffer for each signal made history grow with the
 * square of the signals kept (15.8 MB of payloads became 309 MB of history).
 */
function signalChanges(previous: CaseState['signals'], next: CaseState['signals']): HistoryChange[] {
  if (previous === next) return [];
  if (next === undefined) return [{ path: 'signals', unset: true }];
  const before = previous ?? [];
  // The transition keeps the entries it does not remove (same objects) and appends new ones.
  const pull: number[] = [];
  let kept = 0;
  before.forEach((signal, index) => {
    if (next[kept] === signal) kept += 1;
    else pull.push(index);
  });
  const push = next.slice(kept);
  if (push.some((signal) => before.includes(signal))) return [{ path: 'signals', value: next.map(encodeSignal) }];
  const changes: HistoryChange[] = [];
  if (pull.length > 0) changes.push({ path: 'signals', pull });
  if (push.length > 0) changes.push({ path: 'signals', push: push.map(encodeSignal) });
  return changes;
}

const DAY_MS = 86_400_000;

/**
 * The day a case finished on, stored beside `finishedAt`: FerretDB passes equalities to its
 * backend but no ranges, so retention asks for one day at a time rather than `finishedAt < x`.
 */
export function finishedDay(finishedAt: number): number {
  return Math.floor(finishedAt / DAY_MS);
}

/**
 * Applies committed history entries to a case document read from the database, in memory: the
 * document is a projection written when a case's queryable fields change (status, deadline,
 * stuck mark), so a read folds the entries committed since. Paths are `field`, `steps.<id>`,
 * `steps.<id>.<field>` and `steps.<id>.instances.<index>` (no id or field holds a dot).
 */
export function applyChanges(doc: CaseDocument, changes: HistoryDocument['changes']): CaseDocument {
  for (const change of changes) {
    const path = change.path.split('.');
    const last = path.pop();
    if (last === undefined) continue;
    let target = doc as unknown as Record<string, unknown>;
    for (const part of path) {
      const inner = target[part];
      if (inner === null || typeof inner !== 'object') target[part] = {};
      target = target[part] as Record<string, unknown>;
    }
    if (change.unset) delete target[last];
    else if (change.pull || change.push) {
      const current = Array.isArray(target[last]) ? (target[last] as unknown[]) : [];
      const removed = new Set(change.pull ?? []);
      target[last] = [...current.filter((_, index) => !removed.has(index)), ...(change.push ?? [])];
    } else target[last] = change.value;
  }
  return doc;
}

/** Document fields a transition may remove; the rest of a case's fields only ever change value. */
const REMOVABLE_FIELDS = ['output', 'error', 'finishedAt', 'finishedDay', 'signals', 'compensating', 'stuck'] as const;

/**
 * The update that makes a case document the projection of `state`, whatever revision it was at:
 * every field it mirrors, so a projection written after skipped ones is still whole.
 */
export function projectionUpdate(state: CaseState): { $set: Record<string, unknown>; $unset?: Record<string, ''> } {
  const $set = encodeCaseFields(state) as unknown as Record<string, unknown>;
  const $unset: Record<string, ''> = {};
  for (const field of REMOVABLE_FIELDS) if (!(field in $set)) $unset[field] = '';
  return Object.keys($unset).length > 0 ? { $set, $unset } : { $set };
}

/** A long case's document is written at least this often (in revisions), so no read folds more entries than this. */
const PROJECT_EVERY = 32;

/**
 * Whether the case document is written with a transition: when it changes what the periodic
 * queries, case lists and the fleet page read (status, deadline, stuck mark, breaker
 * deferrals), when the case is finished
 * (retention deletes a finished case's history up to its document's revision), and every
 * PROJECT_EVERY revisions (a forEach of thousands of items stays running for thousands of
 * revisions). Any other transition (a step's end that only schedules the next) is its history
 * entry alone, and readers fold it.
 */
export function changesProjection(previous: CaseState, next: CaseState): boolean {
  return (
    previous.status !== next.status ||
    previous.deadlineAt !== next.deadlineAt ||
    previous.stuck !== next.stuck ||
    isTerminalCase(next.status) ||
    next.revision % PROJECT_EVERY === 0 ||
    changesDeferrals(previous, next)
  );
}

/**
 * Whether a unit was deferred by a breaker, or stopped being: the explorer's fleet page reads
 * the deferrals of open cases from their documents (which breakers hold work back, until when).
 */
function changesDeferrals(previous: CaseState, next: CaseState): boolean {
  // A retry's next attempt time is no deferral: only a breaker's (deferredBy set) counts.
  const differs = (a: Pick<UnitState, 'deferredBy' | 'nextAttemptAt'> | undefined, b: Pick<UnitState, 'deferredBy' | 'nextAttemptAt'> | undefined) =>
    a?.deferredBy !== b?.deferredBy || (b?.deferredBy !== undefined && a?.nextAttemptAt !== b.nextAttemptAt);
  for (const [id, step] of Object.entries(next.steps)) {
    const before = previous.steps[id];
    if (before === step) continue;
    if (differs(before, step)) return true;
    if (before?.compensation !== step.compensation && differs(before?.compensation, step.compensation)) return true;
    if (step.instances && before?.instances !== step.instances) {
      for (const [index, unit] of Object.entries(step.instances)) if (before?.instances?.[index] !== unit && differs(before?.instances?.[index], unit)) return true;
    }
  }
  return false;
}

/** The document fields that mirror CaseState, for inserts and for `$set` diffs. */
function encodeCaseFields(
  state: CaseState,
): Omit<CaseDocument, '_id' | 'createdTrace' | 'idempotencyKey' | 'scopedIdempotencyKey' | 'releasedIdempotencyKey' | 'idempotencyExpiresAt' | 'requestHash' | 'startedBy' | 'businessKeys'> {
  const steps: Record<string, StepDocument> = {};
  for (const [id, step] of Object.entries(state.steps)) steps[id] = encodeStep(step);
  return compact({
    workflow: state.workflow,
    version: state.version,
    status: state.status,
    input: toJson(state.input),
    output: state.output === undefined ? undefined : toJson(state.output),
    error: state.error && encodeError(state.error),
    steps,
    createdAt: new Date(state.createdAt),
    updatedAt: new Date(state.updatedAt),
    deadlineAt: new Date(state.deadlineAt),
    finishedAt: state.finishedAt === undefined ? undefined : new Date(state.finishedAt),
    finishedDay: state.finishedAt === undefined ? undefined : finishedDay(state.finishedAt),
    revision: state.revision,
    seq: state.seq,
    requestId: state.requestId,
    parent: state.parent,
    depth: state.depth,
    priority: state.priority,
    concurrency: state.concurrency,
    signals: state.signals?.map(encodeSignal),
    compensating: state.compensating && { status: state.compensating.status, error: encodeError(state.compensating.error) },
    stuck: state.stuck,
  });
}

function encodeSignal(signal: NonNullable<CaseState['signals']>[number]) {
  return { name: signal.name, payload: toJson(signal.payload), at: signal.at };
}

export function encodeCase(record: CaseRecord, createdTrace: readonly TraceEvent[]): CaseDocument {
  return compact({
    _id: record.id,
    ...encodeCaseFields(record),
    createdTrace: createdTrace.map(encodeTrace),
    idempotencyKey: record.idempotencyKey,
    scopedIdempotencyKey: record.idempotencyKey === undefined ? undefined : scopedKey(record.idempotencyScope, record.idempotencyKey),
    idempotencyExpiresAt: record.idempotencyExpiresAt === undefined ? undefined : new Date(record.idempotencyExpiresAt),
    requestHash: record.requestHash,
    startedBy: record.startedBy,
    businessKeys: record.businessKeys && Object.entries(record.businessKeys).map(([name, value]) => businessKeyTerm(name, value)),
  });
}

/** How a business key is stored and searched: one `name=value` string per key (names cannot contain "="). */
export function businessKeyTerm(name: string, value: string): string {
  return `${name}=${value}`;
}

const scopeOfStored = (scoped: string | undefined) => (scoped === undefined ? undefined : scopeOf(scoped));

export function decodeCase(doc: CaseDocument): CaseRecord {
  const steps: Record<string, StepState> = {};
  for (const [id, step] of Object.entries(doc.steps)) steps[id] = decodeStep(step);
  return compact({
    id: doc._id,
    workflow: doc.workflow,
    version: doc.version,
    status: doc.status,
    input: fromJson(doc.input),
    output: fromJson(doc.output),
    error: doc.error && decodeError(doc.error),
    steps,
    createdAt: doc.createdAt.getTime(),
    updatedAt: doc.updatedAt.getTime(),
    deadlineAt: doc.deadlineAt.getTime(),
    finishedAt: doc.finishedAt?.getTime(),
    revision: doc.revision,
    seq: doc.seq,
    requestId: doc.requestId,
    parent: doc.parent,
    depth: doc.depth,
    priority: doc.priority,
    concurrency: doc.concurrency,
    signals: doc.signals?.map((signal) => ({ name: signal.name, payload: fromJson(signal.payload), at: signal.at })),
    compensating: doc.compensating && { status: doc.compensating.status, error: decodeError(doc.compensating.error) },
    stuck: doc.stuck,
    idempotencyKey: doc.idempotencyKey,
    idempotencyScope: scopeOfStored(doc.scopedIdempotencyKey ?? doc.releasedIdempotencyKey),
    idempotencyExpiresAt: doc.idempotencyExpiresAt?.getTime(),
    requestHash: doc.requestHash,
    startedBy: doc.startedBy,
    businessKeys:
      doc.businessKeys &&
      Object.fromEntries(
        doc.businessKeys.map((term) => {
          const at = term.indexOf('=');
          return [term.slice(0, at), term.slice(at + 1)];
        }),
      ),
  });
}

export function decodeWorkflow(doc: WorkflowDocument): StoredWorkflow {
  return {
    name: doc.name,
    version: doc.version,
    hash: doc.hash,
    definition: JSON.parse(doc.source) as WorkflowDefinition,
    createdAt: doc.createdAt.getTime(),
  };
}
