import { api, describeError } from './api.js';
import { fill, h, pre } from './dom.js';
import { formatClock, formatDuration, formatJson, formatTime } from './format.js';
import { describeWait, displayState, limitsSummary, stepKind, type CaseView, type StepDefinition, type StepLimits } from './model.js';
import { ChildCaseList, ItemList } from './step-children.js';
import { unitLabel, type GanttRow, type UnitKey } from './timeline.js';

interface StepJob {
  queue: string;
  jobId: string;
  boardUrl: string;
  state: string;
  input: unknown;
  attemptsMade: number;
  progress: unknown;
  failedReason: string | null;
  enqueuedAt: string | null;
  processedAt: string | null;
  finishedAt: string | null;
  logs: string[];
  logCount: number;
}

const field = (name: string, ...value: Array<Node | string | null | undefined | false>) => h('div', { class: 'field' }, h('dt', {}, name), h('dd', {}, ...value));

/**
 * What one step (or one unit of it) did: its definition, state, attempts from the timeline,
 * error, output, and the BullMQ job behind it (rendered input, logs, link into Bull Board). A
 * forEach step as a whole and a sub-workflow step have no job: they list their items or child
 * cases instead.
 */
export class StepPanel {
  readonly element = h('aside', { class: 'step-panel', id: 'step-panel' }, h('p', { class: 'muted' }, 'Select a step in the graph or the timeline.'));
  private unit: UnitKey | undefined;
  private jobFor: string | undefined;
  private readonly job = h('div', { class: 'job', id: 'step-job' });
  /** Kept across refreshes of the same step, so that its page and filter stay put. */
  private items: ItemList | undefined;
  private children: ChildCaseList | undefined;

  constructor(
    private readonly caseId: string,
    private readonly definitions: ReadonlyMap<string, StepDefinition>,
    private readonly mayOperate: boolean,
    private readonly onSelect: (unit: UnitKey) => void = () => undefined,
  ) {}

  get selected(): UnitKey | undefined {
    return this.unit;
  }

