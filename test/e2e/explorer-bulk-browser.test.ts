import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
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
 * The explorer's bulk actions in Chromium, against the real fleet with auth on: an operator
 * filters the case list, retries every matching case (the count comes first, then a
 * confirmation, progress and the cases skipped); a viewer sees no such action.
 */

const SHOTS = join(packageRoot(), 'test-artifacts', 'screenshots');
let servers: TestServers;
let fleet: Fleet;
let browser: Browser;
const keys = { operator: '', viewer: '' };
const declined: string[] = [];
let charged = '';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers freely
async function call(method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${fleet.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${keys.operator}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return response.json();
}

const settled = (ids: readonly string[], status: string) =>
  waitFor(`cases to be ${status}`, async () => ((await Promise.all(ids.map(async (id) => (await call('GET', `/v1/cases/${id}`)).status as string))).every((each) => each === status) ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 100,
  });

beforeAll(async () => {
  requireChromium();
  mkdirSync(SHOTS, { recursive: true });
  servers = await startServers();
  const namespace = servers.namespace();
  const store = new MongoStore({ url: namespace.mongoUrl });
  await store.init();
  const service = new KeyService(store, systemClock);
  const admin = (await service.create({ name: 'admin', roles: ['admin'] })).key;
  for (const role of ['operator', 'viewer'] as const) keys[role] = (await service.create({ name: `${role}-person`, roles: [role] })).key;
  await store.close();
  fleet = await Fleet.start({ redisUrl: servers.redis.url, mongoUrl: namespace.mongoUrl, prefix: namespace.prefix, workers: 1, label: 'e2e-explorer-bulk', env: { AUTH_ENABLED: 'true' } });
  const applied = await fetch(`${fleet.apiUrl}/v1/workflows`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'charge-only', steps: [{ id: 'charge', task: 'payments.charge', input: { amount: '${input.amount}' } }] }),
  });
  expect(applied.status).toBe(201);
  const start = async (amount: number) => {
    const response = await fetch(`${fleet.apiUrl}/v1/cases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ workflow: 'charge-only', input: { amount }, businessKeys: { batch: 'ui' } }),
    });
    return ((await response.json()) as { id: string }).id;
  };
  // Three cards declined (failed at once), then one charged (completed): the newest.
  for (let i = 0; i < 3; i++) declined.push(await start(20_000));
  charged = await start(5);
  await settled(declined, 'failed');
  await settled([charged], 'completed');
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.stopAll();
  await servers?.stop();
});

async function signedIn(key: string): Promise<{ page: Page; problems: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
  });
  await page.goto(`${fleet.apiUrl}/ui`);
  await page.locator('#api-key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who').waitFor();
  return { page, problems, close: () => context.close() };
}

describe('bulk actions in the explorer', () => {
  it('counts the cases the filters match, asks, then retries them with progress and the skipped ones listed', async () => {
    const { page, problems, close } = await signedIn(keys.operator);
    await page.goto(`${fleet.apiUrl}/ui#/cases?key=${encodeURIComponent('batch=ui')}`);
    await expect.poll(() => page.locator('#case-rows tr[data-case]').count()).toBe(4);
    await page.locator('#bulk-retry').click();
    // The dry run's count comes first, and nothing has changed yet.
    await expect.poll(() => page.locator('#bulk-matched').getAttribute('data-matched')).toBe('4');
    expect(await page.locator('#bulk-matched').getAttribute('data-eligible')).toBe('3');
    expect(await page.locator('#bulk-preview').textContent()).toContain('3 can be retried; 1 would be skipped');
    expect(await page.locator('#bulk-confirm').textContent()).toBe('Retry 4 cases');
    await page.locator('#bulk-limit').fill('3');
    expect(await page.locator('#bulk-confirm').textContent()).toBe('Retry 3 cases');
    await page.locator('#bulk-limit').fill('10');
    await page.screenshot({ path: join(SHOTS, 'explorer-bulk-preview.png'), fullPage: true });
    expect((await call('GET', `/v1/cases/${declined[0]}`)).steps.charge.run).toBeUndefined();

    await page.locator('#bulk-confirm').click();
    await expect.poll(() => page.locator('#bulk-status').getAttribute('data-status'), { timeout: 30_000 }).toBe('completed');
    expect(await page.locator('#bulk-status').textContent()).toBe('4 of 4 · 3 ok · 1 skipped · 0 failed · completed');
    expect(await page.locator('#bulk-progress').evaluate((bar) => [(bar as unknown as { value: number }).value, (bar as unknown as { max: number }).max])).toEqual([4, 4]);
    await expect
      .poll(() => page.locator('#bulk-results tr[data-case]').evaluateAll((rows) => rows.map((row) => `${row.getAttribute('data-case')}:${row.getAttribute('data-outcome')}`)))
      .toEqual([`${charged}:skipped`]);
    expect(await page.locator('#bulk-results').textContent()).toContain('CASE_STATE_CONFLICT');
    await page.screenshot({ path: join(SHOTS, 'explorer-bulk-done.png'), fullPage: true });
    // Each declined case ran its step again.
    await waitFor('the retried cases to run again', async () =>
      (await Promise.all(declined.map(async (id) => (await call('GET', `/v1/cases/${id}`)).steps.charge.run as number | undefined))).every((run) => run === 1) ? true : undefined,
    );
    await page.locator('#bulk-close').click();
    await expect.poll(() => page.locator('#bulk-dialog').count()).toBe(0);
    expect(problems).toEqual([]);
    await close();
  }, 120_000);

  it('refuses a signal whose payload is not JSON before sending it, and offers viewers no bulk action', async () => {
    const operator = await signedIn(keys.operator);
    await operator.page.goto(`${fleet.apiUrl}/ui#/cases?key=${encodeURIComponent('batch=ui')}`);
    await operator.page.locator('#bulk-signal').click();
    await expect.poll(() => operator.page.locator('#bulk-confirm').isDisabled()).toBe(false);
    await operator.page.locator('#bulk-signal-name').fill('approve');
    await operator.page.locator('#bulk-signal-payload').fill('{"by": ');
    await operator.page.locator('#bulk-confirm').click();
    await expect.poll(() => operator.page.locator('#bulk-error').textContent()).toContain('not valid JSON');
    await operator.page.locator('#bulk-back').click();
    expect(operator.problems).toEqual([]);
    await operator.close();

    const viewer = await signedIn(keys.viewer);
    await viewer.page.goto(`${fleet.apiUrl}/ui#/cases`);
    await viewer.page.locator('#case-rows tr[data-case]').first().waitFor();
    expect(await viewer.page.locator('#bulk-actions').count()).toBe(0);
    await viewer.close();
  }, 60_000);
});
