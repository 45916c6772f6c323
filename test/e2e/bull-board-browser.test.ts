import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser } from 'playwright-core';
import { launchChromium, requireChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoStore } from '../../lib/adapters/mongo/store.js';
import { KeyService } from '../../lib/engine/keys.js';
import { systemClock } from '../../lib/ports/clock.js';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { Fleet } from '../helpers/fleet.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Bull Board as an operator sees it: the real API process, a real headless Chromium (Debian's
 * chromium, driven by playwright-core), signing in with an API key. A screenshot is kept in
 * test-artifacts/.
 */

let servers: TestServers;
let fleet: Fleet;
let browser: Browser;
const keys: Record<'admin' | 'operator' | 'viewer', string> = { admin: '', operator: '', viewer: '' };

beforeAll(async () => {
  requireChromium();
  servers = await startServers();
  const namespace = servers.namespace();
  const store = new MongoStore({ url: namespace.mongoUrl });
  await store.init();
  const service = new KeyService(store, systemClock);
  for (const role of ['admin', 'operator', 'viewer'] as const) keys[role] = (await service.create({ name: role, roles: [role] })).key;
  await store.close();
  fleet = await Fleet.start({ redisUrl: servers.redis.url, mongoUrl: namespace.mongoUrl, prefix: namespace.prefix, workers: 1, label: 'e2e-bull-board', env: { AUTH_ENABLED: 'true' } });
  // Something to show: a workflow and a case, whose steps go through the queues.
  const headers = { authorization: `Bearer ${keys.admin}`, 'content-type': 'application/json' };
  await fetch(`${fleet.apiUrl}/v1/workflows`, { method: 'POST', headers, body: JSON.stringify({ name: 'board', steps: [{ id: 'a', task: 'demo.echo', queue: 'default' }] }) });
  await fetch(`${fleet.apiUrl}/v1/cases`, { method: 'POST', headers, body: JSON.stringify({ workflow: 'board' }) });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.stopAll();
  await servers?.stop();
});

