import { describe, expect, it } from 'vitest';
import { formatResult, type ScenarioResult } from '../../chaos/run.js';
import { markdownTable } from '../../chaos/table.js';

const result = (overrides: Partial<ScenarioResult>): ScenarioResult => ({
  name: 'worker-partitioned-past-lock',
  run: 1,
  passed: false,
  cases: 0,
  faults: 0,
  lost: 0,
  duplicated: 0,
  reExecutions: 0,
  recoverSeconds: null,
  seconds: 0,
  checks: [],
  ...overrides,
});

describe('chaos report of a scenario that could not run', () => {
  const reason = 'cannot make a network namespace (ip netns add: Operation not permitted)';

  it('prints SKIP with the reason, never PASS', () => {
    const line = formatResult(result({ skipped: reason }));
    expect(line.startsWith('SKIP')).toBe(true);
    expect(line).toContain(reason);
    expect(line).not.toContain('PASS');
  });

  it('counts skipped runs apart in the table, not as passed', () => {
    const table = markdownTable([result({ skipped: reason }), result({ run: 2, passed: true, cases: 6 })]);
    expect(table).toContain('| worker-partitioned-past-lock | 1/2 (1 skipped) | 6 |');
  });
});
