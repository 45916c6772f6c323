/** Group commit: many concurrent calls, few round trips. */

export interface GroupCommitOptions {
  /** Items one batch carries at most. Default 500. */
  maxBatch?: number;
  /** Batches being written at once. Default 1. */
  maxInFlight?: number;
  /**
   * How long one batch may take before its calls fail with a GroupCommitTimeoutError and its
   * place is given to the next batch. Default: no limit. A write that never settles (a client
   * stuck on a connection that died) would otherwise hold every later call for ever; the
   * abandoned write may still finish, so writes given a deadline must be safe to repeat.
   */
  timeoutMs?: number;
}

/** A batch took longer than its deadline; its calls may be retried (the write may yet have happened). */
class GroupCommitTimeoutError extends Error {
  /** A socket's timeout code: the error counts as an unavailability (lib/adapters/unavailable.ts). */
  readonly code = 'ETIMEDOUT';
  constructor(timeoutMs: number) {
    super(`a batched write took longer than ${timeoutMs} ms`);
    this.name = 'GroupCommitTimeoutError';
  }
}

/**
 * Coalesces concurrent calls into batches written together. A call made while `maxInFlight`
 * batches are being written waits for the next batch, which goes out as soon as one of them
 * finishes: at low load every call goes out alone and at once, under load one round trip
 * carries many calls, and no call ever joins a batch that was sent before it was made (so a
 * read through a group commit still sees every write that finished before it was asked for).
 *
 * `write` answers each item in order with its result or an Error for that item alone; if it
 * throws, every item of the batch fails with that error.
 */
export class GroupCommit<I, O> {
  private pending: Array<{ item: I; resolve: (value: O) => void; reject: (error: unknown) => void }> = [];
  private inFlight = 0;
  private scheduled = false;
  private readonly maxBatch: number;
  private readonly maxInFlight: number;
  private readonly timeoutMs: number | undefined;

  constructor(
    private readonly write: (items: readonly I[]) => Promise<ReadonlyArray<O | Error>>,
    options: GroupCommitOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.maxInFlight = options.maxInFlight ?? 1;
    this.timeoutMs = options.timeoutMs;
  }

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      // Calls made in the same tick (one fetch of many jobs) go out together.
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight && this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      this.inFlight += 1;
      void this.run(batch);
    }
  }

  private async run(batch: GroupCommit<I, O>['pending']): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const writing = this.write(batch.map((entry) => entry.item));
      const { timeoutMs } = this;
      const results =
        timeoutMs === undefined
          ? await writing
          : await Promise.race([
              writing,
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new GroupCommitTimeoutError(timeoutMs)), timeoutMs);
              }),
            ]);
      batch.forEach((entry, index) => {
        const result = results[index];
        if (result instanceof Error) entry.reject(result);
        else entry.resolve(result as O);
      });
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    } finally {
      clearTimeout(timer);
      this.inFlight -= 1;
      this.pump();
    }
  }
}
