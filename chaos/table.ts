import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../lib/runtime/package-root.js';
import type { ScenarioResult } from './run.js';

/**
 * `node dist/chaos/table.js [file]`: the scenario table of docs/RELIABILITY.md from a run's
 * results (default chaos/results/latest.json), one row per scenario over all its runs.
 */
/** Runs that could not be made here count in neither column: said apart, e.g. " (3 skipped)". */
function skipped(runs: readonly ScenarioResult[]): string {
  const count = runs.filter((result) => result.skipped !== undefined).length;
  return count === 0 ? '' : ` (${count} skipped)`;
}

export function markdownTable(results: readonly ScenarioResult[]): string {
  const byName = new Map<string, ScenarioResult[]>();
  for (const result of results) byName.set(result.name, [...(byName.get(result.name) ?? []), result]);
  const rows = ['| Scenario | Runs passed | Cases | Faults | Lost | Duplicated | Re-executions | Time to recover (s) |', '| --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (const [name, runs] of byName) {
    const sum = (pick: (result: ScenarioResult) => number) => runs.reduce((total, result) => total + pick(result), 0);
    const recovered = runs.map((result) => result.recoverSeconds).filter((value): value is number => value !== null);
    const recover = recovered.length === 0 ? 'n/a' : recovered.map((value) => value.toFixed(1)).join(' / ');
    rows.push(
      `| ${name} | ${runs.filter((result) => result.passed).length}/${runs.length}${skipped(runs)} | ${sum((r) => r.cases)} | ${sum((r) => r.faults)} | ${sum((r) => r.lost)} | ${sum((r) => r.duplicated)} | ${sum((r) => r.reExecutions)} | ${recover} |`,
    );
  }
  return rows.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2] ?? join(packageRoot(), 'chaos', 'results', 'latest.json');
  const { results } = JSON.parse(readFileSync(file, 'utf8')) as { results: ScenarioResult[] };
  console.log(markdownTable(results));
}
