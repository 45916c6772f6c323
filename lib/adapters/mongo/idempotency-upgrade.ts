import type { AnyBulkWriteOperation, Collection, Db } from 'mongodb';
import { legacyScope, scopedKey } from '../../core/idempotency.js';
import type { CaseDocument } from './documents.js';

/** The unique index of the previous versions: one key, whoever sent it. */
const LEGACY_INDEX = 'idempotency_key';
/** Where a database records the upgrades it has had, so that each runs once. */
const UPGRADES = 'migrations';
const UPGRADE_ID = 'idempotency-scopes';
const BATCH = 500;

/**
 * Gives every case stored before keys had scopes its scope (lib/core/idempotency.ts), then drops
 * the old index that kept keys unique across producers. After it, a retried start with a key
 * stored by the previous version finds its case (same producer, same key), and only there: no
 * second case after an upgrade, and no producer finds another's. Runs at `init` until it has
 * finished once; a process that dies half way leaves the rest to the next one (each update is
 * conditional on the case having no scope yet, so running it twice changes nothing).
 *
 * Processes of the previous version that still run meanwhile write unscoped keys it does not see
 * again: upgrade by stopping every api, scheduler and worker of the previous version before the
 * new ones start (docs/OPERATIONS.md).
 */
export async function upgradeIdempotencyKeys(db: Db, cases: Collection<CaseDocument>): Promise<{ scoped: number; unscoped: number }> {
  const upgrades = db.collection<{ _id: string; at: Date; scoped: number; unscoped: number }>(UPGRADES);
  if (await upgrades.findOne({ _id: UPGRADE_ID })) return { scoped: 0, unscoped: 0 };
  let scoped = 0;
  let unscoped = 0;
  const legacy = cases.find(
    { idempotencyKey: { $exists: true }, scopedIdempotencyKey: { $exists: false }, releasedIdempotencyKey: { $exists: false } },
    { projection: { _id: 1, idempotencyKey: 1, startedBy: 1, requestId: 1, parent: 1 } },
  );
  let batch: Array<AnyBulkWriteOperation<CaseDocument>> = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const operations = batch;
    batch = [];
    try {
      scoped += (await cases.bulkWrite(operations, { ordered: false })).modifiedCount;
    } catch (error) {
      // Only a scoped key a new case took meanwhile (the rollout's two versions side by side): that
      // old case keeps no key; every other update of the batch went through.
      const result = (error as { result?: { modifiedCount?: number } }).result;
      const failed = (error as { writeErrors?: unknown[] }).writeErrors;
      if (!result || !Array.isArray(failed)) throw error;
      scoped += result.modifiedCount ?? 0;
      unscoped += failed.length;
    }
  };
  for await (const doc of legacy) {
    if (doc.idempotencyKey === undefined) continue;
    const scope = legacyScope({
      idempotencyKey: doc.idempotencyKey,
      ...(doc.startedBy === undefined ? {} : { startedBy: doc.startedBy }),
      ...(doc.requestId === undefined ? {} : { requestId: doc.requestId }),
      parent: doc.parent,
    });
    batch.push({ updateOne: { filter: { _id: doc._id, scopedIdempotencyKey: { $exists: false } }, update: { $set: { scopedIdempotencyKey: scopedKey(scope, doc.idempotencyKey) } } } });
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  // The fleet's processes start together and may all run this at once: the one that drops the
  // index or records the upgrade second finds it done, which is what it wanted.
  if (await cases.indexExists(LEGACY_INDEX)) await cases.dropIndex(LEGACY_INDEX).catch(unlessCode(INDEX_NOT_FOUND));
  await upgrades.updateOne({ _id: UPGRADE_ID }, { $setOnInsert: { at: new Date(), scoped, unscoped } }, { upsert: true }).catch(unlessCode(DUPLICATE_KEY));
  return { scoped, unscoped };
}

/** MongoDB's codes for a concurrent upsert that lost the race, and for dropping an index already gone. */
const DUPLICATE_KEY = 11000;
const INDEX_NOT_FOUND = 27;

function unlessCode(code: number): (error: unknown) => void {
  return (error) => {
    if ((error as { code?: unknown }).code !== code) throw error;
  };
}
