import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium, requireChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { Fleet } from '../helpers/fleet.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * What a newcomer meets in the explorer (/ui) in the first hour, through the real fleet (auth
 * off, as `workfleet dev` runs it) and Debian's Chromium: an unknown case id, a failed case, a
 * forEach and a sub-workflow parent, long names, the list's duration column and id search, and
 * a phone-sized window. Screenshots land in test-artifacts/screenshots/.
 */

const SHOTS = join(packageRoot(), 'test-artifacts', 'screenshots');
/** How long the page may take to show what is asserted (it polls every 2 s at most). */
const SHOWN = { timeout: 10_000 };
const LONG_STEP = 'reserve-every-line-of-the-order-in-the-warehouse-before-charging';
const LONG_TASK = 'warehouse.inventory.reserve-every-line-with-a-long-task-name';
const LONG_WORKFLOW = 'a-workflow-whose-name-is-far-longer-than-any-column-would-like-it-to-be';
let servers: TestServers;
let fleet: Fleet;
let browser: Browser;
const ids = { failed: '', batch: '', parent: '', long: '' };

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers freely
async function call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(`${fleet.apiUrl}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as T };
}

async function start(workflow: string, input: Record<string, unknown>): Promise<string> {
  const answer = await call<{ id: string }>('POST', '/v1/cases', { workflow, input });
  expect(answer.status).toBe(201);
  return answer.body.id;
}

const until = (id: string, statuses: string[]) =>
  waitFor(
    `case ${id} to be ${statuses.join(' or ')}`,
    async () => {
      const status = (await call<{ status: string }>('GET', `/v1/cases/${id}`)).body.status;
      return statuses.includes(status) ? status : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );

beforeAll(async () => {
  requireChromium();
  if (!existsSync(join(packageRoot(), 'dist', 'ui', 'index.html'))) throw new Error('dist/ui is missing: npm run build builds the explorer');
  mkdirSync(SHOTS, { recursive: true });
  servers = await startServers();
  const namespace = servers.namespace();
  fleet = await Fleet.start({ redisUrl: servers.redis.url, mongoUrl: namespace.mongoUrl, prefix: namespace.prefix, workers: 1, label: 'e2e-explorer-polish', env: { AUTH_ENABLED: 'false' } });
  const dir = join(packageRoot(), 'examples', 'workflows');
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.yaml'))) {
    const response = await fetch(`${fleet.apiUrl}/v1/workflows`, { method: 'POST', headers: { 'content-type': 'application/yaml' }, body: readFileSync(join(dir, file), 'utf8') });
    expect(response.status, file).toBeLessThan(300);
  }
  // Long names everywhere; its step's queue has no worker, so the case stays open on it.
  const long = {
    name: LONG_WORKFLOW,
    steps: [
      { id: LONG_STEP, task: LONG_TASK, queue: 'nobody-listens' },
      { id: 'then', task: 'demo.echo', after: [LONG_STEP] },
    ],
  };
  expect((await call('POST', '/v1/workflows', long)).status).toBe(201);
  // A declined card fails `charge` for good (not the first step of the definition).
  ids.failed = await start('order', { sku: 'book-42', quantity: 1, amount: 20_000 });
  ids.batch = await start('batch-pack', { lines: [{ sku: 'pen', quantity: 2 }, { sku: 'broken' }, { sku: 'ink', quantity: 1 }] });
  ids.parent = await start('order-batch', { first: { sku: 'a', quantity: 1, amount: 5 }, second: { sku: 'b', quantity: 2, amount: 7 } });
  ids.long = await start(LONG_WORKFLOW, {});
  await Promise.all([until(ids.failed, ['failed']), until(ids.batch, ['completed']), until(ids.parent, ['completed'])]);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await fleet?.stopAll();
  await servers?.stop();
});

async function openTab(width = 1500): Promise<{ page: Page; problems: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
  });
  return { page, problems, close: () => context.close() };
}

// The tests typecheck without the DOM library: page-side code reaches DOM globals through the
// element's document, and turns what it returns into plain values.
/** How much wider than the window the page is (0 when it does not scroll sideways). */
const sideways = (page: Page) => page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
/** The data-index (or other attribute) of each row. */
const attributes = (page: Page, selector: string, ...names: string[]) =>
  page.locator(selector).evaluateAll((rows, wanted) => rows.map((row) => wanted.map((name) => String(row.getAttribute(name))).join(':')), names);

describe('the explorer for a newcomer', () => {
  it('says "not found" for an unknown case id, with a way back, instead of loading for ever', async () => {
    const { page, problems, close } = await openTab();
    await page.goto(`${fleet.apiUrl}/ui#/cases/01a2023c-0000-7000-8000-000000000000`);
    await page.locator('#case-not-found').waitFor(SHOWN);
    expect(await page.locator('#case-not-found h2').textContent()).toBe('Case not found');
    expect(await page.locator('#case-not-found').textContent()).toContain('01a2023c-0000-7000-8000-000000000000');
    expect(await page.getByText('loading', { exact: false }).count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'case-not-found.png'), fullPage: true });
    // An id the API cannot even look up (too long) is not found either.
    await page.goto(`${fleet.apiUrl}/ui#/cases/${'x'.repeat(150)}`);
    await page.locator('#case-not-found').waitFor(SHOWN);
    await page.locator('#back-to-cases').click();
    await page.locator('#case-rows tr[data-case]').first().waitFor(SHOWN);
    expect(problems).toEqual([]);
    await close();
  }, 60_000);

  it('opens a failed case on the step that failed it', async () => {
    const { page, problems, close } = await openTab();
    await page.goto(`${fleet.apiUrl}/ui#/cases/${ids.failed}`);
    await expect.poll(() => page.locator('#step-panel h3').textContent(), SHOWN).toMatch(/^charge /);
    expect(await page.locator('#step-state').textContent()).toBe('failed');
    expect(await page.locator('#step-error').textContent()).toContain('CARD_DECLINED');
    expect(await page.locator('#graph [data-step="charge"]').getAttribute('class')).toContain('selected');
    expect(await page.locator('#gantt-body .gantt-row.selected').getAttribute('data-unit')).toBe('charge');
    // Its attempts fit the side panel of a wide window: nothing hides past its edge.
    expect(await page.locator('#step-attempts').evaluate((table) => Boolean(table.parentElement && table.parentElement.scrollWidth <= table.parentElement.clientWidth))).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'failed-case.png'), fullPage: true });
    expect(problems).toEqual([]);
    await close();
  }, 60_000);

  it('shows the items of a forEach step and the child cases of a sub-workflow step, not a job link', async () => {
    const { page, problems, close } = await openTab();
    await page.goto(`${fleet.apiUrl}/ui#/cases/${ids.batch}`);
    await page.locator('#graph [data-step="pack"]').click(SHOWN);
    await expect.poll(() => attributes(page, '#items-table tbody tr', 'data-index', 'data-status'), SHOWN).toEqual(['0:completed', '1:failed', '2:completed']);
    expect(await page.locator('#items-table tr[data-index="1"]').textContent()).toContain('UNPACKABLE');
    expect(await page.locator('#step-panel #bull-board-link').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'foreach-parent.png'), fullPage: true });
    // Only the failed ones; then one item, whose own job is there to open.
    await page.locator('#items-filter').selectOption('failed');
    await expect.poll(() => attributes(page, '#items-table tbody tr', 'data-index'), SHOWN).toEqual(['1']);
    await page.locator('#items-table tr[data-index="1"] button').click();
    await expect.poll(() => page.locator('#step-panel h3').textContent(), SHOWN).toMatch(/^pack \[1\]/);
    await expect.poll(() => page.locator('#bull-board-link').getAttribute('href'), SHOWN).toBe(`/admin/queues/queue/default/${ids.batch}.pack.i1`);

    // The sub-workflow parent: each step links to the child case it started, with its state.
    const children = (await call<{ steps: Record<string, { childCaseId?: string }> }>('GET', `/v1/cases/${ids.parent}`)).body.steps;
    await page.goto(`${fleet.apiUrl}/ui#/cases/${ids.parent}`);
    await page.locator('#graph [data-step="second"]').click(SHOWN);
    const link = page.locator(`#step-children li[data-case="${children.second?.childCaseId}"]`);
    await expect.poll(() => link.textContent(), SHOWN).toContain('completed');
    expect(await page.locator('#step-panel #bull-board-link').count()).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'subworkflow-parent.png'), fullPage: true });
    await link.locator('a').click();
    await expect.poll(() => page.locator('#case-facts').textContent(), SHOWN).toContain(ids.parent);
    expect(problems).toEqual([]);
    await close();
  }, 60_000);

  it('keeps long names and dates readable: cut with an ellipsis, whole in a tooltip, never overlapping', async () => {
    const { page, problems, close } = await openTab(1200);
    await page.goto(`${fleet.apiUrl}/ui#/cases/${ids.long}`);
    const node = page.locator(`#graph [data-step="${LONG_STEP}"]`);
    await expect.poll(() => node.getAttribute('data-state'), SHOWN).toBe('scheduled');
    expect(await node.locator('title').textContent()).toContain(`${LONG_STEP} (${LONG_TASK})`);
    // The step id, its task and its state line sit on lines of their own, inside the node's box.
    const boxes = await node.evaluate((group) => {
      const box = (selector: string) => {
        const rect = group.querySelector(selector)?.getBoundingClientRect();
        return { top: Number(rect?.top), bottom: Number(rect?.bottom), left: Number(rect?.left), right: Number(rect?.right) };
      };
      return { node: box('.node-box'), id: box('.node-id'), kind: box('.node-kind'), detail: box('.node-detail') };
    });
    expect(boxes.id.bottom).toBeLessThanOrEqual(boxes.kind.top + 1);
    expect(boxes.kind.bottom).toBeLessThanOrEqual(boxes.detail.top + 1);
    for (const text of [boxes.id, boxes.kind, boxes.detail]) {
      expect(text.left).toBeGreaterThanOrEqual(boxes.node.left);
      expect(text.right).toBeLessThanOrEqual(boxes.node.right);
    }
    const label = page.locator(`#gantt-body .gantt-row[data-unit="${LONG_STEP}"] .gantt-label`);
    await label.waitFor(SHOWN);
    expect(await label.getAttribute('title')).toBe(LONG_STEP);
    expect(await label.evaluate((element) => Boolean(element.scrollWidth > element.clientWidth && element.ownerDocument.defaultView?.getComputedStyle(element).textOverflow === 'ellipsis'))).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'long-names-case.png'), fullPage: true });

    await page.goto(`${fleet.apiUrl}/ui#/cases?workflow=${LONG_WORKFLOW}`);
    const row = page.locator(`#case-rows tr[data-case="${ids.long}"]`);
    await row.waitFor(SHOWN);
    // Lines of text in each cell: one client rectangle per line box of its text.
    const cells = await row.locator('td').evaluateAll((tds) =>
      tds.map((td) => {
        const text = td.ownerDocument.createRange();
        text.selectNodeContents(td);
        return { title: td.getAttribute('title') as string | null, cut: Boolean(td.scrollWidth > td.clientWidth), lines: Number(text.getClientRects().length) };
      }),
    );
    expect(cells[1]).toMatchObject({ title: `${LONG_WORKFLOW} v1`, cut: true });
    // Dates (created, updated) stay on one line.
    expect([cells[3]?.lines, cells[5]?.lines]).toEqual([1, 1]);
    await page.screenshot({ path: join(SHOTS, 'long-names-list.png'), fullPage: true });
    expect(problems).toEqual([]);
    await close();
  }, 60_000);

  it('lists how long each case took, and finds a case by its exact id', async () => {
    const { page, problems, close } = await openTab();
    await page.goto(`${fleet.apiUrl}/ui#/cases`);
    await expect.poll(() => page.locator('#case-table thead th').allTextContents(), SHOWN).toContain('Duration');
    const failed = (await call<{ createdAt: string; finishedAt: string }>('GET', `/v1/cases/${ids.failed}`)).body;
    const took = Date.parse(failed.finishedAt) - Date.parse(failed.createdAt);
    await expect.poll(() => page.locator(`#case-rows tr[data-case="${ids.failed}"] td[data-duration-ms]`).getAttribute('data-duration-ms'), SHOWN).toBe(String(took));

    await page.locator('#filter-id').fill(ids.batch);
    await page.locator('#apply-filters').click();
    await expect.poll(() => attributes(page, '#case-rows tr[data-case]', 'data-case'), SHOWN).toEqual([ids.batch]);
    await expect.poll(() => page.url(), SHOWN).toContain(`id=${ids.batch}`);
    await page.locator('#filter-id').fill('01a2023c-0000-7000-8000-00000000beef');
    await page.locator('#apply-filters').click();
    await expect.poll(() => page.locator('#no-cases').textContent(), SHOWN).toBe('No case has the id 01a2023c-0000-7000-8000-00000000beef.');
    expect(problems).toEqual([]);
    await close();
  }, 60_000);

  it('works 420 px wide: no sideways page scroll, tables scroll in their box, controls wrap', async () => {
    const { page, problems, close } = await openTab(420);
    await page.goto(`${fleet.apiUrl}/ui#/cases`);
    await page.locator('#case-rows tr[data-case]').first().waitFor(SHOWN);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(420);
    // The table is wider than the window: it scrolls inside its box.
    expect(
      await page.locator('#case-table').evaluate((table) => ({
        inside: Boolean(table.parentElement && table.parentElement.scrollWidth > table.parentElement.clientWidth),
        overflow: String(table.parentElement && table.ownerDocument.defaultView?.getComputedStyle(table.parentElement).overflowX),
      })),
    ).toEqual({ inside: true, overflow: 'auto' });
    // The filters wrap onto several lines rather than running off the page.
    const tops = await page.locator('#case-filters > *').evaluateAll((items) => new Set(items.map((item) => Math.round(Number(item.getBoundingClientRect().top)))).size);
    expect(tops).toBeGreaterThan(2);
    await page.screenshot({ path: join(SHOTS, 'list-420px.png'), fullPage: true });

    for (const id of [ids.failed, ids.batch, ids.long]) {
      await page.goto(`${fleet.apiUrl}/ui#/cases/${id}`);
      await page.locator('#gantt-body .gantt-row').first().waitFor(SHOWN);
      await page.locator('#trace-body .trace-row').first().waitFor(SHOWN);
      expect([id, await sideways(page)]).toEqual([id, 0]);
    }
    await page.goto(`${fleet.apiUrl}/ui#/cases/${ids.failed}`);
    await expect.poll(() => page.locator('#step-state').textContent(), SHOWN).toBe('failed');
    await page.screenshot({ path: join(SHOTS, 'case-420px.png'), fullPage: true });
    await page.goto(`${fleet.apiUrl}/ui#/fleet`);
    await page.locator('#queues tr[data-queue="default"]').waitFor(SHOWN);
    expect(await sideways(page)).toBe(0);
    await page.screenshot({ path: join(SHOTS, 'fleet-420px.png'), fullPage: true });
    expect(problems).toEqual([]);
    await close();
  }, 90_000);
});
