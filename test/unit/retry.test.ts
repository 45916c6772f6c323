import { describe, expect, it } from 'vitest';
import { hasAttemptsLeft, retryDelayMs } from '../../lib/core/retry.js';

const exponential = { type: 'exponential' as const, delayMs: 1_000, maxDelayMs: 10_000, jitter: 0.5 };

describe('retryDelayMs', () => {
  it('doubles the delay after each failed attempt, up to the cap', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => retryDelayMs(exponential, attempt, 0))).toEqual([1_000, 2_000, 4_000, 8_000, 10_000]);
  });

  it('keeps a fixed delay fixed', () => {
    expect(retryDelayMs({ ...exponential, type: 'fixed' }, 9, 0)).toBe(1_000);
  });

  it('takes up to the jitter share off the delay', () => {
    expect(retryDelayMs(exponential, 1, 0.999)).toBe(500);
    expect(retryDelayMs(exponential, 1, 0.5)).toBe(750);
  });

  it('does not overflow for very high attempt numbers', () => {
    expect(retryDelayMs(exponential, 1_000, 0)).toBe(10_000);
  });
});

describe('hasAttemptsLeft', () => {
  it('counts the first attempt', () => {
    expect(hasAttemptsLeft(3, 1)).toBe(true);
    expect(hasAttemptsLeft(3, 2)).toBe(true);
    expect(hasAttemptsLeft(3, 3)).toBe(false);
    expect(hasAttemptsLeft(1, 1)).toBe(false);
  });
});
