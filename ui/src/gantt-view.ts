import { fill, h } from './dom.js';
import { formatDuration, formatTime } from './format.js';
import { timeTicks, type Gantt, type GanttRow, type Segment, type UnitKey } from './timeline.js';
import { rowWindow } from './virtual.js';

const ROW_HEIGHT = 24;
const MAX_BODY_HEIGHT = 480;
/** Room one tick label needs ("+12 min 30 s"), so that labels never overlap on a narrow track. */
const TICK_SPACING_PX = 80;

const KIND_WORDS: Record<Segment['kind'], string> = {
  queued: 'queued',
  attempt: 'attempt',
  backoff: 'retry backoff',
  deferred: 'deferred (open breaker or limit)',
  waiting: 'waiting',
  running: 'running',
};

/**
 * The Gantt timeline of every unit's attempts and waits. Only the rows in view are in the DOM
 * (a case with a 1,000-item forEach has 1,000 rows); positions are percentages of the track, so
 * the chart follows the page's width without being redrawn.
 */
export class GanttView {
  readonly element: HTMLElement;
  private readonly axis = h('div', { class: 'gantt-axis-track' });
  private readonly body = h('div', { class: 'gantt-body', id: 'gantt-body' });
  private readonly spacer = h('div', { class: 'gantt-spacer' });
  private readonly rowsHost = h('div', { class: 'gantt-rows' });
  private readonly summary = h('p', { class: 'muted', id: 'gantt-summary' });
  private gantt: Gantt = { rows: [], caseMarkers: [], start: 0, end: 1 };
  private selectedKey: string | undefined;
  private frame = 0;

  constructor(private readonly onSelect: (unit: UnitKey, row: GanttRow) => void) {
    this.spacer.append(this.rowsHost);
    this.body.append(this.spacer);
    this.body.addEventListener('scroll', () => this.schedule());
    // The number of ticks follows the track's width (a phone shows fewer than a wide screen).
    new ResizeObserver(() => this.drawAxis()).observe(this.axis);
    this.element = h('div', { class: 'gantt', id: 'gantt' }, h('div', { class: 'gantt-axis' }, h('div', { class: 'gantt-label muted' }, 'unit'), this.axis), this.body, this.summary, legend());
  }

  update(gantt: Gantt): void {
    this.gantt = gantt;
    const span = gantt.end - gantt.start;
    this.drawAxis();
    const attempts = gantt.rows.reduce((sum, row) => sum + row.segments.filter((segment) => segment.kind === 'attempt').length, 0);
    fill(this.summary, `${gantt.rows.length} units, ${attempts} attempts over ${formatDuration(span)} (${formatTime(gantt.start)} to ${formatTime(gantt.end)})`);
    this.body.style.height = `${Math.min(MAX_BODY_HEIGHT, Math.max(ROW_HEIGHT * 2, gantt.rows.length * ROW_HEIGHT + 2))}px`;
    this.spacer.style.height = `${gantt.rows.length * ROW_HEIGHT}px`;
    this.render();
  }

  private drawAxis(): void {
    const gantt = this.gantt;
    const span = gantt.end - gantt.start;
    const width = this.axis.clientWidth;
    const ticks = timeTicks(gantt.start, gantt.end, width > 0 ? Math.max(1, Math.min(8, Math.floor(width / TICK_SPACING_PX))) : 8);
    fill(
      this.axis,
      ...ticks.map((offset) => {
        // A tick near the right edge is labelled to its left, inside the track.
        const tick = h('span', { class: offset / span > 0.8 ? 'tick tick-end' : 'tick' }, `+${formatDuration(offset)}`);
        tick.style.left = `${(offset / span) * 100}%`;
        return tick;
      }),
      ...gantt.caseMarkers.map((marker) => {
        const mark = h(
          'span',
          { class: `case-marker case-marker-${marker.kind}`, title: `${marker.label} at ${formatTime(marker.at)} (+${formatDuration(marker.at - gantt.start)})` },
          marker.kind === 'signal' ? '⚑' : '◆',
        );
        mark.style.left = `${((marker.at - gantt.start) / span) * 100}%`;
        return mark;
      }),
    );
  }

