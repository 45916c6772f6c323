import type { Db } from 'mongodb';

/**
 * What the server behind the MongoDB driver can do for us, found out once at start-up. MongoDB
 * answers every filter from its indexes. FerretDB v1 passes filters to its backend only in
 * part: on PostgreSQL every top-level equality, on SQLite nothing but a lone `_id` equality
 * (everything else it evaluates itself, after reading and decoding every document of the
 * collection). The store shapes its queries by these answers instead of guessing from a URL.
 */
export interface ServerFeatures {
  /** FerretDB (any backend) rather than MongoDB. */
  ferretdb: boolean;
  /**
   * Whether a filter on more than `_id` is answered by the database rather than by reading the
   * whole collection: true on MongoDB and FerretDB on PostgreSQL, false on FerretDB on SQLite.
   */
  filtersBeyondId: boolean;
}

/**
 * Asks the server: `buildInfo` names FerretDB, and FerretDB's `explain` says whether a filter
 * on `_id` and one more field is pushed down to its backend (`filterPushdown`). `collection`
 * must exist (FerretDB explains nothing for a missing one).
 */
export async function probeServerFeatures(db: Db, collection: string): Promise<ServerFeatures> {
  const info = await db.admin().command({ buildInfo: 1 });
  if (typeof info.ferretdbVersion !== 'string') return { ferretdb: false, filtersBeyondId: true };
  const explained = await db.command({ explain: { find: collection, filter: { _id: '', revision: 0 } }, verbosity: 'queryPlanner' });
  return { ferretdb: true, filtersBeyondId: explained.filterPushdown === true };
}