async function openBoard(key: string | undefined) {
  const context = await browser.newContext(key ? { httpCredentials: { username: 'ops', password: key } } : {});
  const page = await context.newPage();
  const failed: string[] = [];
  page.on('response', (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.url()}`);
  });
  const response = await page.goto(`${fleet.apiUrl}/admin/queues`, { waitUntil: 'networkidle' });
  return { context, page, response, failed };
}

describe('Bull Board in Chromium', () => {
  it('loads for an admin with its assets and lists the workfleet queues', async () => {
    const { context, page, response, failed } = await openBoard(keys.admin);
    expect(response?.status()).toBe(200);
    for (const queue of ['cases', 'results', 'default']) await page.getByText(queue, { exact: true }).first().waitFor({ timeout: 15_000 });
    expect(failed).toEqual([]);
    const dir = join(packageRoot(), 'test-artifacts', 'screenshots');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'bull-board-admin.png'), fullPage: true });
    await context.close();
  }, 60_000);

  it('shows operators the queues read-only', async () => {
    const { context, page, response } = await openBoard(keys.operator);
    expect(response?.status()).toBe(200);
    await page.getByText('default', { exact: true }).first().waitFor({ timeout: 15_000 });
    const queues = (await (await page.request.get(`${fleet.apiUrl}/admin/queues/api/queues`)).json()) as { queues: Array<{ readOnlyMode: boolean }> };
    expect(queues.queues.length).toBeGreaterThan(0);
    expect(queues.queues.every((queue) => queue.readOnlyMode)).toBe(true);
    await context.close();
  }, 60_000);

  it('refuses a retry or a removal that would split a case from its jobs, naming the workfleet command', async () => {
    const headers = { authorization: `Bearer ${keys.admin}`, 'content-type': 'application/json' };
    const board = { authorization: `Basic ${Buffer.from(`ops:${keys.admin}`).toString('base64')}` };
    await fetch(`${fleet.apiUrl}/v1/workflows`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ name: 'board-fails', steps: [{ id: 'fetch', task: 'flaky.fetch', queue: 'default', retry: { maxAttempts: 1 }, input: { failTimes: 9 } }] }),
    });
    const { id } = (await (await fetch(`${fleet.apiUrl}/v1/cases`, { method: 'POST', headers, body: JSON.stringify({ workflow: 'board-fails' }) })).json()) as { id: string };
    const failed = await waitFor(
      'the case to fail',
      async () => {
        const view = (await (await fetch(`${fleet.apiUrl}/v1/cases/${id}`, { headers })).json()) as { status: string };
        return view.status === 'failed' ? view : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(failed.status).toBe('failed');
    const jobs = (await (await fetch(`${fleet.apiUrl}/admin/queues/api/queues?activeQueue=default&status=failed&page=1`, { headers: board })).json()) as {
      queues: Array<{ name: string; jobs: Array<{ id: string }> }>;
    };
    const jobId = jobs.queues.find((queue) => queue.name === 'default')?.jobs.find((job) => job.id.startsWith(id))?.id ?? '';
    expect(jobId).not.toBe('');

    for (const action of ['retry', 'promote']) {
      const answer = await fetch(`${fleet.apiUrl}/admin/queues/api/queues/default/${encodeURIComponent(jobId)}/${action}`, { method: 'PUT', headers: board });
      expect(answer.status).toBe(409);
      const body = (await answer.json()) as { code: string; message: string };
      expect(body.code).toBe('BOARD_ACTION_REFUSED');
      expect(body.message).toContain(`case ${id}`);
      if (action === 'retry') expect(body.message).toContain(`workfleet case retry ${id}`);
    }
    const retryAll = await fetch(`${fleet.apiUrl}/admin/queues/api/queues/default/retry/failed`, { method: 'PUT', headers: board });
    expect(retryAll.status).toBe(409);
    expect(((await retryAll.json()) as { message: string }).message).toContain('workfleet case retry');
    const addStep = await fetch(`${fleet.apiUrl}/admin/queues/api/queues/default/add`, {
      method: 'POST',
      headers: { ...board, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', data: {} }),
    });
    expect(addStep.status).toBe(409);

    // Nothing ran again: the job is still failed, the case too, with nothing new in its trace.
    const view = (await (await fetch(`${fleet.apiUrl}/v1/cases/${id}`, { headers })).json()) as { status: string };
    expect(view.status).toBe('failed');
    const state = await fetch(`${fleet.apiUrl}/admin/queues/api/queues/default/${encodeURIComponent(jobId)}`, { headers: board });
    const detail = (await state.json()) as { status: string; job: { attempts: number } };
    expect(detail).toMatchObject({ status: 'failed', job: { attempts: 1 } });

    // What does not split a case from its jobs stays allowed: removing a finished job.
    const removed = await fetch(`${fleet.apiUrl}/admin/queues/api/queues/default/${encodeURIComponent(jobId)}/clean`, { method: 'PUT', headers: board });
    expect(removed.status).toBeLessThan(300);
  }, 60_000);

  it('never writes a key to the logs', async () => {
    const output = fleet.output('api') + fleet.output('scheduler') + fleet.output('worker-1');
    for (const key of Object.values(keys)) expect(output).not.toContain(key.slice(-43));
  });

  it('refuses viewers and people without a key', async () => {
    const viewer = await openBoard(keys.viewer);
    expect(viewer.response?.status()).toBe(403);
    await viewer.context.close();
    // Without a key the browser gets the Basic challenge (a headless one cannot answer it).
    const context = await browser.newContext();
    const answer = await context.request.get(`${fleet.apiUrl}/admin/queues`);
    expect(answer.status()).toBe(401);
    expect(answer.headers()['www-authenticate']).toContain('Basic realm="workfleet"');
    await context.close();
  }, 60_000);
});
