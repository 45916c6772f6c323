import type { Db } from 'mongodb';
import { caseChanges, encodeCase, encodeTrace, type CaseDocument, type HistoryDocument } from '../lib/adapters/mongo/documents.js';
import type { CompiledWorkflow } from '../lib/core/definition.js';
import { DERIVED_SCOPE } from '../lib/core/idempotency.js';
import { createCase, transition } from '../lib/core/transition.js';
import type { CaseRecord } from '../lib/ports/store.js';
import { uuidv7 } from '../lib/runtime/ids.js';

/**
 * Finished 1-step cases written straight into a database, as the engine would have left them:
 * the case document (the MongoDB adapter's own `encodeCase` of the final state, with its
 * creation trace) and one history entry per committed transition, built by the pure core
 * (`createCase`, then the worker's report applied with `transition`). Inserted with insertMany
 * in batches of 1,000 per collection.
 */

const BATCH = 1_000;

function finishedCase(workflow: CompiledWorkflow, n: number, at: number): { doc: CaseDocument; history: HistoryDocument[] } {
  const id = uuidv7(at);
  const key = `intake:preload-${n}`;
  const started = createCase(workflow, { id, input: { n }, now: at, requestId: key });
  const record: CaseRecord = { ...started.state, idempotencyKey: key, idempotencyScope: DERIVED_SCOPE, requestHash: 'preload', startedBy: 'intake' };
  const history: HistoryDocument[] = [];
  let state = started.state;
  // The worker reports each step once, started and completed together (a fast handler).
  for (const [index, stepId] of workflow.order.entries()) {
    const finishedAt = at + 5 * (index + 1);
    const next = transition(workflow, state, [{ type: 'stepCompleted', stepId, attempt: 1, at: finishedAt, startedAt: finishedAt - 2, output: { n } }], finishedAt + 1);
    history.push({
      _id: `${id}:${next.state.revision}`,
      caseId: id,
      revision: next.state.revision,
      at: new Date(next.state.updatedAt),
      events: next.events.map(encodeTrace),
      changes: caseChanges(state, next.state),
    });
    state = next.state;
  }
  if (state.status !== 'completed') throw new Error(`preload: a ${workflow.name} case ended ${state.status}, not completed`);
  return { doc: encodeCase({ ...record, ...state }, started.events), history };
}

/**
 * Adds `count` finished cases of `workflow` to `db`, numbered from `from`, finished in the hour
 * before `now` (well inside retention). Returns their ids.
 */
export async function preloadCases(db: Db, workflow: CompiledWorkflow, count: number, from: number, now: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += BATCH) {
    const made = Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => finishedCase(workflow, from + i + j, now - 3_600_000 + ((from + i + j) % 3_000_000)));
    await db.collection<CaseDocument>('cases').insertMany(
      made.map((entry) => entry.doc),
      { ordered: false },
    );
    await db.collection<HistoryDocument>('history').insertMany(
      made.flatMap((entry) => entry.history),
      { ordered: false },
    );
    ids.push(...made.map((entry) => entry.doc._id));
  }
  return ids;
}
