import { api, describeError } from './api.js';
import { bulkActions } from './bulk-actions.js';
import { pageOfId } from './case-search.js';
import { fill, h } from './dom.js';
import { formatDuration, formatTime, localInputToIso } from './format.js';
import type { PageContext } from './main.js';
import { caseDuration, CASE_STATUSES, type CaseSummary } from './model.js';
import { poll } from './poller.js';

/**
 * The case list: filters (status, workflow, business key, creation time), newest first, one
 * page at a time from the API's cursor (so 100,000 cases cost what 50 do), counts by status,
 * and an auto-refresh of the first page. An exact case id shows that case alone.
 */

const REFRESH_MS = 5_000;
const PAGE_SIZES = ['25', '50', '100', '200'];

interface StatusAnswer {
  cases: Record<string, number>;
}

/** A datetime-local value for an ISO time, in local time. */
function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

export function casesPage(context: PageContext): () => void {
  const { params, root } = context;
  const filters = {
    id: (params.get('id') ?? '').trim(),
    status: params.get('status') ?? '',
    workflow: params.get('workflow') ?? '',
    key: params.get('key') ?? '',
    after: params.get('after') ?? '',
    before: params.get('before') ?? '',
    limit: PAGE_SIZES.includes(params.get('limit') ?? '') ? (params.get('limit') as string) : '50',
  };
  /** Cursors of the pages before the current one; the first page has none. */
  const cursors: Array<string | undefined> = [undefined];
  let nextCursor: string | null = null;

  const caseId = h('input', { type: 'search', name: 'id', id: 'filter-id', placeholder: 'exact case id', value: filters.id, maxlength: 100, spellcheck: 'false', autocomplete: 'off' });
  const status = h('select', { name: 'status', id: 'filter-status' }, h('option', { value: '' }, 'any status'), ...CASE_STATUSES.map((value) => h('option', { value }, value)));
  status.value = filters.status;
  const workflow = h('select', { name: 'workflow', id: 'filter-workflow' }, h('option', { value: '' }, 'any workflow'));
  const key = h('input', { name: 'key', id: 'filter-key', placeholder: 'orderId=A-17', value: filters.key, pattern: '^[A-Za-z][A-Za-z0-9_]{0,39}=.+$', title: 'A business key given at start, as name=value' });
  const after = h('input', { type: 'datetime-local', name: 'after', id: 'filter-after', value: toLocalInput(filters.after) });
  const before = h('input', { type: 'datetime-local', name: 'before', id: 'filter-before', value: toLocalInput(filters.before) });
  const limit = h('select', { name: 'limit', id: 'filter-limit' }, ...PAGE_SIZES.map((value) => h('option', { value }, `${value} per page`)));
  limit.value = filters.limit;
  const auto = h('input', { type: 'checkbox', id: 'auto-refresh', checked: true });

  const form = h(
    'form',
    {
      class: 'filters',
      id: 'case-filters',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const query = new URLSearchParams();
        if (caseId.value.trim()) query.set('id', caseId.value.trim());
        if (status.value) query.set('status', status.value);
        if (workflow.value) query.set('workflow', workflow.value);
        if (key.value.trim()) query.set('key', key.value.trim());
        const afterIso = localInputToIso(after.value);
        const beforeIso = localInputToIso(before.value);
        if (afterIso) query.set('after', afterIso);
        if (beforeIso) query.set('before', beforeIso);
        if (limit.value !== '50') query.set('limit', limit.value);
        const text = query.toString();
        context.navigate(`#/cases${text ? `?${text}` : ''}`);
      },
    },
    h('label', {}, 'Case id', caseId),
    h('label', {}, 'Status', status),
    h('label', {}, 'Workflow', workflow),
    h('label', {}, 'Business key', key),
    h('label', {}, 'Created after', after),
    h('label', {}, 'Created before', before),
    h('label', {}, 'Page', limit),
    h('button', { type: 'submit', id: 'apply-filters' }, 'Apply'),
    h('a', { href: '#/cases', class: 'reset' }, 'Reset'),
  );

  const counts = h('div', { class: 'counts', id: 'status-counts' });
  const error = h('p', { class: 'error', role: 'alert', id: 'list-error' });
  const body = h('tbody', { id: 'case-rows' });
  const table = h(
    'table',
    { class: 'cases', id: 'case-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Case'), h('th', {}, 'Workflow'), h('th', {}, 'Status'), h('th', {}, 'Created'), h('th', {}, 'Duration'), h('th', {}, 'Updated'), h('th', {}, 'Error'))),
    body,
  );
  const pageInfo = h('span', { class: 'page-info', id: 'page-info' });
  const first = h('button', { type: 'button', id: 'page-first', onclick: () => goTo(0) }, '⟨⟨ Newest');
  const newer = h('button', { type: 'button', id: 'page-newer', onclick: () => goTo(cursors.length - 2) }, '⟨ Newer');
  const older = h(
    'button',
    {
      type: 'button',
      id: 'page-older',
      onclick: () => {
        if (!nextCursor) return;
        cursors.push(nextCursor);
        void load();
      },
    },
    'Older ⟩',
  );
  const updated = h('span', { class: 'muted', id: 'list-updated' });

  fill(
    root,
    h('h2', {}, 'Cases'),
    form,
    bulkActions(context, filters, () => void load()),
    counts,
    error,
    h('div', { class: 'table-scroll' }, table),
    h('div', { class: 'pager' }, first, newer, pageInfo, older, h('label', { class: 'auto' }, auto, ' auto-refresh'), updated),
  );

  const goTo = (index: number) => {
    cursors.splice(Math.max(1, index + 1));
    void load();
  };

  // The workflow list fills the select once; a filter naming a workflow not (yet) listed keeps it.
  api<{ workflows: Array<{ name: string }> }>('GET', '/v1/workflows')
    .then((answer) => {
      const names = answer.workflows.map((item) => item.name).sort();
      if (filters.workflow && !names.includes(filters.workflow)) names.push(filters.workflow);
      workflow.append(...names.map((name) => h('option', { value: name }, name)));
      workflow.value = filters.workflow;
    })
    .catch((problem: unknown) => fill(error, describeError(problem)));

  const loadCounts = async () => {
    if (!context.may('fleet:read')) return;
    const answer = await api<StatusAnswer>('GET', '/v1/status');
    const total = Object.values(answer.cases).reduce((sum, value) => sum + value, 0);
    fill(
      counts,
      h('span', { class: 'muted' }, `All ${total.toLocaleString()} cases:`),
      ...CASE_STATUSES.map((value) =>
        h('a', { class: `chip state-${value}${filters.status === value ? ' selected' : ''}`, href: `#/cases?status=${value}`, 'data-status': value }, `${value} ${(answer.cases[value] ?? 0).toLocaleString()}`),
      ),
    );
  };

  /** Answers arrive in any order; only the latest request's is drawn. */
  let latest = 0;
  const load = async () => {
    const ticket = ++latest;
    const cursor = cursors.at(-1);
    const query = new URLSearchParams({ limit: filters.limit });
    if (filters.status) query.set('status', filters.status);
    if (filters.workflow) query.set('workflow', filters.workflow);
    if (filters.key) query.set('key', filters.key);
    if (filters.after) query.set('createdAfter', filters.after);
    if (filters.before) query.set('createdBefore', filters.before);
    if (cursor) query.set('cursor', cursor);
    try {
      const [page] = await Promise.all([filters.id ? pageOfId(filters.id) : api<{ cases: CaseSummary[]; nextCursor: string | null }>('GET', `/v1/cases?${query.toString()}`), loadCounts()]);
      const now = Date.now();
      if (ticket !== latest) return;
      nextCursor = page.nextCursor;
      fill(error);
      fill(
        body,
        ...page.cases.map((item) =>
          h(
            'tr',
            { 'data-case': item.id, 'data-status': item.status },
            h('td', { class: 'nowrap' }, h('a', { href: `#/cases/${encodeURIComponent(item.id)}`, class: 'mono' }, item.id)),
            h('td', { class: 'clip', title: `${item.workflow} v${item.version}` }, `${item.workflow} v${item.version}`),
            h('td', {}, h('span', { class: `badge state-${item.status}` }, item.status)),
            h('td', { class: 'nowrap' }, formatTime(item.createdAt)),
            durationCell(caseDuration(item, now)),
            h('td', { class: 'nowrap' }, formatTime(item.updatedAt)),
            h('td', { class: 'error-cell', title: item.error ? `${item.error.code}: ${item.error.message}` : '' }, item.error ? `${item.error.code}: ${item.error.message}` : ''),
          ),
        ),
      );
      if (page.cases.length === 0) fill(body, h('tr', {}, h('td', { colspan: 7, class: 'muted', id: 'no-cases' }, filters.id ? `No case has the id ${filters.id}.` : 'No case matches these filters.')));
      const pageNumber = cursors.length;
      fill(pageInfo, `page ${pageNumber} · ${page.cases.length} case${page.cases.length === 1 ? '' : 's'}`);
      first.disabled = pageNumber === 1;
      newer.disabled = pageNumber === 1;
      older.disabled = !nextCursor;
      fill(updated, `updated ${formatTime(Date.now())}`);
    } catch (problem) {
      if (ticket === latest) fill(error, describeError(problem));
    }
  };

  // Auto-refresh only re-reads the first page: later pages are anchored to a cursor and stay put.
  const poller = poll(
    async () => {
      if (auto.checked && cursors.length === 1) await load();
    },
    REFRESH_MS,
    { immediate: false },
  );
  void load();
  return () => poller.stop();
}

function durationCell(duration: { ms: number; open: boolean }): HTMLElement {
  return h(
    'td',
    { class: `num nowrap${duration.open ? ' muted' : ''}`, 'data-duration-ms': Math.round(duration.ms), title: duration.open ? 'running for, so far' : 'from created to finished' },
    formatDuration(duration.ms),
  );
}
