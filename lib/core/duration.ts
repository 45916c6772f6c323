/** A duration in a definition: milliseconds as a number, or text such as `250ms`, `30s`, `1h30m`. */
export type Duration = number | string;

/** The text form accepted for durations (also used by the published JSON Schema). */
export const DURATION_PATTERN = '^([0-9]+(ms|s|m|h|d))+$';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /([0-9]+)(ms|s|m|h|d)/g;
const WHOLE = new RegExp(DURATION_PATTERN);

/** Returns the duration in milliseconds, or undefined when the text is not a duration. */
export function parseDuration(value: Duration): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (!WHOLE.test(value)) return undefined;
  let total = 0;
  for (const match of value.matchAll(PART)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 0);
  }
  return Number.isSafeInteger(total) ? total : undefined;
}
