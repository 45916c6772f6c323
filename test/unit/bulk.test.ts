import { sampleBulkOperation } from '../helpers/samples.js';
import { describe, expect, it } from 'vitest';
import { afterPage, eligibleCount, outcomeOf, type BulkOperation } from '../../lib/core/bulk.js';

const operation: BulkOperation = sampleBulkOperation();

describe('bulk operations, pure', () => {
  it('counts each page and goes on while cases and limit remain', () => {
    const next = afterPage(
      operation,
      [
        { caseId: 'a', outcome: 'ok' },
        { caseId: 'b', outcome: 'skipped', code: 'CASE_STATE_CONFLICT' },
      ],
      'cursor-1',
      10,
    );
    expect(next).toEqual({ ...operation, done: 2, pages: 1, counts: { ok: 1, skipped: 1, error: 0 }, cursor: 'cursor-1', updatedAt: 10 });
  });

  it('ends at the limit, or when no case is left, with the total corrected to what was done', () => {
    const atLimit = afterPage(
      { ...operation, done: 3, pages: 1 },
      [
        { caseId: 'c', outcome: 'ok' },
        { caseId: 'd', outcome: 'error', code: 'X' },
      ],
      'cursor-2',
      20,
    );
    expect(atLimit).toMatchObject({ status: 'completed', finishedAt: 20, done: 5, total: 5, counts: { ok: 1, skipped: 0, error: 1 } });
    const exhausted = afterPage({ ...operation, cursor: 'cursor-1' }, [{ caseId: 'a', outcome: 'ok' }], undefined, 30);
    expect(exhausted).toMatchObject({ status: 'completed', done: 1, total: 1, finishedAt: 30 });
    expect(exhausted.cursor).toBeUndefined();
  });

  it('judges a refusal for the case state as skipped and anything else as an error', () => {
    expect([outcomeOf('CASE_STATE_CONFLICT'), outcomeOf('CASE_NOT_FOUND'), outcomeOf('REVISION_CONFLICT'), outcomeOf('BULK_ACTION_FAILED')]).toEqual(['skipped', 'skipped', 'error', 'error']);
    expect(outcomeOf('SIGNAL_NOT_ACCEPTED')).toBe('skipped');
    const counts = { failed: 3, running: 2, waiting: 1, completed: 4 };
    expect([eligibleCount('retry', counts), eligibleCount('cancel', counts), eligibleCount('signal', counts)]).toEqual([3, 3, 3]);
  });
});
