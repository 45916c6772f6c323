import { fill, h } from './dom.js';
import { compactJson, formatDuration, formatTime } from './format.js';
import { monotonicOffsets, type TraceEventLike } from './timeline.js';
import { rowWindow } from './virtual.js';

const ROW_HEIGHT = 26;
const BODY_HEIGHT = 360;

/** The raw trace as a table: every event, filterable, with only the rows in view in the DOM. */
export class TraceView {
  readonly element: HTMLElement;
  private readonly filter = h('input', { type: 'search', id: 'trace-filter', placeholder: 'filter by type, step or data', 'aria-label': 'filter the trace' });
  private readonly body = h('div', { class: 'trace-body', id: 'trace-body', role: 'rowgroup' });
  private readonly spacer = h('div', { class: 'trace-spacer' });
  private readonly rowsHost = h('div', { class: 'trace-rows' });
  private readonly count = h('span', { class: 'muted', id: 'trace-count' });
  private events: readonly TraceEventLike[] = [];
  private shown: readonly TraceEventLike[] = [];
  private offsets = new Map<number, { offsetMs: number; skewMs: number }>();
  private frame = 0;

  constructor() {
    this.spacer.append(this.rowsHost);
    this.body.append(this.spacer);
    this.body.addEventListener('scroll', () => {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.render();
      });
    });
    this.filter.addEventListener('input', () => this.apply());
    this.element = h(
      'div',
      { class: 'trace', id: 'trace', role: 'table', 'aria-label': 'trace events' },
      h('div', { class: 'trace-tools' }, this.filter, this.count),
      h('div', { class: 'trace-row trace-head', role: 'row' }, h('span', {}, 'seq'), h('span', {}, 'time'), h('span', {}, '+'), h('span', {}, 'type'), h('span', {}, 'step'), h('span', {}, 'data')),
      this.body,
    );
  }

  update(events: readonly TraceEventLike[]): void {
    this.events = events;
    this.offsets = monotonicOffsets(events);
    this.apply();
  }

  /** Filters by the step, e.g. when a step is selected elsewhere. */
  focusStep(stepId: string): void {
    this.filter.value = stepId;
    this.apply();
  }

  private apply(): void {
    const needle = this.filter.value.trim().toLowerCase();
    this.shown = needle
      ? this.events.filter(
          (event) =>
            event.type.includes(needle) || (event.stepId ?? '').toLowerCase() === needle || (event.stepId ?? '').toLowerCase().includes(needle) || compactJson(event.data, 2_000).toLowerCase().includes(needle),
        )
      : this.events;
    fill(this.count, needle ? `${this.shown.length} of ${this.events.length} events` : `${this.events.length} events`);
    this.spacer.style.height = `${this.shown.length * ROW_HEIGHT}px`;
    this.body.style.height = `${Math.min(BODY_HEIGHT, Math.max(ROW_HEIGHT, this.shown.length * ROW_HEIGHT + 2))}px`;
    this.render();
  }

  private render(): void {
    const view = rowWindow(this.body.scrollTop, this.body.clientHeight || BODY_HEIGHT, ROW_HEIGHT, this.shown.length);
    this.rowsHost.style.transform = `translateY(${view.offsetTop}px)`;
    const rows: HTMLElement[] = [];
    for (let i = view.start; i < view.end; i++) {
      const event = this.shown[i];
      if (!event) continue;
      const data = compactJson(event.data);
      const offset = this.offsets.get(event.seq) ?? { offsetMs: 0, skewMs: 0 };
      rows.push(
        h(
          'div',
          { class: `trace-row type-${event.type.replace('.', '-')}`, role: 'row', 'data-seq': event.seq, 'data-type': event.type },
          h('span', {}, event.seq),
          h('span', { title: event.at }, formatTime(event.at)),
          h('span', offset.skewMs > 0 ? { title: `stamped ${formatDuration(offset.skewMs)} earlier by the process that saw it` } : {}, formatDuration(offset.offsetMs)),
          h('span', { class: 'mono', title: event.type }, event.type),
          h('span', { class: 'mono', title: event.stepId ?? '' }, event.stepId ?? ''),
          h('span', { class: 'mono data', title: data }, data),
        ),
      );
    }
    this.rowsHost.replaceChildren(...rows);
  }
}
