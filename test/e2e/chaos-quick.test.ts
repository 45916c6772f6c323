import { describe, expect, it } from 'vitest';
import { formatResult, runChaos } from '../../chaos/run.js';

/**
 * The quick subset of `npm run chaos` (the scenarios marked quick): the real processes, a fault
 * each, and every invariant checked. The whole suite runs on demand with `npm run chaos`.
 */
describe('chaos, quick subset', () => {
  it(
    'loses no accepted case, duplicates no effect and recovers from each fault',
    async () => {
      const lines: string[] = [];
      const results = await runChaos({ quick: true, runs: 1, print: (line) => lines.push(line), ...(process.env.WORKFLEET_TEST_FERRETDB_BIN ? { ferretdbBin: process.env.WORKFLEET_TEST_FERRETDB_BIN } : {}) });
      expect(results.length).toBeGreaterThanOrEqual(5);
      for (const result of results) {
        expect([result.name, result.passed, result.lost, result.duplicated], formatResult(result)).toEqual([result.name, true, 0, 0]);
        expect(result.cases).toBeGreaterThan(0);
        expect(result.faults).toBeGreaterThan(0);
      }
    },
    8 * 60_000,
  );
});
