import type { BackoffPolicy } from './definition.js';

/**
 * Delay before attempt `failedAttempt + 1`, in milliseconds. `random` is a number in [0, 1)
 * supplied by the caller (the core never draws randomness itself); jitter takes up to that
 * share off the delay so that retries of many cases failing together spread out.
 */
export function retryDelayMs(policy: BackoffPolicy, failedAttempt: number, random: number): number {
  const base = policy.type === 'fixed' ? policy.delayMs : policy.delayMs * 2 ** Math.min(Math.max(failedAttempt - 1, 0), 40);
  const capped = Math.min(base, policy.maxDelayMs);
  return Math.round(capped * (1 - policy.jitter * random));
}

/** Whether an attempt that failed with a retryable error gets another try. */
export function hasAttemptsLeft(maxAttempts: number, failedAttempt: number): boolean {
  return failedAttempt < maxAttempts;
}
