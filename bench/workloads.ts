/** The benchmark's workflows and shapes, shared by the bench (bench/run.ts) and its fleet processes (bench/fleet-process.ts). */

const ECHO = { task: 'demo.echo', input: { n: '${input.n}' } };

export const WORKFLOWS = {
  one: { steps: [{ id: 'a', ...ECHO }] },
  seq3: {
    steps: [
      { id: 'a', ...ECHO },
      { id: 'b', ...ECHO, after: ['a'] },
      { id: 'c', ...ECHO, after: ['b'] },
    ],
  },
  split10: {
    steps: [...Array.from({ length: 10 }, (_, i) => ({ id: `p${i}`, ...ECHO })), { id: 'join', ...ECHO, after: Array.from({ length: 10 }, (_, i) => `p${i}`) }],
  },
  // Its step waits on a queue no worker serves: what Redis holds for a case waiting for a worker.
  parked: { steps: [{ id: 'a', ...ECHO, queue: 'parked' }] },
  // The 1-step workload under a concurrency key, its cases spread over KEYS keys (bench/limits.ts).
  keyed: { steps: [{ id: 'a', ...ECHO, concurrency: { key: '${input.k}', limit: 1 } }] },
} as const;

/** The keys the `keyed` workload's cases are spread over. */
export const KEYS = 1_000;

/** The input of case number `n` of a workload: `keyed` cases take key `k<n mod KEYS>`, one after another. */
export const inputOf = (workflow: string, n: number): Record<string, unknown> => (workflow === 'keyed' ? { n, k: `k${n % KEYS}` } : { n });

export type WorkflowName = keyof typeof WORKFLOWS;

/** Jobs at once of every worker, raw BullMQ's and workfleet's alike. */
export const CONCURRENCY = 50;

/** The stores a workfleet workload runs on: its own ceiling in one process, and FerretDB. */
export const STORES = ['memory', 'ferretdb'] as const;
export type StoreKind = (typeof STORES)[number];
