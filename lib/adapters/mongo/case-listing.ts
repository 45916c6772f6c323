import type { Collection, Filter } from 'mongodb';
import type { CaseFilter } from '../../core/bulk.js';
import type { CaseState, CaseStatus } from '../../core/state.js';
import type { CaseQuery, CaseSummary } from '../../ports/store.js';
import { decodeCursor, encodeCursor } from '../case-cursor.js';
import { businessKeyTerm, decodeError, type CaseDocument } from './documents.js';

/** A time range on a date field, or nothing. */
function range(after: number | undefined, before: number | undefined): { $gte?: Date; $lt?: Date } | undefined {
  if (after === undefined && before === undefined) return undefined;
  return { ...(after === undefined ? {} : { $gte: new Date(after) }), ...(before === undefined ? {} : { $lt: new Date(before) }) };
}

const regexSpecials = /[.*+?^${}()|[\]\\]/g;

/**
 * The MongoDB filter of a case filter. An error code matches the case error's own code or the
 * code of the step error that failed it: the core writes that cause first in the error's
 * details (`{"cause":{"code":…`), which are stored as JSON text (see documents.ts), so the
 * text's start is matched; every stored case has it, however old.
 */
function caseFilter(query: CaseFilter): Filter<CaseDocument> {
  const filter: Filter<CaseDocument> = {};
  if (query.status) filter.status = query.status;
  if (query.workflow) filter.workflow = query.workflow;
  if (query.businessKey) filter.businessKeys = businessKeyTerm(query.businessKey.name, query.businessKey.value);
  const created = range(query.createdAfter, query.createdBefore);
  if (created) filter.createdAt = created;
  const updated = range(query.updatedAfter, query.updatedBefore);
  if (updated) filter.updatedAt = updated;
  if (query.errorCode) {
    const code = query.errorCode.replace(regexSpecials, '\\$&');
    filter.$or = [{ 'error.code': query.errorCode }, { 'error.details': { $regex: `^\\{"cause":\\{"code":"${code}"` } }];
  }
  return filter;
}

/** Listing cases: newest first by id, filtered, paged by an opaque cursor. */
export class CaseListing {
  constructor(private readonly cases: Collection<CaseDocument>) {}

  async listCases(query: CaseQuery): Promise<{ cases: CaseSummary[]; nextCursor?: string }> {
    const filter = caseFilter(query);
    if (query.startedBy) filter.startedBy = query.startedBy;
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    if (after) filter._id = { $lt: after };
    const docs = await this.cases
      .find(filter, { projection: { workflow: 1, version: 1, status: 1, createdAt: 1, updatedAt: 1, finishedAt: 1, error: 1 } })
      .sort({ _id: -1 })
      .limit(query.limit + 1)
      .toArray();
    const page = docs.slice(0, query.limit);
    const last = page.at(-1);
    return {
      cases: page.map((doc) => ({
        id: doc._id,
        workflow: doc.workflow,
        version: doc.version,
        status: doc.status,
        createdAt: doc.createdAt.getTime(),
        updatedAt: doc.updatedAt.getTime(),
        ...(doc.finishedAt ? { finishedAt: doc.finishedAt.getTime() } : {}),
        ...(doc.error ? { error: decodeError(doc.error) } : {}),
      })),
      ...(docs.length > query.limit && last ? { nextCursor: encodeCursor(last._id) } : {}),
    };
  }

  /** Counts the newest `max` cases matching `filter` by status: one aggregation, bounded by `max`. */
  async countCases(query: CaseFilter, max: number): Promise<{ total: number; byStatus: Partial<Record<CaseStatus, number>> }> {
    const rows = await this.cases
      .aggregate<{ _id: CaseStatus; count: number }>([{ $match: caseFilter(query) }, { $sort: { _id: -1 } }, { $limit: max }, { $group: { _id: '$status', count: { $sum: 1 } } }])
      .toArray();
    const byStatus = Object.fromEntries(rows.map((row) => [row._id, row.count])) as Partial<Record<CaseStatus, number>>;
    return { total: rows.reduce((sum, row) => sum + row.count, 0), byStatus };
  }

  async findChildren(caseId: string): Promise<Array<{ id: string; status: CaseStatus; parent?: CaseState['parent'] }>> {
    const docs = await this.cases.find({ 'parent.caseId': caseId }, { projection: { status: 1, parent: 1 } }).toArray();
    return docs.map((doc) => ({ id: doc._id, status: doc.status, ...(doc.parent ? { parent: doc.parent } : {}) }));
  }
}
