import type { CaseAdvancer } from '../lib/engine/advancer.js';
import type { Clock } from '../lib/ports/clock.js';
import type { CaseStore } from '../lib/ports/store.js';

/** Cases failed per check at most; the next check takes the rest. */
const BATCH = 500;

/**
 * Fails open cases whose deadline has passed. The deadline lives in the case document, not in a
 * Redis timer, so it holds even if Redis loses its data; several schedulers may run this at
 * once: each failure is a transition committed by inserting the case's next history entry, so
 * exactly one of them ends each case and the others find it finished.
 */
export async function enforceDeadlines(deps: { store: CaseStore; advancer: CaseAdvancer; clock: Clock }): Promise<number> {
  const now = deps.clock.now();
  const expired = await deps.store.findExpiredCases(now, BATCH);
  await Promise.all(expired.map(({ id }) => deps.advancer.apply(id, { type: 'deadlineExceeded', at: now })));
  return expired.length;
}
