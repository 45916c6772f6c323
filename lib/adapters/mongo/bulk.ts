import { MongoServerError, type AnyBulkWriteOperation, type Collection, type Document } from 'mongodb';

export const DUPLICATE_KEY = 11000;

/**
 * Operations sent in one bulkWrite at most. FerretDB v1 runs each statement of a bulk write on
 * a connection of its backend pool and holds them until the whole batch is done: a batch of 50
 * or more (its pool's size) never answers. MongoDB does not mind, but gains little from more.
 */
const MAX_BULK_OPERATIONS = 49;

/** `operations` as bulkWrites of at most MAX_BULK_OPERATIONS, one after another, unordered within each. */
export async function bulkWriteInChunks<T extends Document>(collection: Collection<T>, operations: ReadonlyArray<AnyBulkWriteOperation<T>>): Promise<void> {
  for (let from = 0; from < operations.length; from += MAX_BULK_OPERATIONS) {
    await collection.bulkWrite(operations.slice(from, from + MAX_BULK_OPERATIONS), { ordered: false });
  }
}

/** `_id` equalities, the one filter every server (FerretDB on SQLite too) answers from an index, as bulk deletes. */
export async function deleteByIds<T extends Document>(collection: Collection<T>, ids: readonly string[]): Promise<void> {
  await bulkWriteInChunks(
    collection,
    ids.map((id) => ({ deleteOne: { filter: { _id: id } as never } })),
  );
}

/**
 * The per-document errors of an unordered insertMany or bulkWrite, by the index of the item in
 * the batch; undefined when the error is not about single documents (the batch as a whole failed).
 */
export function writeErrorsByIndex(error: unknown): Map<number, { code: number; message: string }> | undefined {
  if (!(error instanceof MongoServerError)) return undefined;
  const raw = (error as { writeErrors?: unknown }).writeErrors;
  const list = Array.isArray(raw) ? raw : raw && typeof raw === 'object' ? [raw] : [];
  if (list.length === 0) return undefined;
  const errors = new Map<number, { code: number; message: string }>();
  for (const entry of list as Array<{ index?: unknown; code?: unknown; errmsg?: unknown; err?: { index?: unknown; code?: unknown; errmsg?: unknown } }>) {
    // The driver wraps each one (WriteError) with the server's fields under `err`.
    const fields = entry.err ?? entry;
    const index = typeof entry.index === 'number' ? entry.index : typeof fields.index === 'number' ? fields.index : undefined;
    if (index === undefined) return undefined;
    const message = fields.errmsg ?? entry.errmsg;
    errors.set(index, { code: Number(fields.code ?? entry.code), message: typeof message === 'string' ? message : 'write error' });
  }
  return errors;
}

/** Inserts `docs` unordered; documents already there (duplicate key) are fine, any other failure throws. */
export async function insertIgnoringDuplicates<T extends Document>(collection: Collection<T>, docs: readonly T[]): Promise<void> {
  if (docs.length === 0) return;
  try {
    await collection.insertMany(docs as never[], { ordered: false });
  } catch (error) {
    const failed = writeErrorsByIndex(error);
    if (!failed || [...failed.values()].some((problem) => problem.code !== DUPLICATE_KEY)) throw error;
  }
}
