import { median } from './report.js';
import type { ScaleFigures } from './scale.js';
import { STORES } from './workloads.js';

type Tree = Parameters<typeof median>[0];

/**
 * Operations per case times what one operation costs, measured in the same run, against the
 * CPU each case was measured to use, per workload and store:
 * - Redis: commands per case × Redis CPU per command of the raw baseline (its Redis CPU per job
 *   over its commands per job);
 * - queueing in Node.js: BullMQ jobs per case × the raw worker's CPU per job (what BullMQ alone
 *   costs a process to fetch, run and finish a job; the bench adds the jobs either way);
 * - the store (FerretDB and its PostgreSQL): documents inserted × one history insert's server CPU,
 *   projections × one update's, finds × one `findOne({_id})`'s, from the scale rows at 1,000
 *   stored cases, each timed alone on an idle server; every document inserted (cases and history
 *   entries, batched by the group commit) counts as one insert, so the gap to the measured
 *   figure is what batching and a busy server's amortised overhead save.
 * The rest of the fleet's CPU is the engine's own work (transitions, validation, the store
 * driver, the case mailbox), printed as the residual.
 */
export function costModel(tree: Tree, scale: ScaleFigures | undefined): string[] {
  const base = (path: string) => median(tree, `baselines.${path}`);
  const redisPerCommand = base('rawPerJob.cpuMs.redis') / base('rawPerJob.redisCommands');
  const bullmqPerJob = base('rawPerJob.cpuMs.worker');
  const cost = scale?.storeOpCostMs;
  const fmt = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '–');
  const lines = [
    '',
    `cost model (ms of CPU per case): predicted = operations × unit cost measured in this run; Redis ${(redisPerCommand * 1000).toFixed(2)} µs/command, BullMQ ${bullmqPerJob.toFixed(3)} ms/job in Node.js${
      cost ? `, store ${cost.insertHistory.at1k.toFixed(2)} ms/insert, ${cost.updateById.at1k.toFixed(2)} ms/update, ${cost.findOneById.at1k.toFixed(2)} ms/find` : ''
    }`,
    `${'workload'.padEnd(18)} ${'Redis pred/meas'.padEnd(18)} ${'BullMQ in Node (pred)'.padEnd(22)} ${'fleet meas'.padEnd(11)} ${'engine own'.padEnd(11)} store pred/meas`,
  ];
  for (const store of STORES) {
    for (const workload of ['case1', 'seq3', 'split10']) {
      const at = (name: string) => median(tree, `stores.${store}.perCase.${workload}.${name}`);
      if (!Number.isFinite(at('redisCommands'))) continue;
      const redis = at('redisCommands') * redisPerCommand;
      const bullmq = at('bullmqJobs') * bullmqPerJob;
      const fleet = store === 'memory' ? at('cpuMs.fleet') : at('cpuMs.scheduler') + at('cpuMs.worker') + (at('cpuMs.worker-2') || 0);
      let storeCells = '';
      if (store === 'ferretdb' && cost) {
        const inserts = at('storeOpsByType.insert') || 0;
        const updates = at('storeOpsByType.update') || 0;
        const finds = at('storeOpsByType.find') || 0;
        const predicted = Math.max(inserts, at('storeDocs') - updates) * cost.insertHistory.at1k + updates * cost.updateById.at1k + finds * cost.findOneById.at1k;
        storeCells = `${fmt(predicted)} / ${fmt(at('cpuMs.ferretdb') + at('cpuMs.postgres'))}`;
      }
      lines.push(
        `${`${store} ${workload}`.padEnd(18)} ${`${fmt(redis)} / ${fmt(at('cpuMs.redis'))}`.padEnd(18)} ${fmt(bullmq).padEnd(22)} ${fmt(fleet).padEnd(11)} ${fmt(fleet - bullmq).padEnd(11)} ${storeCells}`.trimEnd(),
      );
    }
  }
  return lines;
}
