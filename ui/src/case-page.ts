import { api, ApiError, describeError } from './api.js';
import { confirmAction } from './dialog.js';
import { fill, h, pre } from './dom.js';
import { formatDuration, formatJson, formatTime } from './format.js';
import { GanttView } from './gantt-view.js';
import { GraphView } from './graph-view.js';
import type { PageContext } from './main.js';
import { failedStepOf, OPEN_STATUSES, type CaseView, type StepDefinition, type WorkflowVersion } from './model.js';
import { poll } from './poller.js';
import { childCaseIds } from './step-children.js';
import { StepPanel } from './step-panel.js';
import { buildGantt, type Gantt, type TraceEventLike, type UnitKey } from './timeline.js';
import { TraceView } from './trace-view.js';

/** How often an open case is read again; a finished one is not polled. */
const POLL_MS = 2_000;
/** An open case's trace is re-read at least this often even if its `updatedAt` did not change: a safety net, as a case's trace events are committed with its revision (one history entry). */
const TRACE_STALE_MS = 10_000;

/**
 * One case: its graph coloured by step state, the Gantt timeline of every attempt, the step
 * panel, the raw trace, and the actions the key's roles allow. Live while the case is open. A
 * failed case opens on its failed step; an id that names no case says so.
 */
export function casePage(context: PageContext, id: string): () => void {
  const { root } = context;
  const mayOperate = context.may('cases:operate');
  const title = h('div', { class: 'case-title' });
  const facts = h('dl', { class: 'facts', id: 'case-facts' });
  const actions = h('div', { class: 'actions', id: 'case-actions' });
  const banner = h('p', { class: 'error', role: 'alert', id: 'case-error-banner' });
  const caseError = h('div', { id: 'case-error' });
  const live = h('span', { class: 'live muted', id: 'live' });
  const graphHost = h('section', { class: 'panel', id: 'graph-section' }, h('h3', {}, 'Graph'), h('p', { class: 'muted' }, 'loading the definition…'));
  const trace = new TraceView();
  let panel: StepPanel | undefined;
  let graph: GraphView | undefined;
  let record: CaseView | undefined;
  let events: TraceEventLike[] = [];
  let gantt: Gantt = { rows: [], caseMarkers: [], start: 0, end: 1 };
  let traceAt = 0;
  let traceFor = '';
  /** Step ids in definition order, once the definition is read. */
  let order: string[] = [];

  const select = (unit: UnitKey) => {
    if (!record || !panel) return;
    graph?.select(unit.stepId);
    timeline.select(
      gantt.rows.find((row) => row.unit.stepId === unit.stepId && row.unit.instance === unit.instance && row.unit.iteration === unit.iteration && Boolean(row.unit.compensation) === Boolean(unit.compensation))
        ?.key,
    );
    panel.show(unit, record, gantt.rows, childCaseIds(events, unit.stepId, record.steps[unit.stepId]?.childCaseId));
  };
  const timeline = new GanttView((unit) => select(unit));
  const io = h('section', { class: 'panel io', id: 'case-io' });

  fill(
    root,
    h('p', {}, h('a', { href: '#/cases' }, '← cases')),
    h('div', { class: 'case-head' }, title, live),
    facts,
    caseError,
    actions,
    banner,
    h(
      'div',
      { class: 'case-grid' },
      h(
        'div',
        { class: 'case-main' },
        graphHost,
        h('section', { class: 'panel', id: 'timeline-section' }, h('h3', {}, 'Timeline'), timeline.element),
        io,
        h('section', { class: 'panel', id: 'trace-section' }, h('h3', {}, 'Trace'), trace.element),
      ),
      h('div', { class: 'case-side' }, h('p', { class: 'muted' }, 'loading…')),
    ),
  );
  const side = root.querySelector('.case-side') as HTMLElement;

  const loadDefinition = async (current: CaseView) => {
    const version = await api<WorkflowVersion>('GET', `/v1/workflows/${encodeURIComponent(current.workflow)}/versions/${current.version}`);
    const steps = version.definition.steps;
    const definitions = new Map<string, StepDefinition>(steps.map((step) => [step.id, step]));
    order = steps.map((step) => step.id);
    panel = new StepPanel(id, definitions, mayOperate, (unit) => select(unit));
    fill(side, panel.element);
    graph = new GraphView(steps, (stepId) => {
      select({ stepId });
      timeline.reveal(stepId);
    });
    fill(
      graphHost,
      h('h3', {}, 'Graph ', h('span', { class: 'muted' }, `${current.workflow} v${current.version}${version.definition.description ? `: ${version.definition.description}` : ''}`)),
      graph.element,
      stateLegend(),
    );
  };

  const drawHeader = (current: CaseView, now: number) => {
    fill(title, h('h2', {}, 'Case ', h('span', { class: 'mono' }, current.id)), h('span', { class: `badge big state-${current.status}`, id: 'case-status', 'data-status': current.status }, current.status));
    const end = current.finishedAt ? Date.parse(current.finishedAt) : now;
    fill(
      facts,
      h('dt', {}, 'workflow'),
      h('dd', {}, h('a', { href: `#/cases?workflow=${encodeURIComponent(current.workflow)}` }, current.workflow), ` v${current.version}`),
      h('dt', {}, 'created'),
      h('dd', {}, formatTime(current.createdAt)),
      h('dt', {}, current.finishedAt ? 'finished' : 'running for'),
      h('dd', {}, current.finishedAt ? `${formatTime(current.finishedAt)} (took ${formatDuration(end - Date.parse(current.createdAt ?? ''))})` : formatDuration(end - Date.parse(current.createdAt ?? ''))),
      h('dt', {}, 'deadline'),
      h('dd', {}, formatTime(current.deadlineAt)),
      current.startedBy ? h('dt', {}, 'started by') : null,
      current.startedBy ? h('dd', { class: 'mono' }, current.startedBy) : null,
      Object.keys(current.businessKeys).length > 0 ? h('dt', {}, 'business keys') : null,
      Object.keys(current.businessKeys).length > 0
        ? h(
            'dd',
            {},
            Object.entries(current.businessKeys)
              .map(([name, value]) => `${name}=${value}`)
              .join(', '),
          )
        : null,
      current.parent ? h('dt', {}, 'parent') : null,
      current.parent ? h('dd', {}, h('a', { href: `#/cases/${encodeURIComponent(current.parent.caseId)}`, class: 'mono' }, current.parent.caseId), ` step ${current.parent.stepId}`) : null,
      current.waitingFor.length > 0 ? h('dt', {}, 'waiting for') : null,
      current.waitingFor.length > 0
        ? h(
            'dd',
            { id: 'waiting-for' },
            current.waitingFor.map((wait) => `${wait.stepId}: ${wait.signals.length ? `signal ${wait.signals.join(' or ')}` : 'timer'}${wait.until ? ` until ${formatTime(wait.until)}` : ''}`).join('; '),
          )
        : null,
    );
    fill(
      caseError,
      current.error ? h('div', { class: 'error-box' }, h('strong', {}, current.error.code), ': ', current.error.message) : null,
      current.stuck ? h('div', { class: 'warn-box' }, `Stuck since ${formatTime(current.stuck.since)}: ${current.stuck.reason}`) : null,
    );
    fill(
      io,
      h('details', {}, h('summary', {}, 'Case input'), pre(formatJson(current.input).text)),
      h('details', { open: current.status === 'completed' }, h('summary', {}, 'Case output'), pre(formatJson(current.output).text)),
    );
  };

  const drawActions = (current: CaseView) => {
    if (!mayOperate) {
      fill(actions);
      return;
    }
    const open = OPEN_STATUSES.has(current.status);
    fill(
      actions,
      open && h('button', { type: 'button', class: 'danger', id: 'action-cancel', onclick: () => cancelDialog() }, 'Cancel case'),
      current.status === 'failed' && h('button', { type: 'button', id: 'action-retry', onclick: () => retryDialog() }, 'Retry failed steps'),
      open && h('button', { type: 'button', id: 'action-signal', onclick: () => signalDialog(current) }, 'Send signal'),
    );
  };

  const cancelDialog = () => {
    const reason = h('input', { id: 'cancel-reason', maxlength: 1000, placeholder: 'why (shown in the case error and trace)' });
    const compensate = h(
      'select',
      { id: 'cancel-compensate' },
      h('option', { value: '' }, "as the workflow's onCancel says"),
      h('option', { value: 'true' }, 'compensate completed steps first'),
      h('option', { value: 'false' }, 'stop at once, no compensation'),
    );
    confirmAction({
      title: 'Cancel this case?',
      body: [h('p', {}, 'Its jobs are removed or aborted and its child cases cancelled. This cannot be undone.'), h('label', {}, 'Reason ', reason), h('label', {}, 'Compensation ', compensate)],
      confirmLabel: 'Cancel the case',
      danger: true,
      run: async () => {
        const body: { reason?: string; compensate?: boolean } = {};
        if (reason.value.trim()) body.reason = reason.value.trim();
        if (compensate.value) body.compensate = compensate.value === 'true';
        await api('POST', `/v1/cases/${encodeURIComponent(id)}/cancel`, body);
        restartPolling();
      },
    });
  };

  const retryDialog = () =>
    confirmAction({
      title: 'Retry this case?',
      body: [h('p', {}, 'Its failed steps run again (with the same idempotency keys), and the case goes on from there.')],
      confirmLabel: 'Retry',
      run: async () => {
        await api('POST', `/v1/cases/${encodeURIComponent(id)}/retry`);
        restartPolling();
      },
    });

  const signalDialog = (current: CaseView) => {
    const awaited = [...new Set(current.waitingFor.flatMap((wait) => wait.signals))];
    const name = h('input', { id: 'signal-name', list: 'signal-names', required: true, pattern: '^[A-Za-z][A-Za-z0-9_.\\-]*$', value: awaited[0] ?? '', placeholder: 'approve' });
    const payload = h('textarea', { id: 'signal-payload', rows: 6, spellcheck: 'false' });
    payload.value = '{}';
    confirmAction({
      title: 'Send a signal',
      body: [
        h('datalist', { id: 'signal-names' }, ...awaited.map((signal) => h('option', { value: signal }))),
        awaited.length ? h('p', {}, `The case waits for: ${awaited.join(', ')}.`) : h('p', {}, 'No step waits for a signal now; it is kept for one that will.'),
        h('label', {}, 'Signal ', name),
        h('label', {}, 'Payload (JSON) ', payload),
      ],
      confirmLabel: 'Send',
      run: async () => {
        let body: unknown;
        try {
          body = payload.value.trim() ? JSON.parse(payload.value) : null;
        } catch (error) {
          throw new Error(`the payload is not valid JSON: ${(error as Error).message}`);
        }
        if (!name.value.trim()) throw new Error('name the signal');
        await api('POST', `/v1/cases/${encodeURIComponent(id)}/signals/${encodeURIComponent(name.value.trim())}`, body ?? {});
        restartPolling();
      },
    });
  };

  const refresh = async () => {
    try {
      const current = await api<CaseView>('GET', `/v1/cases/${encodeURIComponent(id)}`);
      const first = !record;
      record = current;
      const now = Date.now();
      if (first) await loadDefinition(current);
      const open = OPEN_STATUSES.has(current.status);
      if (current.updatedAt !== traceFor || (open && now - traceAt > TRACE_STALE_MS)) {
        events = (await api<{ events: TraceEventLike[] }>('GET', `/v1/cases/${encodeURIComponent(id)}/trace`)).events;
        traceFor = current.updatedAt ?? '';
        traceAt = now;
        trace.update(events);
      }
      gantt = buildGantt(events, current.finishedAt ? Math.max(Date.parse(current.finishedAt), lastEventAt(events)) : now);
      drawHeader(current, now);
      drawActions(current);
      graph?.update(current.steps, now);
      timeline.update(gantt);
      if (panel?.selected) select(panel.selected);
      else if (first) {
        // A failed case opens on the step that failed it: that is what its reader came for.
        const failed = current.status === 'failed' ? failedStepOf(current, order) : undefined;
        if (failed) {
          select({ stepId: failed });
          timeline.reveal(failed);
        }
      }
      fill(banner);
      fill(live, open ? `live: read every ${POLL_MS / 1000} s, last at ${formatTime(now)}` : `finished; read at ${formatTime(now)}`);
      if (!open) poller?.stop();
    } catch (error) {
      // No such case (mistyped, removed by retention, or another key's): say so instead of loading for ever.
      // A 400 is an id the API cannot even look up (too long).
      if (error instanceof ApiError && (error.code === 'CASE_NOT_FOUND' || (!record && error.status === 400))) {
        poller?.stop();
        fill(root, notFound(id));
        return;
      }
      fill(banner, describeError(error));
    }
  };

  let poller: ReturnType<typeof poll> | undefined;
  const restartPolling = () => {
    poller?.stop();
    poller = poll(refresh, POLL_MS);
  };
  restartPolling();
  return () => poller?.stop();
}

function notFound(id: string): HTMLElement {
  return h(
    'section',
    { class: 'panel not-found', id: 'case-not-found', role: 'alert' },
    h('h2', {}, 'Case not found'),
    h('p', {}, 'No case has the id ', h('span', { class: 'mono break' }, id), '.'),
    h('p', { class: 'muted' }, 'It may be mistyped, removed by retention some time after it finished, or started by another key that yours may not read.'),
    h('p', {}, h('a', { href: '#/cases', id: 'back-to-cases' }, '← Back to the cases')),
  );
}

function lastEventAt(events: readonly TraceEventLike[]): number {
  const last = events.at(-1);
  return last ? Date.parse(last.at) : 0;
}

function stateLegend(): HTMLElement {
  return h(
    'div',
    { class: 'legend' },
    ...['pending', 'scheduled', 'running', 'waiting', 'completed', 'failed', 'skipped', 'cancelled', 'compensated'].map((state) =>
      h('span', { class: 'legend-item' }, h('span', { class: `swatch node-swatch state-${state}` }), state),
    ),
  );
}
