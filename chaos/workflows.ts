/** The workflows the chaos scenarios drive. Effect steps record their effect once per idempotency key. */

const effect = (id: string, after: string[] = [], maxMs = 200) => ({
  id,
  task: 'chaos.effect',
  ...(after.length > 0 ? { after } : {}),
  input: { maxMs },
  timeout: '30s',
  retry: { maxAttempts: 5, backoff: { type: 'fixed', delay: '200ms' } },
});

export const CHAOS_WORKFLOWS = [
  /** Three effects in a row. */
  { name: 'chaos-chain', steps: [effect('a'), effect('b', ['a']), effect('c', ['b'])] },
  /** One quick effect: many small cases (the Redis failover loss-window runs). */
  { name: 'chaos-one', steps: [effect('a', [], 50)] },
  /** Three effects in parallel and a join. */
  { name: 'chaos-split', steps: [effect('a'), effect('b'), effect('c'), effect('join', ['a', 'b', 'c'])] },
  /** One effect that takes up to 1.5 s: work in flight when a worker is told to stop. */
  { name: 'chaos-steady', steps: [effect('work', [], 1_500)] },
  /** Outlives any shutdown grace period. */
  { name: 'chaos-long', steps: [{ id: 'long', task: 'chaos.slow', input: { ms: 12_000 }, timeout: '60s', retry: { maxAttempts: 1 } }] },
  /** Kills whichever worker starts it. */
  { name: 'chaos-crash', steps: [{ id: 'crash', task: 'chaos.crash', retry: { maxAttempts: 3 } }] },
  /** Blocks its worker's event loop for 9 s: past the 4 s job lock. */
  { name: 'chaos-block', steps: [{ id: 'block', task: 'chaos.block', input: { ms: 9_000 }, timeout: '60s', retry: { maxAttempts: 1 } }, effect('after', ['block'])] },
  /** Never answers: only its timeout ends it. */
  { name: 'chaos-hang', steps: [{ id: 'hang', task: 'chaos.hang', timeout: '1500ms', retry: { maxAttempts: 2, backoff: { type: 'fixed', delay: '100ms' } } }] },
  /** An effect that holds its worker for 3 s, then a quick one: a step in flight when a worker is cut off. */
  { name: 'chaos-hold', steps: [{ ...effect('hold'), input: { maxMs: 100, holdMs: 3_000 } }, effect('after', ['hold'])] },
  /** Calls a partner through the "partner" breaker. */
  {
    name: 'chaos-dependency',
    steps: [{ id: 'call', task: 'chaos.dependency', breaker: 'partner', timeout: '5s', retry: { maxAttempts: 4, backoff: { type: 'fixed', delay: '300ms' } } }, effect('after', ['call'])],
  },
] as const;
