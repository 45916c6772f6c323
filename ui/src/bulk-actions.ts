import { api, describeError } from './api.js';
import { fill, h } from './dom.js';
import type { PageContext } from './main.js';

/**
 * Acting on every case the list's filters match: retry, cancel or signal them all. The dialog
 * counts them first (a dry run: how many match, by status, how many the action applies to),
 * asks for the limit (and the reason or the signal), then starts a bulk operation and follows it
 * to its end, with the cases it skipped or failed on listed by code.
 */

type Action = 'retry' | 'cancel' | 'signal';

/** The case list's filters, as its page keeps them (times as ISO 8601). */
export interface ListFilters {
  status: string;
  workflow: string;
  key: string;
  after: string;
  before: string;
}

interface Preview {
  matched: number;
  atLeast: boolean;
  byStatus: Record<string, number>;
  eligible: number;
}
interface Operation {
  id: string;
  status: 'running' | 'completed' | 'stopped';
  total: number;
  done: number;
  counts: { ok: number; skipped: number; error: number };
}
interface Result {
  caseId: string;
  outcome: 'ok' | 'skipped' | 'error';
  status: string | null;
  code: string | null;
  message: string | null;
}

const POLL_MS = 1_000;
const DEFAULT_LIMIT = 1_000;
const MAX_LIMIT = 10_000;
/** Rows of skipped or failed cases the dialog shows. */
const MAX_ROWS = 100;
const LABEL: Record<Action, { title: string; verb: string; done: string }> = {
  retry: { title: 'Retry every matching case', verb: 'Retry', done: 'retried' },
  cancel: { title: 'Cancel every matching case', verb: 'Cancel', done: 'cancelled' },
  signal: { title: 'Signal every matching case', verb: 'Signal', done: 'signalled' },
};

function wireFilter(filters: ListFilters): Record<string, string> {
  const filter: Record<string, string> = {};
  if (filters.status) filter.status = filters.status;
  if (filters.workflow) filter.workflow = filters.workflow;
  if (filters.key) filter.key = filters.key;
  if (filters.after) filter.createdAfter = filters.after;
  if (filters.before) filter.createdBefore = filters.before;
  return filter;
}

/** The bar of bulk actions for keys that may operate cases; null for the others. */
export function bulkActions(context: PageContext, filters: ListFilters, onDone: () => void): HTMLElement | null {
  if (!context.may('cases:operate')) return null;
  const button = (action: Action) => h('button', { type: 'button', id: `bulk-${action}`, onclick: () => openDialog(action, wireFilter(filters), onDone) }, `${LABEL[action].verb} all…`);
  return h('div', { class: 'actions', id: 'bulk-actions' }, h('span', { class: 'muted' }, 'Every case matching these filters:'), button('retry'), button('cancel'), button('signal'));
}

function openDialog(action: Action, filter: Record<string, string>, onDone: () => void): void {
  const preview = h('p', { id: 'bulk-preview' }, 'Counting the matching cases…');
  const error = h('p', { class: 'error', role: 'alert', id: 'bulk-error' });
  const limit = h('input', { type: 'number', id: 'bulk-limit', min: 1, max: MAX_LIMIT, value: DEFAULT_LIMIT });
  const reason = h('input', { id: 'bulk-reason', placeholder: 'cancelled by an operator' });
  const signalName = h('input', { id: 'bulk-signal-name', pattern: '^[A-Za-z][A-Za-z0-9_.\\-]*$', placeholder: 'approve' });
  const payload = h('textarea', { id: 'bulk-signal-payload', rows: 4, spellcheck: 'false' });
  payload.value = '{}';
  const confirm = h('button', { type: 'submit', class: action === 'cancel' ? 'danger' : 'primary', id: 'bulk-confirm', disabled: true }, LABEL[action].verb);
  const back = h('button', { type: 'button', id: 'bulk-back', onclick: () => dialog.close() }, 'Back');
  const fields = [
    h('label', {}, 'At most this many cases (newest first)', limit),
    action === 'cancel' && h('label', {}, 'Reason', reason),
    action === 'signal' && h('label', {}, 'Signal', signalName),
    action === 'signal' && h('label', {}, 'Payload (JSON)', payload),
  ];
  let matched = 0;
  const chosenLimit = () => Math.min(MAX_LIMIT, Math.max(1, Math.floor(Number(limit.value) || DEFAULT_LIMIT)));
  const relabel = () => fill(confirm, `${LABEL[action].verb} ${Math.min(matched, chosenLimit()).toLocaleString()} cases`);
  limit.addEventListener('input', relabel);

  const body = (): Record<string, unknown> => {
    const request: Record<string, unknown> = { filter, limit: chosenLimit() };
    if (action === 'cancel' && reason.value.trim()) request.reason = reason.value.trim();
    if (action === 'signal') {
      if (!signalName.value.trim()) throw new Error('name the signal');
      let value: unknown;
      try {
        value = payload.value.trim() ? JSON.parse(payload.value) : null;
      } catch (problem) {
        throw new Error(`the payload is not valid JSON: ${(problem as Error).message}`);
      }
      request.signal = { name: signalName.value.trim(), payload: value };
    }
    return request;
  };

  const form = h(
    'form',
    {
      method: 'dialog',
      onsubmit: (event: Event) => {
        event.preventDefault();
        let request: Record<string, unknown>;
        try {
          request = body();
        } catch (problem) {
          fill(error, describeError(problem));
          return;
        }
        confirm.disabled = true;
        fill(error, 'Starting…');
        api<Operation>('POST', `/v1/cases/bulk/${action}`, request)
          .then((operation) => follow(form, action, operation, () => dialog.close()))
          .catch((problem: unknown) => {
            fill(error, describeError(problem));
            confirm.disabled = false;
          });
      },
    },
    h('h3', {}, LABEL[action].title),
    h(
      'p',
      { class: 'muted' },
      `Filters: ${
        Object.entries(filter)
          .map(([name, value]) => `${name} ${value}`)
          .join(', ') || 'none (every case)'
      }`,
    ),
    preview,
    ...fields,
    error,
    h('div', { class: 'dialog-buttons' }, back, confirm),
  );
  const dialog = h('dialog', { class: 'confirm', id: 'bulk-dialog' }, form);
  dialog.addEventListener('close', () => {
    dialog.remove();
    onDone();
  });
  document.body.append(dialog);
  dialog.showModal();

  // The signal route needs a signal even to count; any valid name does for that.
  const dry = { filter, dryRun: true, ...(action === 'signal' ? { signal: { name: 'count' } } : {}) };
  api<Preview>('POST', `/v1/cases/bulk/${action}`, dry)
    .then((answer) => {
      matched = answer.matched;
      const statuses = Object.entries(answer.byStatus)
        .map(([status, count]) => `${status} ${count.toLocaleString()}`)
        .join(', ');
      fill(
        preview,
        h('strong', { id: 'bulk-matched', 'data-matched': answer.matched, 'data-eligible': answer.eligible }, `${answer.atLeast ? 'At least ' : ''}${answer.matched.toLocaleString()} cases match`),
        statuses ? ` (${statuses}). ` : '. ',
        `${answer.eligible.toLocaleString()} can be ${LABEL[action].done}; ${(answer.matched - answer.eligible).toLocaleString()} would be skipped.`,
      );
      relabel();
      confirm.disabled = answer.matched === 0;
    })
    .catch((problem: unknown) => fill(error, describeError(problem)));
}

