import { describe, expect, it } from 'vitest';
import { MemoryLimits } from '../../lib/adapters/memory/limits.js';
import type { StepJob } from '../../lib/core/state.js';
import { GatedQueues } from '../../lib/engine/gated-queues.js';
import { ManualClock } from '../helpers/memory-engine.js';
import { RecordingQueues } from '../helpers/recording-queues.js';
import { sampleStepJob } from '../helpers/samples.js';
import { T0 } from './fixtures.js';

/** The step queues behind the gate: keyed units enter their queue only with a slot, and a cancellation frees what it may. */

const keyed = (n: number): { queue: string; jobId: string; job: StepJob } => {
  const jobId = `01a2023c-80f9-7f9d-88eb-510cc1842ef8.s${n}`;
  return { queue: 'default', jobId, job: sampleStepJob({ stepId: `s${n}`, concurrency: { group: 'crm', key: 'acme', limit: 2 } }) };
};

function setup() {
  const inner = new RecordingQueues();
  const gate = new MemoryLimits();
  const queues = new GatedQueues(inner, gate, new ManualClock(T0));
  return { inner, gate, queues };
}

describe('GatedQueues', () => {
  it('enqueues keyed units up to the limit with their slot rank; the rest wait in the gate, and a cancelled waiting one leaves the line', async () => {
    const { inner, gate, queues } = setup();
    await queues.enqueueSteps([keyed(1), keyed(2), keyed(3), keyed(4)]);
    expect(inner.stepRequests.map((request) => [request.jobId.slice(-2), (request as { rank?: number }).rank])).toEqual([
      ['s1', 1],
      ['s2', 2],
    ]);
    await queues.cancelJobs([{ queue: 'default', jobId: keyed(3).jobId, group: 'crm' }]);
    expect(await gate.position({ group: 'crm', jobId: keyed(3).jobId })).toEqual({ state: 'none' });
    expect(await gate.position({ group: 'crm', jobId: keyed(4).jobId })).toMatchObject({ state: 'waiting', ahead: 0 });
  });

  it('frees the slot of a cancelled unit not yet running and enqueues the next; a running one keeps its slot until its worker releases it', async () => {
    const { inner, gate, queues } = setup();
    await queues.enqueueSteps([keyed(1), keyed(2), keyed(3)]);
    inner.active.add(keyed(1).jobId);
    await queues.cancelJobs([{ queue: 'default', jobId: keyed(1).jobId, group: 'crm' }]);
    expect(await gate.position({ group: 'crm', jobId: keyed(1).jobId })).toMatchObject({ state: 'holding' });
    expect(inner.jobIds()).not.toContain(keyed(3).jobId);
    await queues.cancelJobs([{ queue: 'default', jobId: keyed(2).jobId, group: 'crm' }]);
    expect(inner.jobIds()).toContain(keyed(3).jobId);
  });

  it('never lets a release elsewhere, while the jobs of a case are being cancelled, enqueue one of its waiting units', async () => {
    const { inner, gate, queues } = setup();
    await queues.enqueueSteps([keyed(1), keyed(2), keyed(3), keyed(4)]);
    // Another process (a worker finishing s1) releases its slot just after the cancel went through the queues.
    const elsewhere = new GatedQueues(inner, gate, new ManualClock(T0));
    const cancelInQueues = inner.cancelJobs.bind(inner);
    inner.cancelJobs = async (jobs) => {
      const answer = await cancelInQueues(jobs);
      await elsewhere.dispatch(await gate.release([{ group: 'crm', jobId: keyed(1).jobId }], T0));
      return answer;
    };
    await queues.cancelJobs([keyed(3), keyed(4)].map(({ queue, jobId }) => ({ queue, jobId, group: 'crm' })));
    expect(inner.jobIds()).not.toContain(keyed(3).jobId);
    expect(inner.jobIds()).not.toContain(keyed(4).jobId);
    expect((await gate.stats(10)).groups).toEqual([{ group: 'crm', inUse: 1, waiting: 0 }]);
  });

  it('re-offers a keyed unit the reconciler puts back: a holder is enqueued again, a waiting one keeps its place', async () => {
    const { inner, gate, queues } = setup();
    await queues.enqueueSteps([keyed(1), keyed(2), keyed(3)]);
    await inner.removeSteps([keyed(1)]);
    await queues.enqueueSteps([keyed(1), keyed(3)]);
    expect(inner.jobIds()).toContain(keyed(1).jobId);
    expect(inner.jobIds()).not.toContain(keyed(3).jobId);
    expect(await gate.position({ group: 'crm', jobId: keyed(3).jobId })).toMatchObject({ state: 'waiting', ahead: 0 });
  });
});
