import { formatDuration } from '../core/format.js';

export interface ReadinessCheck {
  name: string;
  /** Resolves when the dependency is usable; `timeoutMs` is how long it may take (the runner enforces it too). */
  check: (timeoutMs: number) => Promise<void>;
}

/** How long a dependency may take to answer a readiness probe. */
const READY_TIMEOUT_MS = 2_000;

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${formatDuration(ms)}`)), ms);
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });
}

/**
 * Runs every check at once, each bounded by `timeoutMs`: a paused server makes the probe answer
 * "not ready" in time rather than hang it (an orchestrator's probe that times out says nothing).
 */
export async function runReadinessChecks(checks: readonly ReadinessCheck[], timeoutMs = READY_TIMEOUT_MS): Promise<{ ready: boolean; checks: Record<string, string> }> {
  const results = await Promise.all(
    checks.map(async ({ name, check }) => {
      try {
        await withTimeout(check(timeoutMs), timeoutMs);
        return [name, 'ok'] as const;
      } catch (error) {
        return [name, (error as Error).message || 'failed'] as const;
      }
    }),
  );
  return { ready: results.every(([, result]) => result === 'ok'), checks: Object.fromEntries(results) };
}
