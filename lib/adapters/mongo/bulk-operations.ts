import type { Collection } from 'mongodb';
import type { BulkCaseResult, BulkOperation, BulkOutcome, BulkParams, BulkStatus, CaseFilter } from '../../core/bulk.js';
import { DUPLICATE_KEY, writeErrorsByIndex } from './bulk.js';
import { MongoServerError } from 'mongodb';

/**
 * Bulk operations on MongoDB: one document per operation (`bulk_operations`) and one per page of
 * its results (`bulk_results`, `_id` `<operation>:<page>`), both read by `_id` alone, the lookup
 * every server answers from an index (FerretDB on SQLite too). The parameters and the filter are
 * JSON text: a signal's payload may have keys MongoDB refuses.
 */

export interface BulkOperationDocument {
  _id: string;
  params: string;
  filter: string;
  limit: number;
  status: Exclude<BulkStatus, 'stopped'>;
  total: number;
  done: number;
  counts: Record<BulkOutcome, number>;
  pages: number;
  cursor?: string;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  createdBy: string;
  /** Set by a stop, and never written by the runner: a stop cannot be overwritten by a page finishing. */
  stoppedAt?: Date;
}

export interface BulkResultsDocument {
  _id: string;
  operationId: string;
  page: number;
  results: BulkCaseResult[];
}

const pageId = (id: string, page: number) => `${id}:${String(page).padStart(6, '0')}`;

function decode(doc: BulkOperationDocument): BulkOperation {
  const stopped = doc.status === 'running' && doc.stoppedAt !== undefined;
  const finishedAt = stopped ? doc.stoppedAt : doc.finishedAt;
  return {
    id: doc._id,
    params: JSON.parse(doc.params) as BulkParams,
    filter: JSON.parse(doc.filter) as CaseFilter,
    limit: doc.limit,
    status: stopped ? 'stopped' : doc.status,
    total: doc.total,
    done: doc.done,
    counts: { ok: doc.counts.ok, skipped: doc.counts.skipped, error: doc.counts.error },
    pages: doc.pages,
    ...(doc.cursor === undefined ? {} : { cursor: doc.cursor }),
    createdAt: doc.createdAt.getTime(),
    updatedAt: doc.updatedAt.getTime(),
    ...(finishedAt === undefined ? {} : { finishedAt: finishedAt.getTime() }),
    createdBy: doc.createdBy,
  };
}

/** The fields a runner writes: everything but the stop mark. */
function progress(operation: BulkOperation): Omit<BulkOperationDocument, '_id' | 'stoppedAt' | 'cursor' | 'finishedAt'> & { cursor?: string; finishedAt?: Date } {
  return {
    params: JSON.stringify(operation.params),
    filter: JSON.stringify(operation.filter),
    limit: operation.limit,
    status: operation.status === 'stopped' ? 'running' : operation.status,
    total: operation.total,
    done: operation.done,
    counts: operation.counts,
    pages: operation.pages,
    ...(operation.cursor === undefined ? {} : { cursor: operation.cursor }),
    createdAt: new Date(operation.createdAt),
    updatedAt: new Date(operation.updatedAt),
    ...(operation.finishedAt === undefined ? {} : { finishedAt: new Date(operation.finishedAt) }),
    createdBy: operation.createdBy,
  };
}

export class MongoBulkOperations {
  constructor(
    private readonly operations: Collection<BulkOperationDocument>,
    private readonly results: Collection<BulkResultsDocument>,
  ) {}

  async insert(operation: BulkOperation): Promise<void> {
    await this.operations.insertOne({ _id: operation.id, ...progress(operation) });
  }

  async get(id: string): Promise<BulkOperation | undefined> {
    const doc = await this.operations.findOne({ _id: id });
    return doc ? decode(doc) : undefined;
  }

  async savePage(operation: BulkOperation, results: readonly BulkCaseResult[]): Promise<'saved' | 'taken'> {
    const page = operation.pages - 1;
    try {
      await this.results.insertOne({ _id: pageId(operation.id, page), operationId: operation.id, page, results: [...results] });
    } catch (error) {
      if (error instanceof MongoServerError && (error.code === DUPLICATE_KEY || writeErrorsByIndex(error)?.get(0)?.code === DUPLICATE_KEY)) return 'taken';
      throw error;
    }
    await this.operations.updateOne({ _id: operation.id }, { $set: progress(operation) });
    return 'saved';
  }

  async stop(id: string, at: number): Promise<BulkOperation | undefined> {
    const doc = await this.operations.findOne({ _id: id });
    if (!doc) return undefined;
    if (doc.status === 'running' && doc.stoppedAt === undefined) {
      await this.operations.updateOne({ _id: id }, { $set: { stoppedAt: new Date(at) } });
      doc.stoppedAt = new Date(at);
    }
    return decode(doc);
  }

  async readResults(id: string, page: number): Promise<BulkCaseResult[] | undefined> {
    const doc = await this.results.findOne({ _id: pageId(id, page) });
    return doc?.results;
  }

  async findStalled(before: number, limit: number): Promise<BulkOperation[]> {
    const docs = await this.operations
      .find({ status: 'running', stoppedAt: { $exists: false }, updatedAt: { $lt: new Date(before) } })
      .sort({ updatedAt: 1 })
      .limit(limit)
      .toArray();
    return docs.map(decode);
  }
}
