import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { Fleet } from '../helpers/fleet.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `workfleet bulk` against the real fleet (api, scheduler, a worker with the example handlers):
 * cases whose card is declined fail at once (a non-retryable error), and the operator retries
 * them in bulk from the terminal, without one.
 */

const run = promisify(execFile);
const cli = join(packageRoot(), 'dist', 'cli', 'workfleet.js');
let servers: TestServers;
let fleet: Fleet;
const declined: string[] = [];
let charged = '';

async function workfleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, WORKFLEET_API_URL: fleet.apiUrl, NO_COLOR: '1' };
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers freely
async function call(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${fleet.apiUrl}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  return response.json();
}

const statusOf = async (id: string) => ((await call('GET', `/v1/cases/${id}`)) as { status: string }).status;
const settled = (ids: readonly string[], status: string) =>
  waitFor(`cases to be ${status}`, async () => ((await Promise.all(ids.map(statusOf))).every((each) => each === status) ? true : undefined), { timeoutMs: 30_000, intervalMs: 100 });

beforeAll(async () => {
  servers = await startServers();
  const namespace = servers.namespace();
  fleet = await Fleet.start({ redisUrl: servers.redis.url, mongoUrl: namespace.mongoUrl, prefix: namespace.prefix, workers: 1, label: 'e2e-cli-bulk' });
  await call('POST', '/v1/workflows', { name: 'charge-only', steps: [{ id: 'charge', task: 'payments.charge', input: { amount: '${input.amount}' } }] });
  for (let i = 0; i < 3; i++) declined.push((await call('POST', '/v1/cases', { workflow: 'charge-only', input: { amount: 20_000 }, businessKeys: { batch: 'cli' } })).id as string);
  charged = (await call('POST', '/v1/cases', { workflow: 'charge-only', input: { amount: 5 }, businessKeys: { batch: 'cli' } })).id as string;
  await settled(declined, 'failed');
  await settled([charged], 'completed');
}, 120_000);

afterAll(async () => {
  await fleet?.stopAll();
  await servers?.stop();
});

describe('workfleet bulk', () => {
  it('counts first, refuses to act unasked without a terminal, and changes nothing on a dry run', async () => {
    const dry = await workfleet('bulk', 'retry', '--key', 'batch=cli', '--since', '1h', '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('4 cases match (completed 1, failed 3)');
    expect(dry.stdout).toContain('3 can be retried; 1 would be skipped');
    expect(dry.stdout).toContain('a run acts on 4 (the newest, limit 1000)');
    const unasked = await workfleet('bulk', 'retry', '--key', 'batch=cli');
    expect(unasked.code).toBe(2);
    expect(unasked.stderr).toContain('add --yes');
    expect(await Promise.all(declined.map(statusOf))).toEqual(['failed', 'failed', 'failed']);
    const bad = await workfleet('bulk', 'retry', '--created-after', 'yesterday', '--dry-run');
    // Commander's own refusal of an option: exit 1, as for every command's options.
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('a duration ago')]);
  });

  it('retries by error code up to the limit, printing progress and the outcome', async () => {
    const retried = await workfleet('bulk', 'retry', '--key', 'batch=cli', '--error-code', 'CARD_DECLINED', '--limit', '2', '--yes');
    expect(retried.code).toBe(0);
    expect(retried.stderr).toMatch(/^2\/2 {2}ok 2 {2}skipped 0 {2}errors 0 {2}completed$/m);
    expect(retried.stdout).toMatch(/^bulk retry \S+: completed, 2 of 2 cases$/m);
    expect(retried.stdout).toMatch(/^ +2 {2}ok$/m);
    // The newest two ran again (and were declined again); the oldest was not touched.
    const runs = async (id: string) => ((await call('GET', `/v1/cases/${id}`)) as { steps: { charge: { run?: number } } }).steps.charge.run ?? 0;
    await settled(declined, 'failed');
    expect(await Promise.all(declined.map(runs))).toEqual([0, 1, 1]);
  });

  it('shows a row for each case it skipped, with the code, and the operation again later', async () => {
    const all = await workfleet('bulk', 'retry', '--key', 'batch=cli', '--yes');
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^ +3 {2}ok$/m);
    expect(all.stdout).toMatch(/^ +1 {2}skipped CASE_STATE_CONFLICT$/m);
    expect(all.stdout).toMatch(new RegExp(`^ +${charged} {2}skipped +completed +CASE_STATE_CONFLICT {2}case .* is completed: only a failed case can be retried$`, 'm'));
    const id = /^bulk retry (\S+):/m.exec(all.stdout)?.[1] ?? '';
    const shown = await workfleet('bulk', 'show', id, '--outcome', 'skipped', '--json');
    expect(JSON.parse(shown.stdout)).toMatchObject({ operation: { id, status: 'completed', counts: { ok: 3, skipped: 1, error: 0 } }, results: [{ caseId: charged, outcome: 'skipped' }] });
  });
});
