import { describe, expect, it } from 'vitest';
import { acceptedSignals } from '../../lib/core/signals.js';
import { closeNames } from '../../lib/core/suggest.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { unservedQueues } from '../../lib/core/workflow-queues.js';

describe('close names', () => {
  it('suggests names a few edits away or containing the typed one, closest first', () => {
    expect(closeNames('ordr', ['order', 'orders-batch', 'approval'])).toEqual(['order']);
    expect(closeNames('Order', ['order'])).toEqual(['order']);
    expect(closeNames('batch', ['order-batch', 'approval'])).toEqual(['order-batch']);
    expect(closeNames('zzz', ['order', 'approval'])).toEqual([]);
    expect(closeNames('a', ['b', 'c', 'd', 'e'])).toHaveLength(3);
  });
});

describe('accepted signals', () => {
  const workflow = compileWorkflow(
    {
      name: 'w',
      steps: [
        { id: 'approve', waitFor: { signals: ['yes', 'no'] } },
        { id: 'confirm', after: ['approve'], waitFor: { signals: ['ok'] } },
        { id: 't', task: 'x', queue: 'q1', compensate: { task: 'undo', queue: 'q2' } },
      ],
    },
    1,
  );
  it('are those of waitFor steps not finished, reached or not', () => {
    expect(acceptedSignals(workflow, {})).toEqual(['no', 'ok', 'yes']);
    const done = { status: 'completed', attempts: 1, attemptsDone: 1 } as const;
    expect(acceptedSignals(workflow, { approve: done })).toEqual(['ok']);
    expect(acceptedSignals(workflow, { approve: done, confirm: done })).toEqual([]);
  });
  it('a workflow names the task queues no live worker serves, compensations included', () => {
    expect(unservedQueues(workflow, new Set(['q1']))).toEqual([{ queue: 'q2', steps: ['t'] }]);
    expect(unservedQueues(workflow, new Set(['q1', 'q2']))).toEqual([]);
  });
});