/** Replaces the dialog's form with the operation's progress, read until it ends, then its results. */
function follow(form: HTMLFormElement, action: Action, started: Operation, close: () => void): void {
  const bar = h('progress', { id: 'bulk-progress', max: Math.max(1, started.total), value: 0 });
  const status = h('p', { id: 'bulk-status' });
  const error = h('p', { class: 'error', role: 'alert', id: 'bulk-error' });
  const results = h('div', { id: 'bulk-results' });
  const stop = h('button', { type: 'button', id: 'bulk-stop', onclick: () => void api('POST', `/v1/bulk/${started.id}/stop`).catch((problem: unknown) => fill(error, describeError(problem))) }, 'Stop');
  const closeButton = h('button', { type: 'button', class: 'primary', id: 'bulk-close', onclick: close }, 'Close');
  fill(form, h('h3', {}, `${LABEL[action].title}: operation ${started.id}`), bar, status, error, results, h('div', { class: 'dialog-buttons' }, stop, closeButton));

  const draw = (operation: Operation) => {
    bar.max = Math.max(1, operation.total);
    bar.value = operation.done;
    status.setAttribute('data-status', operation.status);
    fill(
      status,
      `${operation.done.toLocaleString()} of ${operation.total.toLocaleString()} · ${operation.counts.ok} ok · ${operation.counts.skipped} skipped · ${operation.counts.error} failed · ${operation.status}`,
    );
  };
  const showResults = async () => {
    const rows: Result[] = [];
    for (const outcome of ['error', 'skipped'] as const) {
      for (let cursor: string | null = '0'; cursor !== null && rows.length < MAX_ROWS;) {
        const page: { results: Result[]; nextCursor: string | null } = await api('GET', `/v1/bulk/${started.id}/results?outcome=${outcome}&cursor=${cursor}`);
        rows.push(...page.results);
        cursor = page.nextCursor;
      }
    }
    if (rows.length === 0) return fill(results, h('p', { class: 'muted' }, 'No case was skipped or failed.'));
    fill(
      results,
      h(
        'table',
        { class: 'cases' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Case'), h('th', {}, 'Outcome'), h('th', {}, 'Status'), h('th', {}, 'Why'))),
        h(
          'tbody',
          {},
          ...rows
            .slice(0, MAX_ROWS)
            .map((row) =>
              h(
                'tr',
                { 'data-case': row.caseId, 'data-outcome': row.outcome },
                h('td', {}, h('a', { href: `#/cases/${encodeURIComponent(row.caseId)}`, class: 'mono', onclick: close }, row.caseId)),
                h('td', {}, row.outcome),
                h('td', {}, row.status ?? ''),
                h('td', { class: 'error-cell', title: row.message ?? '' }, `${row.code ?? ''}${row.message ? `: ${row.message}` : ''}`),
              ),
            ),
        ),
      ),
    );
  };
  const tick = async (operation: Operation): Promise<void> => {
    draw(operation);
    if (operation.status !== 'running') {
      stop.remove();
      await showResults();
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (!form.isConnected) return;
    await tick(await api<Operation>('GET', `/v1/bulk/${started.id}`));
  };
  tick(started).catch((problem: unknown) => fill(error, describeError(problem)));
}
