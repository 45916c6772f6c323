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
} as const;

export type WorkflowName = keyof typeof WORKFLOWS;

/** Jobs at once of every worker, raw BullMQ's and workfleet's alike. */
export const CONCURRENCY = 50;

/** The stores a workfleet workload runs on: its own ceiling in one process, and FerretDB. */
export const STORES = ['memory', 'ferretdb'] as const;
export type StoreKind = (typeof STORES)[number];
