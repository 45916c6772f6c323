import { api, ApiError, describeError } from './api.js';
import { fill, h } from './dom.js';
import { formatDuration, formatTime } from './format.js';
import type { CaseView, StepItemsPage, StepView } from './model.js';
import type { UnitKey } from './timeline.js';

/**
 * What a parent step started: the items of a forEach step (a page at a time, from the explorer's
 * items endpoint, since the case view only counts them) or the child cases of a sub-workflow step
 * (one per run of the step, from its trace). A parent has no job of its own, so this is what its
 * panel shows instead of a link to one.
 */

const PAGE = 100;
const ITEM_STATES = ['', 'failed', 'running', 'scheduled', 'pending', 'completed', 'cancelled'];

/** A forEach step's items: a table of one page, filterable by state; a click selects the item. */
export class ItemList {
  readonly element = h('section', { class: 'children', id: 'step-items' });
  private readonly filter = h('select', { id: 'items-filter', 'aria-label': 'items in state' }, ...ITEM_STATES.map((state) => h('option', { value: state }, state || 'all states')));
  private readonly table = h('div', { class: 'table-scroll' });
  private readonly pager = h('div', { class: 'pager' });
  private offset = 0;
  /** What the shown page was read for; the page is read again only when it changes. */
  private readFor = '';
  private ticket = 0;

  constructor(
    private readonly caseId: string,
    readonly stepId: string,
    private readonly onSelect: (unit: UnitKey) => void,
  ) {
    this.filter.addEventListener('change', () => {
      this.offset = 0;
      void this.load(this.readFor, true);
    });
    fill(this.element, h('h4', {}, 'Items'), h('div', { class: 'children-tools' }, this.filter), this.table, this.pager);
  }

  /** Reads the page again when the step's item counts moved (or it was never read). */
  update(step: StepView | undefined): void {
    const key = JSON.stringify(step?.items ?? null) + (step?.status ?? '');
    if (key !== this.readFor) void this.load(key, false);
  }

  private async load(key: string, force: boolean): Promise<void> {
    if (!force && key === this.readFor) return;
    this.readFor = key;
    const ticket = ++this.ticket;
    const query = new URLSearchParams({ offset: String(this.offset), limit: String(PAGE) });
    if (this.filter.value) query.set('status', this.filter.value);
    try {
      const page = await api<StepItemsPage>('GET', `/v1/explorer/cases/${encodeURIComponent(this.caseId)}/steps/${encodeURIComponent(this.stepId)}/items?${query.toString()}`);
      if (ticket === this.ticket) this.draw(page);
    } catch (error) {
      if (ticket === this.ticket) fill(this.table, h('p', { class: 'error' }, describeError(error)));
    }
  }

  private draw(page: StepItemsPage): void {
    fill(
      this.table,
      page.items.length === 0
        ? h('p', { class: 'muted', id: 'items-empty' }, page.total === 0 ? 'No items yet: the step has not read its list.' : 'No item in this state.')
        : h(
            'table',
            { class: 'items', id: 'items-table' },
            h('thead', {}, h('tr', {}, h('th', {}, 'item'), h('th', {}, 'state'), h('th', {}, 'attempts'), h('th', {}, 'took'), h('th', {}, 'error'))),
            h(
              'tbody',
              {},
              ...page.items.map((item) => {
                const took = item.startedAt && item.finishedAt ? formatDuration(Date.parse(item.finishedAt) - Date.parse(item.startedAt)) : '';
                const error = item.error ? `${item.error.code}: ${item.error.message}` : '';
                return h(
                  'tr',
                  { 'data-index': item.index, 'data-status': item.status },
                  h('td', {}, h('button', { type: 'button', class: 'link', title: `show item ${item.index}`, onclick: () => this.onSelect({ stepId: this.stepId, instance: item.index }) }, `[${item.index}]`)),
                  h('td', {}, h('span', { class: `badge state-${item.status}` }, item.status)),
                  h('td', { class: 'num' }, item.attempts),
                  h('td', { class: 'nowrap', title: item.startedAt ? `started ${formatTime(item.startedAt)}` : '' }, took),
                  h('td', { class: 'clip error-text', title: error }, error),
                );
              }),
            ),
          ),
    );
    const last = page.offset + page.items.length;
    const move = (offset: number) => () => {
      this.offset = offset;
      void this.load(this.readFor, true);
    };
    fill(
      this.pager,
      h(
        'span',
        { class: 'muted', id: 'items-info' },
        page.matching === 0 ? `0 of ${page.total}` : `${page.offset + 1}–${last} of ${page.matching}${page.matching === page.total ? '' : ` (${page.total} items in all)`}`,
      ),
      page.offset > 0 && h('button', { type: 'button', onclick: move(Math.max(0, page.offset - PAGE)) }, '⟨ Earlier'),
      last < page.matching && h('button', { type: 'button', onclick: move(last) }, 'Later ⟩'),
    );
  }
}

/** A sub-workflow step's child cases, newest run last, each with the state it is in now. */
export class ChildCaseList {
  readonly element = h('section', { class: 'children', id: 'step-children' });
  private readFor = '';

  constructor(readonly stepId: string) {}

  update(ids: readonly string[], step: StepView | undefined): void {
    const key = `${ids.join(',')}|${step?.status ?? ''}`;
    if (key === this.readFor) return;
    this.readFor = key;
    if (ids.length === 0) {
      fill(this.element, h('h4', {}, 'Child cases'), h('p', { class: 'muted' }, 'No child case started yet.'));
      return;
    }
    void Promise.all(ids.map((id) => readChild(id))).then((children) => {
      if (key !== this.readFor) return;
      fill(
        this.element,
        h('h4', {}, ids.length === 1 ? 'Child case' : `Child cases (${ids.length}, one per run)`),
        h(
          'ul',
          { class: 'child-cases' },
          ...children.map((child, run) =>
            h(
              'li',
              { 'data-case': child.id },
              h('a', { href: `#/cases/${encodeURIComponent(child.id)}`, class: 'mono clip', title: child.id }, child.id),
              ' ',
              h('span', { class: `badge state-${child.status}`, title: child.detail }, child.status),
              ids.length > 1 ? h('span', { class: 'muted' }, ` run ${run + 1}`) : null,
            ),
          ),
        ),
      );
    });
  }
}

async function readChild(id: string): Promise<{ id: string; status: string; detail: string }> {
  try {
    const child = await api<CaseView>('GET', `/v1/cases/${encodeURIComponent(id)}`);
    return { id, status: child.status, detail: `${child.workflow} v${child.version}` };
  } catch (error) {
    // A child removed by retention (or not readable with this key) still gets its link.
    return { id, status: error instanceof ApiError && error.status === 404 ? 'gone' : 'unknown', detail: describeError(error) };
  }
}

/** The child case ids a sub-workflow step started, in order, from the trace (and the step's current one). */
export function childCaseIds(events: ReadonlyArray<{ type: string; stepId?: string; data: Record<string, unknown> }>, stepId: string, current: string | undefined): string[] {
  const ids = events.filter((event) => event.type === 'child.started' && event.stepId === stepId).map((event) => String(event.data.childId));
  if (current && !ids.includes(current)) ids.push(current);
  return [...new Set(ids)];
}
