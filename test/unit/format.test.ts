import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../lib/core/duration.js';
import { formatDuration, plural } from '../../lib/core/format.js';

describe('plural', () => {
  it('says one thing in the singular and any other count in the plural', () => {
    expect(plural(1, 'attempt')).toBe('1 attempt');
    expect(plural(2, 'attempt')).toBe('2 attempts');
    expect(plural(0, 'attempt')).toBe('0 attempts');
    expect(plural(1, 'entry', 'entries')).toBe('1 entry');
    expect(plural(3, 'entry', 'entries')).toBe('3 entries');
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0 ms'],
    [850, '850 ms'],
    [999.4, '999 ms'],
    [999.6, '1 s'],
    [1_000, '1 s'],
    [1_234, '1.2 s'],
    [9_940, '9.9 s'],
    [9_960, '10 s'],
    [42_000, '42 s'],
    [59_700, '1 min'],
    [60_000, '1 min'],
    [65_000, '1 min 5 s'],
    [300_000, '5 min'],
    [3_599_600, '1 h'],
    [3_900_000, '1 h 5 min'],
    [7_380_000, '2 h 3 min'],
    [86_400_000, '1 d'],
    [183_600_000, '2 d 3 h'],
    [-1_500, '-1.5 s'],
    [Number.NaN, '?'],
  ])('writes %d ms as %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('reads back as about the same duration, whatever the unit', () => {
    for (const text of ['15m', '90s', '1h30m', '36h', '250ms']) {
      const ms = parseDuration(text)!;
      const written = formatDuration(ms)
        .replace(/ (ms|s|min|h|d)\b/g, (_match, unit: string) => (unit === 'min' ? 'm' : unit))
        .replace(/ /g, '');
      expect(parseDuration(written), `${text} written as ${formatDuration(ms)}`).toBe(ms);
    }
  });
});
