import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { type Browser, type Route } from 'playwright-core';
import { launchChromium, requireChromium } from '../helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uiRoutes } from '../../api/routes/ui.js';
import { freePort } from '../../lib/local-servers/free-port.js';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The explorer's pages at sizes the fleet rarely gives a test: 100,000 cases to page through and
 * a case of 1,000 steps with 3,200 trace events. The built pages are served by the real /ui
 * route; the /v1 answers are made up in the browser (page.route), at the sizes the real API
 * would give (its paging is tested against the store elsewhere). What is checked is that the
 * page renders in bounded time and keeps the DOM bounded: it pages and virtualizes.
 */

const SHOTS = join(packageRoot(), 'test-artifacts', 'screenshots');
const STEPS = 1_000;
const TOTAL = 100_000;
let app: FastifyInstance;
let base: string;
let browser: Browser;

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();

/** Ten lanes of 100 steps, each lane joined to the previous one every ten steps. */
const steps = Array.from({ length: STEPS }, (_, i) => {
  const lane = Math.floor(i / 100);
  const position = i % 100;
  const after = [position > 0 ? `s${i - 1}` : undefined, lane > 0 && position % 10 === 0 ? `s${i - 100}` : undefined].filter((id): id is string => id !== undefined);
  return { id: `s${i}`, task: 'demo.echo', ...(after.length ? { after } : {}) };
});

function bigCase(updatedAt: string) {
  const view: Record<string, unknown> = {};
  steps.forEach((step, i) => {
    const status = i === STEPS - 1 ? 'running' : i % 97 === 0 ? 'failed' : 'completed';
    view[step.id] = {
      status,
      attempts: i % 10 === 0 ? 2 : 1,
      startedAt: iso(i * 10),
      finishedAt: status === 'running' ? null : iso(i * 10 + 8),
      output: { i },
      error: status === 'failed' ? { code: 'E', message: 'no' } : null,
      scheduledAt: iso(i * 10),
    };
  });
  return {
    id: 'big',
    workflow: 'big',
    version: 1,
    status: 'running',
    input: {},
    output: null,
    error: null,
    steps: view,
    createdAt: iso(0),
    updatedAt,
    deadlineAt: iso(86_400_000),
    finishedAt: null,
    startedBy: null,
    businessKeys: {},
    waitingFor: [],
  };
}

function bigTrace() {
  const events: Array<Record<string, unknown>> = [{ seq: 1, type: 'case.created', at: iso(0), data: {} }];
  const push = (type: string, stepId: string, at: number, data: Record<string, unknown>) => events.push({ seq: events.length + 1, type, stepId, at: iso(at), data });
  steps.forEach((step, i) => {
    push('step.scheduled', step.id, i * 10, { task: 'demo.echo', queue: 'default' });
    push('step.started', step.id, i * 10 + 1, { attempt: 1 });
    if (i % 10 === 0) {
      push('step.retried', step.id, i * 10 + 2, { attempt: 1, retryAt: T0 + i * 10 + 4, durationMs: 1, error: { code: 'E', message: 'x' } });
      push('step.started', step.id, i * 10 + 4, { attempt: 2 });
    }
    if (i !== STEPS - 1) push('step.completed', step.id, i * 10 + 8, { attempt: i % 10 === 0 ? 2 : 1, durationMs: 4 });
  });
  return { events };
}

/** Answers /v1 from memory, counting what the page asked for. */
function fakeApi() {
  const asked: string[] = [];
  let updatedAt = iso(20_000);
  const json = (route: Route, body: unknown) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(body) });
  const handler = async (route: Route) => {
    const url = new URL(route.request().url());
    asked.push(url.pathname + url.search);
    const path = url.pathname;
    if (path === '/v1/explorer/session')
      return json(route, {
        authEnabled: false,
        principal: { id: 'anonymous', name: 'auth disabled', roles: ['admin'] },
        permissions: ['cases:read', 'cases:read-own', 'cases:operate', 'fleet:read', 'workflows:read'],
      });
    if (path === '/v1/workflows') return json(route, { workflows: [{ name: 'big', latestVersion: 1 }] });
    if (path === '/v1/status') return json(route, { cases: { pending: 0, running: 4_000, waiting: 1_000, completed: 90_000, failed: 5_000, cancelled: 0 } });
    if (path === '/v1/cases') {
      const page = Number((url.searchParams.get('cursor') ?? 'p0').slice(1));
      const limit = Number(url.searchParams.get('limit') ?? 50);
      const cases = Array.from({ length: limit }, (_, i) => {
        const n = TOTAL - page * limit - i;
        return { id: `case-${String(n).padStart(6, '0')}`, workflow: 'big', version: 1, status: n % 20 === 0 ? 'failed' : 'completed', createdAt: iso(n * 1000), updatedAt: iso(n * 1000 + 5), error: null };
      });
      return json(route, { cases, nextCursor: (page + 1) * limit < TOTAL ? `p${page + 1}` : null });
    }
    if (path === '/v1/workflows/big/versions/1') return json(route, { name: 'big', version: 1, definition: { name: 'big', steps } });
    if (path === '/v1/cases/big') return json(route, bigCase(updatedAt));
    if (path === '/v1/cases/big/trace') return json(route, bigTrace());
    if (path.startsWith('/v1/explorer/cases/big/steps/')) {
      return json(route, {
        queue: 'default',
        jobId: 'big.x',
        boardUrl: '/admin/queues/queue/default/big.x',
        state: 'completed',
        input: {},
        attemptsMade: 1,
        progress: 0,
        failedReason: null,
        enqueuedAt: null,
        processedAt: null,
        finishedAt: null,
        logs: [],
        logCount: 0,
      });
    }
    return route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: { code: 'ROUTE_NOT_FOUND', message: path } }) });
  };
  return { asked, handler, touch: () => (updatedAt = iso(30_000)) };
}

