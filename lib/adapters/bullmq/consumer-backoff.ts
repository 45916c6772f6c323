import type { Worker } from 'bullmq';

export interface BackoffOptions {
  /** The first pause. Default 1 s. */
  minMs?: number;
  /** The longest pause. Default 10 s: past it, Redis back, a worker would idle for nothing. */
  maxMs?: number;
}

/**
 * Stops a BullMQ worker from fetching for a while after an error, longer each time it recurs.
 * BullMQ waits before retrying a fetch only after a connection error; an error answer (Redis
 * out of memory refuses the script that moves a job to active) is retried at once, and one
 * worker was seen failing 340 fetches a second. Pausing without waiting for active jobs leaves
 * them running and their locks renewed; the worker resumes fetching when the pause is over.
 */
export class ConsumerBackoff {
  private delayMs = 0;
  private lastErrorAt = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly minMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly worker: Pick<Worker, 'pause' | 'resume'>,
    options: BackoffOptions = {},
  ) {
    this.minMs = options.minMs ?? 1_000;
    this.maxMs = options.maxMs ?? 10_000;
  }

  /** An error of the worker: pause fetching, unless a pause is already under way. */
  onError(): void {
    if (this.closed || this.timer) return;
    const now = Date.now();
    // Doubled while errors keep coming within the pause they caused (and a little); back to the first pause after a quiet spell.
    this.delayMs = now - this.lastErrorAt <= this.delayMs * 2 + this.minMs ? Math.min(Math.max(this.delayMs * 2, this.minMs), this.maxMs) : this.minMs;
    this.lastErrorAt = now;
    void this.worker.pause(true).catch(() => undefined);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.lastErrorAt = Date.now();
      if (!this.closed) void this.worker.resume().catch(() => undefined);
    }, this.delayMs);
    this.timer.unref();
  }

  /** The pause now in force, if any (ms). */
  get pausedForMs(): number {
    return this.timer ? this.delayMs : 0;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
