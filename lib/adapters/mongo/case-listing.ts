import type { Collection, Filter } from 'mongodb';
import type { CaseState, CaseStatus } from '../../core/state.js';
import type { CaseQuery, CaseSummary } from '../../ports/store.js';
import { decodeCursor, encodeCursor } from '../case-cursor.js';
import { businessKeyTerm, decodeError, type CaseDocument } from './documents.js';

/** Listing cases: newest first by id, filtered, paged by an opaque cursor. */
export class CaseListing {
  constructor(private readonly cases: Collection<CaseDocument>) {}

  async listCases(query: CaseQuery): Promise<{ cases: CaseSummary[]; nextCursor?: string }> {
    const filter: Filter<CaseDocument> = {};
    if (query.status) filter.status = query.status;
    if (query.workflow) filter.workflow = query.workflow;
    if (query.startedBy) filter.startedBy = query.startedBy;
    if (query.businessKey) filter.businessKeys = businessKeyTerm(query.businessKey.name, query.businessKey.value);
    if (query.createdAfter !== undefined || query.createdBefore !== undefined) {
      filter.createdAt = {
        ...(query.createdAfter === undefined ? {} : { $gte: new Date(query.createdAfter) }),
        ...(query.createdBefore === undefined ? {} : { $lt: new Date(query.createdBefore) }),
      };
    }
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

  async findChildren(caseId: string): Promise<Array<{ id: string; status: CaseStatus; parent?: CaseState['parent'] }>> {
    const docs = await this.cases.find({ 'parent.caseId': caseId }, { projection: { status: 1, parent: 1 } }).toArray();
    return docs.map((doc) => ({ id: doc._id, status: doc.status, ...(doc.parent ? { parent: doc.parent } : {}) }));
  }
}
