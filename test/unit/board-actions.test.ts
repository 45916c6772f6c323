import { describe, expect, it } from 'vitest';
import { boardAction, caseOfJob, refusal } from '../../api/board-actions.js';

const CASE = '0190a4c2-7b5e-7cc1-8d2e-5f3a1b2c4d5e';

describe('Bull Board actions on workfleet jobs', () => {
  it('reads the action a board request asks for', () => {
    expect(boardAction('PUT', `/api/queues/default/${CASE}.charge/retry`)).toEqual({ scope: 'job', action: 'retry', queue: 'default', jobId: `${CASE}.charge` });
    expect(boardAction('PUT', '/api/queues/default/retry/failed')).toEqual({ scope: 'queue', action: 'retry', queue: 'default', status: 'failed' });
    expect(boardAction('PUT', '/api/queues/default/clean/completed')).toEqual({ scope: 'queue', action: 'clean', queue: 'default', status: 'completed' });
    expect(boardAction('POST', '/api/queues/default/add')).toEqual({ scope: 'queue', action: 'add', queue: 'default' });
    expect(boardAction('PUT', '/api/queues/default/pause')).toBeUndefined();
    expect(boardAction('GET', `/api/queues/default/${CASE}.charge`)).toBeUndefined();
  });

  it('refuses what would split a case from its jobs and names the command to use', () => {
    const retry = refusal({ scope: 'job', action: 'retry', queue: 'default', jobId: `${CASE}.charge` }, { state: 'failed', caseId: CASE });
    expect(retry).toContain(`workfleet case retry ${CASE}`);
    expect(refusal({ scope: 'job', action: 'clean', queue: 'default', jobId: 'j' }, { state: 'waiting', caseId: CASE })).toContain(`workfleet case cancel ${CASE}`);
    expect(refusal({ scope: 'queue', action: 'empty', queue: 'timers' })).toBeDefined();
  });

  it('allows removing finished jobs and every action on the queues whose jobs go through the engine', () => {
    expect(refusal({ scope: 'job', action: 'clean', queue: 'default', jobId: 'j' }, { state: 'completed', caseId: CASE })).toBeUndefined();
    expect(refusal({ scope: 'queue', action: 'clean', queue: 'default', status: 'failed' })).toBeUndefined();
    expect(refusal({ scope: 'job', action: 'retry', queue: 'cases', jobId: '17' }, { state: 'failed' })).toBeUndefined();
    expect(refusal({ scope: 'queue', action: 'retry', queue: 'results', status: 'failed' })).toBeUndefined();
  });

  it('finds the case of a step job by its id and of a timer by its data', () => {
    expect(caseOfJob(`${CASE}.charge`, {})).toBe(CASE);
    expect(caseOfJob('timer-1', { caseId: CASE })).toBe(CASE);
    expect(caseOfJob('other', {})).toBeUndefined();
  });
});