  /** `childCases`: the child case ids the step started, for a sub-workflow step. */
  show(unit: UnitKey, record: CaseView, rows: readonly GanttRow[], childCases: readonly string[] = []): void {
    const changed = !this.unit || unitLabel(this.unit) !== unitLabel(unit);
    this.unit = unit;
    const step = record.steps[unit.stepId];
    const definition = this.definitions.get(unit.stepId);
    const state = displayState(step);
    const unitRows = rows.filter((row) => unitLabel(row.unit) === unitLabel(unit));
    const attempts = unitRows.flatMap((row) => row.segments.filter((segment) => segment.kind !== 'queued').map((segment) => ({ row, segment })));
    const output = formatJson(step?.output ?? null);
    // A forEach step as a whole runs no job of its own (its items do); nor does a sub-workflow step.
    const isItemParent = Boolean(definition?.forEach) && unit.instance === undefined;
    const isTask = Boolean(definition?.task) && !isItemParent;
    if (isItemParent && this.items?.stepId !== unit.stepId) this.items = new ItemList(this.caseId, unit.stepId, this.onSelect);
    if (definition?.workflow && this.children?.stepId !== unit.stepId) this.children = new ChildCaseList(unit.stepId);

    fill(
      this.element,
      h('h3', {}, unitLabel(unit), ' ', h('span', { class: `badge state-${state}`, id: 'step-state' }, state)),
      h(
        'dl',
        {},
        definition && field('kind', stepKind(definition) || 'task'),
        definition?.after?.length ? field('after', definition.after.join(', ')) : null,
        definition?.when ? field('when', h('code', {}, definition.when)) : null,
        definition?.queue ? field('queue', definition.queue) : null,
        definition?.breaker ? field('breaker', definition.breaker) : null,
        definition?.onFailure ? field('on failure', definition.onFailure) : null,
        step && field('status', `${step.status}${step.run ? ` (run ${step.run + 1})` : ''}`),
        step && field('attempts', String(step.attempts)),
        step?.scheduledAt ? field('scheduled', formatTime(step.scheduledAt)) : null,
        step?.startedAt ? field('started', formatTime(step.startedAt)) : null,
        step?.finishedAt ? field('finished', formatTime(step.finishedAt), step.startedAt ? ` (${formatDuration(Date.parse(step.finishedAt) - Date.parse(step.startedAt))})` : '') : null,
        step?.nextAttemptAt ? field('next attempt', formatTime(step.nextAttemptAt), nextAttemptReason(step.deferredBy, step.limits)) : null,
        step?.limits ? limitsField(step.limits, unit.instance) : null,
        step?.waitingFor
          ? field('waits for', step.waitingFor.signals.length ? `signal ${step.waitingFor.signals.join(' or ')}` : 'timer', step.waitingFor.until ? ` until ${formatTime(step.waitingFor.until)}` : '')
          : null,
        step?.items ? field('items', `${step.items.completed} completed, ${step.items.failed} failed, ${step.items.running} running, ${step.items.pending} pending of ${step.items.total}`) : null,
        step?.iteration !== undefined ? field('iteration', String(step.iteration)) : null,
        step?.skipReason ? field('skipped', step.skipReason) : null,
        step?.compensation ? field('compensation', `${step.compensation.status}, ${step.compensation.attempts} attempts`) : null,
      ),
      step?.error
        ? h('div', { class: 'error-box', id: 'step-error' }, h('strong', {}, step.error.code), ': ', step.error.message, step.error.details === undefined ? null : pre(formatJson(step.error.details).text))
        : null,
      attempts.length > 0 ? attemptsTable(attempts) : null,
      // What a parent started comes first: it is what its reader opens it for.
      isItemParent ? this.items?.element : null,
      definition?.workflow ? this.children?.element : null,
      h('h4', {}, 'Output'),
      pre(output.text),
      definition?.input !== undefined ? h('h4', {}, 'Input (as defined)') : null,
      definition?.input !== undefined ? pre(formatJson(definition.input).text) : null,
      isTask ? this.job : null,
      !isTask && step?.status === 'waiting' && this.mayOperate ? h('p', { class: 'muted' }, 'Send it a signal with the "Send signal" action above.') : null,
    );
    if (isItemParent) this.items?.update(step);
    if (definition?.workflow) this.children?.update(childCases, step);
    // A unit waiting in its key's line has no job yet: it is added when a slot comes free.
    const inLine = Boolean(step?.limits?.waits.some((wait) => wait.kind === 'concurrency' && wait.instance === unit.instance));
    const jobFor = `${unitLabel(unit)}|${step?.status}|${step?.attempts}|${inLine}`;
    if (isTask && (changed || this.jobFor !== jobFor)) {
      this.jobFor = jobFor;
      void this.loadJob(unit, inLine);
    }
  }

