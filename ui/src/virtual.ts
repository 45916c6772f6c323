/**
 * Windowing for long lists (1,000 Gantt rows, thousands of trace events): only the rows in
 * view, plus a margin, are in the DOM. Pure arithmetic, unit-tested.
 */

export interface RowWindow {
  /** First row to render. */
  start: number;
  /** One past the last row to render. */
  end: number;
  /** Offset of the first rendered row from the top of the list, in pixels. */
  offsetTop: number;
  /** Height of the whole list, so that the scrollbar is right. */
  totalHeight: number;
}

export function rowWindow(scrollTop: number, viewportHeight: number, rowHeight: number, count: number, overscan = 8): RowWindow {
  const first = Math.max(0, Math.floor(Math.max(0, scrollTop) / rowHeight) - overscan);
  const visible = Math.ceil(Math.max(0, viewportHeight) / rowHeight) + overscan * 2;
  const start = Math.min(first, Math.max(0, count - 1));
  const end = Math.min(count, start + visible);
  return { start: count === 0 ? 0 : start, end, offsetTop: (count === 0 ? 0 : start) * rowHeight, totalHeight: count * rowHeight };
}
