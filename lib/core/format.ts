/**
 * Counts and durations as people read them in the CLI and the logs: "1 attempt", "2 attempts",
 * "850 ms", "1.5 s", "5 min", "1 h 5 min". One place, so that every line says them alike.
 */

/** `count` with its noun, singular for exactly one: "1 attempt", "0 attempts", "2 entries". */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}

/** "5 min", or "5 min 2 s" when the smaller unit is not zero. */
function pair(large: number, largeUnit: string, small: number, smallUnit: string): string {
  return small === 0 ? `${large} ${largeUnit}` : `${large} ${largeUnit} ${small} ${smallUnit}`;
}

/**
 * Milliseconds in the largest unit that fits, with the next one when it is not zero: `850 ms`,
 * `1.5 s` (tenths below 10 s), `42 s`, `5 min`, `5 min 2 s`, `1 h 5 min`, `2 d 3 h`. Each step
 * rounds before it picks its unit, so 59.7 s reads `1 min`, never `60 s`.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (Math.round(ms) < 1_000) return `${Math.round(ms)} ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 100) return `${tenths % 10 === 0 ? tenths / 10 : (tenths / 10).toFixed(1)} s`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3_600) return pair(Math.floor(seconds / 60), 'min', seconds % 60, 's');
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1_440) return pair(Math.floor(minutes / 60), 'h', minutes % 60, 'min');
  const hours = Math.round(ms / 3_600_000);
  return pair(Math.floor(hours / 24), 'd', hours % 24, 'h');
}

/** A size in bytes as people read it: `512 B`, `3.1 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit] ?? ''}`;
}
