import type { Clock } from '../lib/ports/clock.js';
import type { CaseStore } from '../lib/ports/store.js';

const DAY_MS = 86_400_000;
const BATCH = 500;
const MAX_BATCHES = 20;
/** How long a retention run that found less than a full run's worth waits before the next one. */
export const RETENTION_PAUSE_MS = 3_600_000;

/**
 * Deletes finished cases and their history once they are `days` old, in batches (FerretDB v1
 * has no TTL indexes, so retention is this loop rather than an index option). Returns how many.
 */
export async function applyRetention(deps: { store: CaseStore; clock: Clock; days: number; maxBatches?: number }): Promise<number> {
  if (deps.days === 0) return 0;
  const before = deps.clock.now() - deps.days * DAY_MS;
  let deleted = 0;
  for (let batch = 0; batch < (deps.maxBatches ?? MAX_BATCHES); batch++) {
    const count = await deps.store.deleteFinishedCases(before, BATCH);
    deleted += count;
    if (count < BATCH) break;
  }
  return deleted;
}

/**
 * When retention runs: asked every minute, it runs again at once while the last run hit its
 * limit (a backlog), else after RETENTION_PAUSE_MS. Cases are kept for days, so an hour late
 * costs nothing, while each run must find the cases that crossed the cutoff since the last one,
 * which on FerretDB over SQLite means reading every case of the cutoff day's filter.
 */
export class RetentionSchedule {
  private nextRunAt = 0;

  constructor(private readonly deps: { store: CaseStore; clock: Clock; days: number; maxBatches?: number }) {}

  /** Runs retention if it is due; returns how many cases it deleted (0 when not due). */
  async runIfDue(): Promise<number> {
    const now = this.deps.clock.now();
    if (now < this.nextRunAt) return 0;
    const deleted = await applyRetention(this.deps);
    this.nextRunAt = deleted >= BATCH * (this.deps.maxBatches ?? MAX_BATCHES) ? now : now + RETENTION_PAUSE_MS;
    return deleted;
  }
}
