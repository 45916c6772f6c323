import { Redis } from 'ioredis';
import { defineHandlers, TaskError } from '../lib/sdk/index.js';

/**
 * Handlers for the chaos suite. Effects go to a ledger (a Redis of their own, standing for a
 * payment provider's database, so losing the fleet's Redis does not lose it) keyed by the
 * step's idempotency key with SET NX, as a real handler guards a payment: a task may run more
 * than once (at least once), its effect happens once. Executions are counted separately so the
 * suite can tell both apart.
 */

// A handlers module is the operator's code: it reads its own settings from the environment.
const redis = new Redis(process.env.CHAOS_LEDGER_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null, lazyConnect: true });
redis.on('error', () => undefined);
const prefix = `${process.env.BULLMQ_PREFIX ?? 'workfleet'}:chaos`;

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

export default defineHandlers({
  /**
   * An effect made once per idempotency key, after a random latency (so work is in flight when
   * faults hit), plus `holdMs` when given (a step that is surely still running when a fault lands).
   */
  'chaos.effect': async (input: { maxMs?: number; holdMs?: number; key?: string }, ctx) => {
    // A run under a concurrency key is logged (start, then end unless its process dies) for the scenario to count overlaps.
    const run = input.key === undefined ? undefined : { key: `${prefix}:runs:${input.key}`, id: `${ctx.idempotencyKey}#${ctx.attempt}#${Math.random()}` };
    if (run) await redis.rpush(run.key, JSON.stringify({ id: run.id, pid: process.pid, startedAt: Date.now() }));
    try {
      await pause((input.holdMs ?? 0) + 20 + Math.floor(Math.random() * (input.maxMs ?? 200)), ctx.signal);
      await redis.incr(`${prefix}:executions:${ctx.idempotencyKey}`);
      const written = await redis.set(`${prefix}:effects:${ctx.idempotencyKey}`, String(ctx.attempt), 'NX');
      if (written === 'OK') await redis.incr(`${prefix}:effects-written`);
      return { effect: ctx.idempotencyKey, attempt: ctx.attempt };
    } finally {
      if (run) await redis.rpush(run.key, JSON.stringify({ id: run.id, endedAt: Date.now() }));
    }
  },

  /** Waits `ms`, honoring the abort signal. */
  'chaos.slow': async (input: { ms?: number }, ctx) => {
    await pause(input.ms ?? 1_000, ctx.signal);
    return { slept: input.ms ?? 1_000 };
  },

  /** Kills its own worker process on every start: a crash-looping job. */
  'chaos.crash': async () => {
    process.kill(process.pid, 'SIGKILL');
    return new Promise(() => undefined);
  },

  /** Blocks the event loop for `ms` (a CPU-bound handler), so the job lock is not renewed. */
  'chaos.block': async (input: { ms?: number }) => {
    const until = Date.now() + (input.ms ?? 40_000);
    while (Date.now() < until) {
      // spin: nothing else in this process runs meanwhile
    }
    return { blocked: input.ms ?? 40_000 };
  },

  /** Never answers and ignores its signal: only the step timeout ends it. */
  'chaos.hang': async () => new Promise(() => undefined),

  /** Returns an output of `bytes` characters (up to the 1 MiB output limit): a case that grows. */
  'chaos.large': async (input: { bytes?: number }) => ({ blob: 'x'.repeat(Math.min(input.bytes ?? 100_000, 1_000_000)) }),

  /** Fails while the dependency is down (a flag in Redis), like a partner API that is unreachable. */
  'chaos.dependency': async () => {
    if ((await redis.get(`${prefix}:dependency-down`)) === '1') throw new TaskError('DEPENDENCY_DOWN', 'the dependency answered 503');
    await redis.incr(`${prefix}:dependency-calls`);
    return { ok: true };
  },
});