beforeAll(async () => {
  requireChromium();
  mkdirSync(SHOTS, { recursive: true });
  app = Fastify();
  uiRoutes(app);
  const port = await freePort();
  await app.listen({ host: '127.0.0.1', port });
  base = `http://127.0.0.1:${port}`;
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
});

async function tab() {
  const context = await browser.newContext({ viewport: { width: 1500, height: 1000 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  const api = fakeApi();
  await page.route(`${base}/v1/**`, api.handler);
  return { context, page, problems, api };
}

describe('the explorer at scale', () => {
  it('pages through 100,000 cases from the cursor, keeping one page in the DOM', async () => {
    const { context, page, problems, api } = await tab();
    await page.goto(`${base}/ui#/cases`);
    await expect.poll(() => page.locator('#status-counts').textContent()).toContain('All 100,000 cases');
    await expect.poll(() => page.locator('#case-rows tr[data-case]').count()).toBe(50);
    expect(await page.locator('#case-rows tr[data-case]').first().getAttribute('data-case')).toBe('case-100000');
    for (let i = 1; i <= 3; i++) {
      await page.locator('#page-older').click();
      await expect.poll(() => page.locator('#page-info').textContent()).toContain(`page ${i + 1}`);
    }
    await expect.poll(() => page.locator('#case-rows tr[data-case]').first().getAttribute('data-case')).toBe('case-099850');
    expect(await page.locator('#case-rows tr').count()).toBe(50);
    expect(api.asked.filter((url) => url.startsWith('/v1/cases?')).at(-1)).toContain('cursor=p3');
    await page.locator('#page-newer').click();
    await expect.poll(() => page.locator('#case-rows tr[data-case]').first().getAttribute('data-case')).toBe('case-099900');
    expect(problems).toEqual([]);
    await context.close();
  }, 60_000);

  it('shows a case of 1,000 steps and 3,200 trace events quickly, rendering only the rows in view, polling at a bounded rate', async () => {
    const { context, page, problems, api } = await tab();
    const began = Date.now();
    await page.goto(`${base}/ui#/cases/big`);
    await expect.poll(() => page.locator('#graph g.node').count(), { timeout: 20_000 }).toBe(STEPS);
    await expect.poll(() => page.locator('#graph [data-step="s999"]').getAttribute('data-state')).toBe('running');
    await expect.poll(() => page.locator('#gantt-summary').textContent()).toContain(`${STEPS} units`);
    const rendered = Date.now() - began;
    expect(rendered).toBeLessThan(10_000);
    expect(await page.locator('#graph [data-step="s97"]').getAttribute('data-state')).toBe('failed');
    // Only a window of the 1,000 rows and 3,200 events is in the DOM.
    expect(await page.locator('#gantt-body .gantt-row').count()).toBeLessThan(60);
    await expect.poll(() => page.locator('#trace-count').textContent()).toBe('3200 events');
    expect(await page.locator('#trace-body .trace-row').count()).toBeLessThan(60);
    // Scrolling brings the last rows in.
    await page.locator('#gantt-body').evaluate((element) => {
      element.scrollTop = element.scrollHeight;
    });
    await page.locator('#gantt-body .gantt-row[data-unit="s999"]').waitFor();
    expect(await page.locator('#gantt-body .gantt-row[data-unit="s0"]').count()).toBe(0);
    await page.locator('#trace-body').evaluate((element) => {
      element.scrollTop = element.scrollHeight;
    });
    await page.locator('#trace-body .trace-row[data-seq="3200"]').waitFor();
    // Selecting a step works at this size.
    await page.locator('#graph [data-step="s500"]').click();
    await expect.poll(() => page.locator('#step-panel h3').textContent()).toContain('s500');
    await page.screenshot({ path: join(SHOTS, 'explorer-case-1000-steps.png') });

    // Polling: the case is read every 2 s, never more often; the trace again only once the case changed.
    const count = (path: string) => api.asked.filter((url) => url === path).length;
    const from = { at: Date.now(), reads: count('/v1/cases/big'), traces: count('/v1/cases/big/trace') };
    await waitFor('three more reads of the case', () => (count('/v1/cases/big') >= from.reads + 3 ? true : undefined), { timeoutMs: 20_000 });
    expect(Date.now() - from.at).toBeGreaterThanOrEqual(3 * 2_000 - 2_000);
    expect(count('/v1/cases/big/trace') - from.traces).toBeLessThanOrEqual(1);
    api.touch();
    await waitFor('the trace to be read again after the case changed', () => (count('/v1/cases/big/trace') > from.traces ? true : undefined), { timeoutMs: 10_000 });
    expect(problems).toEqual([]);
    await context.close();
  }, 90_000);
});
