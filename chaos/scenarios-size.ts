import { BSON } from 'mongodb';
import type { Cluster } from './cluster.js';
import { readCase, type Accepted, type CheckResult } from './invariants.js';
import type { Scenario } from './scenarios.js';

/**
 * A case growing past its bound (CASE_MAX_BYTES, 4 MiB by default): forEach items that return
 * 600 KB each, and signals of 400 KB sent at once from many clients, while a worker is killed.
 * Before the case budget such a case outgrew MongoDB's 16 MiB document: every commit failed,
 * it stayed running for ever, unmarked, and cancel answered 500. Now a step result past the
 * bound fails its step (CASE_TOO_LARGE) and the case fails per its policy, a signal past it is
 * refused (413), and every case ends (or, if the store still refused it, is marked stuck).
 */

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const check = (name: string, ok: boolean, detail: string): CheckResult => ({ name, ok, detail });
const ITEMS = Array.from({ length: 12 }, (_, index) => index);

const fan = (name: string, failure: 'failFast' | 'collect') => ({
  name,
  steps: [
    {
      id: 'each',
      task: 'chaos.large',
      input: { bytes: 600_000 },
      forEach: { items: '${input.items}', concurrency: 4, failure },
      timeout: '30s',
      retry: { maxAttempts: 3, backoff: { type: 'fixed', delay: '200ms' } },
    },
  ],
});

/** Twelve steps, each taking one signal "part" as its output: 4.8 MB of 400 KB payloads. */
const parts = { name: 'chaos-size-parts', steps: ITEMS.map((index) => ({ id: `part${index}`, waitFor: { signals: ['part'] } })) };

/** HTTP statuses the scenario saw, by what it asked; a 5xx anywhere fails it. */
const answers: Record<string, number[]> = {};
const note = (what: string, status: number) => (answers[what] ??= []).push(status);

async function startCase(cluster: Cluster, workflow: string, key: string, input: object, expect: Accepted['expect']): Promise<Accepted> {
  for (let attempt = 0; attempt < 60; attempt++) {
    const { status, body } = await cluster.http('POST', '/v1/cases', { workflow, idempotencyKey: key, input }).catch(() => ({ status: 0, body: undefined }));
    if (status === 200 || status === 201) return { via: 'http', idempotencyKey: key, caseId: (body as { id: string }).id, expect };
    await pause(500);
  }
  throw new Error(`could not start ${workflow}`);
}

export const SIZE_SCENARIOS: Scenario[] = [
  {
    name: 'case-growing-past-its-bound',
    quick: false,
    cluster: { workers: 2 },
    settleMs: 120_000,
    async run(cluster) {
      for (const key of Object.keys(answers)) delete answers[key];
      for (const definition of [fan('chaos-size-fan', 'failFast'), fan('chaos-size-collect', 'collect'), parts]) {
        const { status } = await cluster.http('POST', '/v1/workflows', definition);
        if (status >= 300) throw new Error(`workflow ${definition.name} refused: ${status}`);
      }
      const run = Date.now().toString(36);
      const accepted: Accepted[] = [];
      for (let index = 0; index < 2; index++) {
        // failFast: the item past the bound fails the step, and the case with it.
        accepted.push(await startCase(cluster, 'chaos-size-fan', `fan-${run}-${index}`, { items: ITEMS }, { status: 'failed', errorCode: 'CASE_TOO_LARGE' }));
        // collect: the items past the bound fail one by one; the step's output would repeat the rest, so the case fails as too large.
        accepted.push(await startCase(cluster, 'chaos-size-collect', `collect-${run}-${index}`, { items: ITEMS }, { status: 'failed', errorCode: 'CASE_TOO_LARGE' }));
      }
      const signalled = await startCase(cluster, 'chaos-size-parts', `parts-${run}`, {}, { status: 'cancelled' });
      accepted.push(signalled);
      // A worker dies while items run: their jobs are taken back and reported again, the budget holds.
      await pause(1_500);
      await cluster.kill('worker-1', 'SIGKILL');
      // Twelve 400 KB signals at once, racing each other past the bound.
      await Promise.all(
        ITEMS.map(async () => {
          const { status } = await cluster.http('POST', `/v1/cases/${signalled.caseId}/signals/part`, { blob: 'x'.repeat(400_000) }).catch(() => ({ status: 0 }));
          note('signal', status);
        }),
      );
      await cluster.respawn('worker-1');
      const { status } = await cluster.http('POST', `/v1/cases/${signalled.caseId}/cancel`, { reason: 'enough' });
      note('cancel', status);
      return { accepted, faults: 1, faultEndedAt: Date.now() };
    },
    async verify(cluster, accepted) {
      const checks: CheckResult[] = [];
      const signals = answers.signal ?? [];
      const fine = signals.every((status) => status === 200 || status === 413);
      checks.push(check('signals', fine && signals.includes(200) && signals.includes(413), `answers ${signals.join(',')} (200 kept, 413 CASE_TOO_LARGE past the bound)`));
      checks.push(
        check(
          'cancel',
          (answers.cancel ?? []).every((status) => status === 200),
          `answers ${(answers.cancel ?? []).join(',')}`,
        ),
      );
      // Every case stays well under the 16 MiB document, and so does each of its history entries.
      const sizes: string[] = [];
      let largest = 0;
      for (const entry of accepted) {
        const doc = await cluster.db.collection('cases').findOne({ _id: entry.caseId as never });
        const entries = await cluster.db.collection('history').find({ caseId: entry.caseId }).toArray();
        const biggest = Math.max(doc ? BSON.calculateObjectSize(doc) : 0, ...entries.map((item) => BSON.calculateObjectSize(item)));
        largest = Math.max(largest, biggest);
        sizes.push((biggest / 1024 / 1024).toFixed(1));
      }
      checks.push(check('size', largest < 6 * 1024 * 1024, `largest document or history entry per case (MiB): ${sizes.join(', ')}`));
      const failed = [];
      for (const entry of accepted) {
        const view = entry.caseId ? await readCase(cluster, entry.caseId) : undefined;
        if (view?.status === 'failed' && !JSON.stringify(view).includes('CASE_TOO_LARGE')) failed.push(view.id);
      }
      checks.push(check('reason', failed.length === 0, failed.length === 0 ? 'every failed case names CASE_TOO_LARGE' : `without the reason: ${failed.join(', ')}`));
      return checks;
    },
  },
];
