import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stopManagedChildrenOnExit } from '../lib/local-servers/child.js';
import { packageRoot } from '../lib/runtime/package-root.js';
import { CHAOS_ENV, Cluster, SharedDatabase } from './cluster.js';
import { checkInvariants, settleCases, type CheckResult } from './invariants.js';
import { SCENARIOS, type Scenario } from './scenarios.js';
import { CHAOS_WORKFLOWS } from './workflows.js';

/**
 * `npm run chaos [-- --quick] [--only a,b] [--runs N]`: each scenario on a fleet of its own, one
 * fault, then the invariants. One line per scenario; the last line is `N passed, N failed` (and
 * `N skipped` when a scenario could not run here: a SKIP line says why; skipped is never passed).
 */

export interface ScenarioResult {
  name: string;
  run: number;
  passed: boolean;
  cases: number;
  faults: number;
  lost: number;
  duplicated: number;
  reExecutions: number;
  recoverSeconds: number | null;
  seconds: number;
  checks: CheckResult[];
  error?: string;
  /** Why the scenario could not run here (e.g. no privilege for a network namespace): neither passed nor failed. */
  skipped?: string;
}

/** A scenario that overruns this (or its own `timeoutMs`) is failed and its fleet stopped: the suite stays bounded. */
const SCENARIO_TIMEOUT_MS = 4 * 60_000;
const lockHorizonMs = Number(CHAOS_ENV.WORKER_LOCK_DURATION_MS) + 3 * Number(CHAOS_ENV.WORKER_STALLED_CHECK_INTERVAL_MS) + 5_000;

async function runScenario(scenario: Scenario, database: SharedDatabase, dir: string, run: number): Promise<ScenarioResult> {
  const started = Date.now();
  const result: ScenarioResult = { name: scenario.name, run, passed: false, cases: 0, faults: 0, lost: 0, duplicated: 0, reExecutions: 0, recoverSeconds: null, seconds: 0, checks: [] };
  let cluster: Cluster | undefined;
  let timer: NodeJS.Timeout | undefined;
  const timeoutMs = scenario.timeoutMs ?? SCENARIO_TIMEOUT_MS;
  const unavailable = await scenario.unavailable?.();
  if (unavailable !== undefined) return { ...result, skipped: unavailable };
  try {
    const work = async () => {
      cluster = await Cluster.start({ name: `${scenario.name}-${run}`, database, dir, ...scenario.cluster });
      for (const workflow of CHAOS_WORKFLOWS) {
        const { status, body } = await cluster.http('POST', '/v1/workflows', workflow);
        if (status !== 200 && status !== 201) throw new Error(`could not apply ${workflow.name}: ${status} ${JSON.stringify(body)}`);
      }
      const outcome = await scenario.run(cluster);
      result.cases = outcome.accepted.length;
      result.faults = outcome.faults;
      const settled = await settleCases(cluster, outcome.accepted, scenario.settleMs ?? 90_000);
      if (settled) result.recoverSeconds = Math.max(0, (Date.now() - outcome.faultEndedAt) / 1000);
      const expectAlive = outcome.expectAlive ?? cluster.names();
      const findings = await checkInvariants(cluster, outcome.accepted, { lockHorizonMs, redisMaxBytes: 128 * 1024 * 1024, rssMaxKb: 512 * 1024, expectAlive, faultEndedAt: outcome.faultEndedAt });
      result.lost = findings.lost;
      result.duplicated = findings.duplicated;
      result.reExecutions = findings.reExecutions;
      result.checks = [...findings.checks, ...((await scenario.verify?.(cluster, outcome.accepted)) ?? [])];
      if (!settled) result.checks.unshift({ name: 'settled', ok: false, detail: `cases still open ${(scenario.settleMs ?? 90_000) / 1000} s after the fault` });
      result.passed = result.checks.every((check) => check.ok);
    };
    await Promise.race([
      work(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`scenario overran ${timeoutMs / 1000} s`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    result.passed = false;
  } finally {
    clearTimeout(timer);
    await cluster?.stop().catch(() => undefined);
    result.seconds = (Date.now() - started) / 1000;
  }
  return result;
}

export function formatResult(result: ScenarioResult): string {
  const checks = result.checks.map((check) => `${check.name}:${check.ok ? 'ok' : `FAIL(${check.detail})`}`).join(' ');
  const recover = result.recoverSeconds === null ? 'n/a' : `${result.recoverSeconds.toFixed(1)}s`;
  if (result.skipped !== undefined) return `SKIP  ${result.name.padEnd(32)}  ${result.skipped}`;
  return [
    result.passed ? 'PASS' : 'FAIL',
    result.name.padEnd(32),
    `cases=${result.cases}`,
    `faults=${result.faults}`,
    `lost=${result.lost}`,
    `duplicated=${result.duplicated}`,
    `re-executions=${result.reExecutions}`,
    `recover=${recover}`,
    `took=${result.seconds.toFixed(0)}s`,
    checks,
    result.error ? `error: ${result.error}` : '',
  ]
    .filter(Boolean)
    .join('  ');
}

export async function runChaos(options: { quick: boolean; only?: string[]; runs: number; print: (line: string) => void; ferretdbBin?: string }): Promise<ScenarioResult[]> {
  const chosen = SCENARIOS.filter((scenario) => (options.only ? options.only.includes(scenario.name) : !options.quick || scenario.quick));
  if (chosen.length === 0) throw new Error(`no scenario matches; known: ${SCENARIOS.map((scenario) => scenario.name).join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'workfleet-chaos-'));
  const database = await SharedDatabase.start(dir, options.ferretdbBin);
  const results: ScenarioResult[] = [];
  try {
    for (let run = 1; run <= options.runs; run++) {
      for (const scenario of chosen) {
        const result = await runScenario(scenario, database, dir, run);
        results.push(result);
        options.print(formatResult(result));
      }
    }
  } finally {
    await database.stop();
  }
  return results;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, runs: { type: 'string', default: '1' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive integer');
  // Interrupted (Ctrl-C, a kill of this process alone), the run leaves no server or fleet behind.
  stopManagedChildrenOnExit();
  const started = Date.now();
  const results = await runChaos({ quick: values.quick ?? false, only: values.only?.split(','), runs, print: (line) => console.log(line) });
  const passed = results.filter((result) => result.passed).length;
  const skipped = results.filter((result) => result.skipped !== undefined).length;
  const failed = results.length - passed - skipped;
  const out = join(packageRoot(), 'chaos', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify({ at: new Date().toISOString(), seconds: (Date.now() - started) / 1000, results }, null, 2)}\n`);
  console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped (not run: see SKIP lines)` : ''}`);
  process.exitCode = failed === 0 ? 0 : 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