  select(key: string | undefined): void {
    this.selectedKey = key;
    this.render();
  }

  /** Scrolls the row of a unit into view (selecting a step in the graph does). */
  reveal(stepId: string): void {
    const index = this.gantt.rows.findIndex((row) => row.unit.stepId === stepId);
    if (index < 0) return;
    const top = index * ROW_HEIGHT;
    if (top < this.body.scrollTop || top > this.body.scrollTop + this.body.clientHeight - ROW_HEIGHT) this.body.scrollTop = Math.max(0, top - ROW_HEIGHT * 2);
    this.render();
  }

  private schedule(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private render(): void {
    const { rows, start, end } = this.gantt;
    const span = end - start;
    const view = rowWindow(this.body.scrollTop, this.body.clientHeight || MAX_BODY_HEIGHT, ROW_HEIGHT, rows.length);
    this.rowsHost.style.transform = `translateY(${view.offsetTop}px)`;
    const drawn: HTMLElement[] = [];
    for (let i = view.start; i < view.end; i++) {
      const row = rows[i];
      if (row) drawn.push(this.renderRow(row, start, span));
    }
    this.rowsHost.replaceChildren(...drawn);
  }

  private renderRow(row: GanttRow, start: number, span: number): HTMLElement {
    const track = h('div', { class: 'gantt-track' });
    for (const segment of row.segments) {
      const duration = segment.end - segment.start;
      const words = [
        segment.attempt === undefined ? KIND_WORDS[segment.kind] : `${KIND_WORDS[segment.kind]} ${segment.attempt}`,
        segment.outcome === 'open' ? 'still going' : segment.outcome === 'done' ? undefined : segment.outcome,
        formatDuration(duration),
        segment.note,
        segment.plannedEnd ? `until ${formatTime(segment.plannedEnd)}` : undefined,
      ].filter(Boolean);
      const bar = h('div', {
        class: `seg kind-${segment.kind} outcome-${segment.outcome}`,
        'data-kind': segment.kind,
        'data-outcome': segment.outcome,
        ...(segment.attempt === undefined ? {} : { 'data-attempt': segment.attempt }),
        title: words.join(' · '),
      });
      bar.style.left = `${((segment.start - start) / span) * 100}%`;
      bar.style.width = `${(duration / span) * 100}%`;
      track.append(bar);
    }
    for (const marker of row.markers) {
      const mark = h('span', { class: `marker marker-${marker.kind}`, 'data-marker': marker.kind, title: `${marker.label} at ${formatTime(marker.at)}` });
      mark.style.left = `${((marker.at - start) / span) * 100}%`;
      track.append(mark);
    }
    const attempts = row.segments.filter((segment) => segment.kind === 'attempt').length;
    return h(
      'div',
      {
        class: `gantt-row${row.key === this.selectedKey ? ' selected' : ''}`,
        'data-unit': row.key,
        'data-step': row.unit.stepId,
        onclick: () => this.onSelect(row.unit, row),
      },
      h('div', { class: 'gantt-label', title: row.label }, row.label, attempts > 1 ? h('span', { class: 'muted' }, ` ×${attempts}`) : null),
      track,
    );
  }
}

function legend(): HTMLElement {
  const item = (className: string, text: string) => h('span', { class: 'legend-item' }, h('span', { class: `swatch seg ${className}` }), text);
  return h(
    'div',
    { class: 'legend' },
    item('kind-queued outcome-done', 'queued'),
    item('kind-attempt outcome-completed', 'attempt completed'),
    item('kind-attempt outcome-retried', 'attempt failed, retried'),
    item('kind-attempt outcome-failed', 'attempt failed'),
    item('kind-attempt outcome-open', 'running'),
    item('kind-backoff outcome-done', 'retry backoff'),
    item('kind-deferred outcome-done', 'deferral: breaker or limit'),
    item('kind-waiting outcome-open', 'signal or timer wait'),
    item('kind-attempt outcome-cancelled', 'cancelled'),
  );
}
