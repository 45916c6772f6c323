import { defineHandlers, NonRetryableError, TaskError, type TaskContext } from '../../lib/sdk/index.js';

/**
 * Handlers for the example workflows in examples/workflows, used by `workfleet dev` and the
 * end-to-end tests. They stand in for calls to real services, with small random latencies.
 */

/** Resolves after `ms`, or rejects as soon as the attempt is aborted (timeout, cancel, shutdown). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

const latency = (ctx: TaskContext, base: number) => pause(base + Math.floor(Math.random() * base), ctx.signal);

/** A stand-in for a partner's API that goes down for a while when asked to (per worker process). */
const partner = { downUntil: 0, outagesSeen: new Set<string>() };

export default defineHandlers({
  'inventory.reserve': async (input: { sku: string; quantity: number }, ctx) => {
    await latency(ctx, 10);
    if (!input.sku) throw new NonRetryableError('an order needs a sku', { code: 'SKU_MISSING' });
    return { reservationId: `rsv-${ctx.idempotencyKey.slice(-12)}`, sku: input.sku, quantity: input.quantity };
  },

  'payments.charge': async (input: { amount: number; currency?: string }, ctx) => {
    await latency(ctx, 10);
    if (typeof input.amount !== 'number' || input.amount <= 0) throw new NonRetryableError('amount must be a positive number', { code: 'AMOUNT_INVALID' });
    if (input.amount > 10_000) throw new NonRetryableError(`card declined for ${input.amount}`, { code: 'CARD_DECLINED' });
    // The idempotency key is what a real payment provider would get, so a retry never charges twice.
    return { receipt: `rcpt-${ctx.idempotencyKey.slice(-12)}`, amount: input.amount, currency: input.currency ?? 'EUR' };
  },

  'shipping.ship': async (input: { reservationId: string; receipt: string }, ctx) => {
    await latency(ctx, 10);
    return { trackingNumber: `TRK${Date.now().toString(36).toUpperCase()}`, reservationId: input.reservationId, receipt: input.receipt };
  },

  /** Fails its first `failTimes` attempts (default 2), then succeeds: shows retries with backoff. */
  'flaky.fetch': async (input: { failTimes?: number; url?: string }, ctx) => {
    await latency(ctx, 5);
    const failTimes = input.failTimes ?? 2;
    if (ctx.attempt <= failTimes) throw new TaskError('UPSTREAM_UNAVAILABLE', `upstream answered 503 (attempt ${ctx.attempt} of ${ctx.maxAttempts})`);
    return { url: input.url ?? 'https://example.invalid/data', attempt: ctx.attempt, body: 'ok' };
  },

  /**
   * Calls the simulated partner API. The first call naming an outage (`outageId`, by default the
   * `outageMs` value) takes the partner down for `outageMs`: failures open the step's breaker,
   * later tasks wait without spending attempts, and a probe after the reset timeout closes it
   * again once the partner is back. Later calls naming the same outage do not start it again.
   */
  'partner.lookup': async (input: { customerId?: string; outageMs?: number; outageId?: string }) => {
    const now = Date.now();
    const outage = input.outageId ?? (input.outageMs ? String(input.outageMs) : undefined);
    if (input.outageMs && outage && !partner.outagesSeen.has(outage)) {
      partner.outagesSeen.add(outage);
      partner.downUntil = now + input.outageMs;
    }
    if (now < partner.downUntil) throw new TaskError('PARTNER_UNAVAILABLE', 'partner API answered 503');
    return { customerId: input.customerId ?? 'c-1', tier: 'gold' };
  },

  /** Waits `ms` (default 100), honoring the abort signal: useful to see timeouts. */
  'demo.sleep': async (input: { ms?: number }, ctx) => {
    await pause(input.ms ?? 100, ctx.signal);
    return { slept: input.ms ?? 100 };
  },

  /** Holds for `ms` and says when it ran: what tests of concurrency and rate limits measure. */
  'demo.hold': async (input: { ms?: number }, ctx) => {
    const startedAt = Date.now();
    await pause(input.ms ?? 100, ctx.signal);
    return { startedAt, endedAt: Date.now() };
  },

  /** Returns its input. */
  'demo.echo': async (input: unknown) => input,

  /** Fails until the time in `input.until` has passed: a dependency that comes back later (for retrying a failed case). */
  'demo.gate': async (input: { until?: string }) => {
    if (input.until && Date.now() < Date.parse(input.until)) throw new TaskError('NOT_YET', `the gate opens at ${input.until}`);
    return { passed: new Date().toISOString() };
  },

  // --- approval (deferred choice) ---
  'approval.request': async (input: { approver?: string; amount?: number }, ctx) => {
    ctx.logger.info({ approver: input.approver }, 'approval requested');
    return { requested: true, approver: input.approver ?? 'finance@example.com', amount: input.amount ?? 0 };
  },
  'approval.record': async (input: { decision: unknown; by?: unknown }) => ({ recorded: true, decision: input.decision, by: input.by ?? null }),

  // --- notifications (multi-choice) ---
  'notify.email': async (input: { to?: string }) => ({ channel: 'email', to: input.to ?? 'someone@example.com' }),
  'notify.sms': async (input: { to?: string }) => ({ channel: 'sms', to: input.to ?? '+10000000000' }),
  'notify.push': async (input: { to?: string }) => ({ channel: 'push', to: input.to ?? 'device-1' }),

  // --- batches (multiple instances) ---
  'batch.pack': async (input: { sku: string; quantity?: number }, ctx) => {
    await latency(ctx, 5);
    if (input.sku === 'broken') throw new NonRetryableError(`cannot pack ${input.sku}`, { code: 'UNPACKABLE' });
    return { sku: input.sku, quantity: input.quantity ?? 1, box: `box-${ctx.index ?? 0}` };
  },
  'batch.summarize': async (input: { packed: Array<{ quantity: number } | null> }) => ({
    boxes: input.packed.filter(Boolean).length,
    units: input.packed.reduce((sum, item) => sum + (item?.quantity ?? 0), 0),
  }),

  // --- search index (debounced starts) ---
  /** Reindexes one document at the revision its last edit gave: what a burst of edits comes to. */
  'search.index': async (input: { documentId: string; revision?: number }, ctx) => {
    await latency(ctx, 10);
    return { indexed: input.documentId, revision: input.revision ?? null };
  },

  // --- polling (structured loop) ---
  /** Reports "ready" from iteration `readyAfter` on: a job that polls a long operation. */
  'report.status': async (input: { readyAfter?: number }, ctx) => ({ ready: (ctx.iteration ?? 1) >= (input.readyAfter ?? 3), checks: ctx.iteration ?? 1 }),

  // --- trip (saga with compensations) ---
  'trip.book-flight': async (input: { from?: string; to?: string }, ctx) => ({ booking: `FL-${ctx.idempotencyKey.slice(-6)}`, from: input.from ?? 'BER', to: input.to ?? 'LIS' }),
  'trip.cancel-flight': async (input: { booking: string }) => ({ cancelled: input.booking }),
  'trip.book-hotel': async (_input: unknown, ctx) => ({ booking: `HO-${ctx.idempotencyKey.slice(-6)}` }),
  'trip.cancel-hotel': async (input: { booking: string }) => ({ cancelled: input.booking }),
  'trip.rent-car': async (input: { carAvailable?: boolean }, ctx) => {
    if (input.carAvailable === false) throw new NonRetryableError('no car available on those dates', { code: 'NO_CAR' });
    return { booking: `CA-${ctx.idempotencyKey.slice(-6)}` };
  },
});
