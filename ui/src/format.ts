/** How times, durations and JSON are written on the pages. Pure. */

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const abs = Math.abs(ms);
  if (abs < 1_000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1_000).toFixed(abs < 10_000 ? 2 : 1)} s`;
  if (abs < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((abs % 60_000) / 1_000)} s`;
  if (abs < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.round((abs % 3_600_000) / 60_000)} min`;
  return `${Math.floor(ms / 86_400_000)} d ${Math.round((abs % 86_400_000) / 3_600_000)} h`;
}

/** A limit's period as its definition would say it: whole hours, minutes or seconds (1 h, 90 s), else ms. */
export function formatPeriod(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1_000],
  ] as const)
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  return `${ms} ms`;
}

/** A local date and time to the second, e.g. 2025-01-31 14:03:09. */
export function formatTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const pad = (value: number, length = 2) => String(value).padStart(length, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** The local time of day to the second, e.g. 14:03:09: for tables whose day is shown elsewhere. */
export function formatClock(iso: string | number | null | undefined): string {
  return formatTime(iso).slice(11);
}

/** "3 min ago" style age of a time, relative to `now`. */
export function formatAge(iso: string | null | undefined, now: number): string {
  if (!iso) return '';
  const at = Date.parse(iso);
  return Number.isFinite(at) ? `${formatDuration(Math.max(0, now - at))} ago` : '';
}

/** Pretty JSON, cut at `limit` characters so that a huge output cannot freeze the page. */
export function formatJson(value: unknown, limit = 20_000): { text: string; truncated: boolean } {
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? 'null';
  } catch {
    text = String(value);
  }
  return text.length > limit ? { text: `${text.slice(0, limit)}\n…`, truncated: true } : { text, truncated: false };
}

/** One-line JSON for table cells. */
export function compactJson(value: unknown, limit = 300): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? '';
  } catch {
    text = String(value);
  }
  return text.length > limit ? `${text.slice(0, limit)}…` : text;
}

/** A datetime-local input's value (local time, no zone) as ISO 8601, or undefined when empty or invalid. */
export function localInputToIso(value: string): string | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
