import type { Clock } from '../lib/ports/clock.js';
import type { CaseStore } from '../lib/ports/store.js';

const DAY_MS = 86_400_000;
const BATCH = 500;

/**
 * Deletes finished cases and their history once they are `days` old, in batches (FerretDB v1
 * has no TTL indexes, so retention is this loop rather than an index option). Returns how many.
 */
export async function applyRetention(deps: { store: CaseStore; clock: Clock; days: number; maxBatches?: number }): Promise<number> {
  if (deps.days === 0) return 0;
  const before = deps.clock.now() - deps.days * DAY_MS;
  let deleted = 0;
  for (let batch = 0; batch < (deps.maxBatches ?? 20); batch++) {
    const count = await deps.store.deleteFinishedCases(before, BATCH);
    deleted += count;
    if (count < BATCH) break;
  }
  return deleted;
}