  private async loadJob(unit: UnitKey, inLine: boolean): Promise<void> {
    const query = new URLSearchParams();
    if (unit.instance !== undefined) query.set('instance', String(unit.instance));
    if (unit.iteration !== undefined) query.set('iteration', String(unit.iteration));
    if (unit.compensation) query.set('compensation', 'true');
    fill(this.job, h('h4', {}, 'Job'), h('p', { class: 'muted' }, 'loading…'));
    try {
      const job = await api<StepJob>('GET', `/v1/explorer/cases/${encodeURIComponent(this.caseId)}/steps/${encodeURIComponent(unit.stepId)}/job${query.size ? `?${query.toString()}` : ''}`);
      if (this.unit && unitLabel(this.unit) !== unitLabel(unit)) return;
      fill(
        this.job,
        h('h4', {}, 'Job'),
        h(
          'dl',
          {},
          field('queue', job.queue),
          field('job id', h('span', { class: 'mono' }, job.jobId)),
          field('state', job.state !== 'missing' ? job.state : inLine ? "not yet enqueued: it waits in its key's line for a slot" : 'not in Redis (not yet enqueued, or removed after it finished)'),
          field('attempts made', String(job.attemptsMade)),
          job.failedReason ? field('failed reason', job.failedReason) : null,
          job.enqueuedAt ? field('enqueued', formatTime(job.enqueuedAt)) : null,
          job.processedAt ? field('processed', formatTime(job.processedAt)) : null,
          job.finishedAt ? field('finished', formatTime(job.finishedAt)) : null,
        ),
        h('a', { href: job.boardUrl, target: '_blank', rel: 'noopener', id: 'bull-board-link' }, 'Open this job in Bull Board ↗'),
        job.state === 'missing' ? null : h('h4', {}, 'Input (rendered)'),
        job.state === 'missing' ? null : pre(formatJson(job.input).text),
        h('h4', {}, `Job logs (${job.logCount})`),
        job.logs.length > 0 ? pre(job.logs.join('\n'), 'logs') : h('p', { class: 'muted' }, 'No log lines on the job; handler logs go to the worker’s log, bound to this case and step.'),
      );
    } catch (error) {
      fill(this.job, h('h4', {}, 'Job'), h('p', { class: 'error' }, describeError(error)));
    }
  }
}

/** Why the next attempt waits: an open breaker, a limit, or a retry's backoff. */
function nextAttemptReason(breaker: string | undefined, limits: StepLimits | undefined): string {
  if (breaker) return ` (breaker ${breaker} open)`;
  const [first] = limits?.queued === 1 ? limits.waits : [];
  if (first) return first.kind === 'rate' ? ' (rate limit)' : ' (no slot free)';
  return ' (retry backoff)';
}

/**
 * What the step's queued units wait for: its one unit's wait, or for a forEach (or one item of
 * it) how its items stand and the first waits the API looked up.
 */
function limitsField(limits: StepLimits, instance: number | undefined): HTMLElement | null {
  const waits = instance === undefined ? limits.waits : limits.waits.filter((wait) => wait.instance === instance);
  const summary = limits.queued > 1 && instance === undefined ? limitsSummary(limits) : limits.unavailable ? 'place in line unknown (Redis did not answer)' : '';
  if (!summary && waits.length === 0) return null;
  return field('limits', h('span', { id: 'step-limits' }, summary, ...waits.map((wait) => h('div', { class: 'limit-wait', 'data-kind': wait.kind }, describeWait(wait)))));
}

/** Every attempt and wait of the unit; dates stay on one line, the table scrolls in its box when narrow. */
function attemptsTable(attempts: ReadonlyArray<{ row: GanttRow; segment: GanttRow['segments'][number] }>): HTMLElement {
  return h(
    'div',
    { class: 'table-scroll' },
    h(
      'table',
      { class: 'attempts', id: 'step-attempts' },
      h('thead', {}, h('tr', {}, h('th', {}, 'what'), h('th', {}, 'started'), h('th', {}, 'took'), h('th', {}, 'outcome'))),
      h(
        'tbody',
        {},
        ...attempts.map(({ row, segment }) =>
          h(
            'tr',
            { 'data-kind': segment.kind, 'data-outcome': segment.outcome },
            h('td', {}, `${segment.kind}${segment.attempt === undefined ? '' : ` ${segment.attempt}`}${row.run > 1 ? ` (run ${row.run})` : ''}`),
            // The day is in the step's fields above; the time of day keeps the table narrow.
            h('td', { class: 'nowrap', title: formatTime(segment.start) }, formatClock(segment.start)),
            h('td', { class: 'nowrap' }, formatDuration(segment.end - segment.start)),
            h('td', { class: 'break' }, segment.outcome === 'open' ? 'still going' : segment.outcome, segment.note ? h('div', { class: 'muted' }, segment.note) : null),
          ),
        ),
      ),
    ),
  );
}
