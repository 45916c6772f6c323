import { DelayedError, UnrecoverableError, WaitingError } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { RetryLaterError, settleOutcome } from '../../lib/adapters/bullmq/settle.js';

/**
 * What a processor's Outcome tells BullMQ. A deferral whose move Redis could not take (a
 * failover) must not fail the job: an intake job has one attempt, and failing it loses a start
 * its producer was told was taken. (Against a real Redis: test/contract/queues.contract.test.ts.)
 */

const closed = () => Object.assign(new Error('Connection is closed.'), { name: 'Error' });

function job(moves: { delayed?: () => Promise<void>; wait?: () => Promise<void> } = {}) {
  const calls: string[] = [];
  return {
    calls,
    moveToDelayed: async (until: number) => {
      calls.push(`delayed ${until}`);
      await moves.delayed?.();
    },
    moveToWait: async () => {
      calls.push('wait');
      await moves.wait?.();
      return 0;
    },
  };
}

describe('settleOutcome', () => {
  it('answers each outcome as BullMQ expects', async () => {
    const noted: unknown[] = [];
    const note = (error: unknown) => noted.push(error);
    expect(await settleOutcome(job(), 't', { kind: 'complete', result: { ok: 1 } }, note)).toEqual({ ok: 1 });
    await expect(settleOutcome(job(), 't', { kind: 'retry', delayMs: 250, reason: 'again' }, note)).rejects.toBeInstanceOf(RetryLaterError);
    await expect(settleOutcome(job(), 't', { kind: 'fail', reason: 'no' }, note)).rejects.toBeInstanceOf(UnrecoverableError);
    const deferred = job();
    await expect(settleOutcome(deferred, 't', { kind: 'defer', until: 5_000, reason: 'later' }, note)).rejects.toBeInstanceOf(DelayedError);
    expect(deferred.calls).toEqual(['delayed 5000']);
    await expect(settleOutcome(job(), 't', { kind: 'handBack' }, note)).rejects.toBeInstanceOf(WaitingError);
    expect(noted).toEqual([]);
  });

  it('leaves a job whose deferral or hand-back Redis refused as moved (its lock lapses and the stall check gives it back) rather than failing it', async () => {
    const noted: unknown[] = [];
    const refused = job({ delayed: () => Promise.reject(closed()), wait: () => Promise.reject(closed()) });
    await expect(settleOutcome(refused, 't', { kind: 'defer', until: 5_000, reason: 'later' }, (error) => noted.push(error))).rejects.toBeInstanceOf(DelayedError);
    await expect(settleOutcome(refused, 't', { kind: 'handBack' }, (error) => noted.push(error))).rejects.toBeInstanceOf(WaitingError);
    expect(noted.map((error) => (error as Error).message)).toEqual(['Connection is closed.', 'Connection is closed.']);
  });
});
