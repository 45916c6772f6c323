import type { Cluster } from './cluster.js';

/** A case the fleet accepted: through HTTP (its id known at once) or the intake queue (found by its key). */
export interface Accepted {
  via: 'http' | 'intake';
  idempotencyKey: string;
  caseId?: string;
  /** What the scenario expects of it once the fleet has recovered. */
  expect: { status: 'completed' | 'failed' | 'cancelled'; errorCode?: string };
}

export interface CaseView {
  id: string;
  workflow: string;
  status: string;
  error?: { code: string; message: string; stepId?: string };
  steps: Record<string, { status: string; output?: unknown; error?: { code: string; message: string } }>;
  stuck?: { reason: string };
}

export interface TraceEvent {
  seq: number;
  type: string;
  stepId?: string;
  at: string;
  data: Record<string, unknown>;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Findings {
  checks: CheckResult[];
  /** Accepted cases missing, or open without a stuck reason. */
  lost: number;
  /** Steps whose effect was recorded under more than one key, or effects no accepted case accounts for. */
  duplicated: number;
  /** Task executions beyond the effects they made: the at-least-once re-runs. */
  reExecutions: number;
}

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const OPEN = new Set(['pending', 'running', 'waiting']);

/** The case each accepted start made: HTTP answers carry the id, intake starts are found by their key. */
async function resolveCases(cluster: Cluster, accepted: Accepted[]): Promise<void> {
  for (const entry of accepted) {
    if (entry.caseId) continue;
    const doc = await cluster.db.collection('cases').findOne({ idempotencyKey: entry.idempotencyKey }, { projection: { _id: 1 } });
    if (doc) entry.caseId = String(doc._id);
  }
}

export async function readCase(cluster: Cluster, id: string): Promise<CaseView | undefined> {
  const { status, body } = await cluster.http('GET', `/v1/cases/${id}`);
  return status === 200 ? (body as CaseView) : undefined;
}

/**
 * Waits until every accepted case is terminal, or the deadline passes. A stuck mark does not
 * settle a case: every scenario expects its cases to recover, and a case marked stuck while the
 * fault lasted (its step job died with the workers, or no worker served its queue) is resumed
 * once the fault is over, by the stalled-job check within two of its intervals. Taking the mark
 * as settled ended the wait while such a case was still about to run. Whatever is still open at
 * the deadline, stuck or not, fails the checks.
 */
export async function settleCases(cluster: Cluster, accepted: Accepted[], deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    await resolveCases(cluster, accepted);
    const ids = accepted.map((entry) => entry.caseId).filter((id): id is string => id !== undefined);
    if (ids.length === accepted.length) {
      const open = await cluster.db
        .collection('cases')
        .countDocuments({ _id: { $in: ids as never[] }, status: { $in: [...OPEN] } })
        .catch(() => Number.POSITIVE_INFINITY);
      if (open === 0) return true;
    }
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function unitKey(event: TraceEvent): string {
  const data = event.data;
  return JSON.stringify([event.stepId, data.instance ?? null, data.iteration ?? null, data.run ?? null, data.compensation === true]);
}

/** Sequence without gaps from 1, one ending for a finished case, at most one end per step unit. */
function traceProblems(view: CaseView, trace: TraceEvent[]): string[] {
  const problems: string[] = [];
  trace.forEach((event, index) => {
    if (event.seq !== index + 1) problems.push(`event ${index + 1} has seq ${event.seq}`);
  });
  if (trace[0]?.type !== 'case.created') problems.push('trace does not start with case.created');
  const endings = trace.filter((event) => event.type === `case.${view.status}`);
  if (TERMINAL.has(view.status)) {
    if (endings.length !== 1) problems.push(`${endings.length} case.${view.status} events`);
    const last = trace.at(-1);
    if (last && TERMINAL.has(last.type.replace('case.', '')) && last.type !== `case.${view.status}`) problems.push(`last event ${last.type} but status ${view.status}`);
  }
  const ends = new Map<string, number>();
  for (const event of trace) {
    if (event.type !== 'step.completed' && event.type !== 'step.failed') continue;
    const key = unitKey(event);
    ends.set(key, (ends.get(key) ?? 0) + 1);
  }
  for (const [key, count] of ends) if (count > 1) problems.push(`step unit ${key} ended ${count} times`);
  for (const [stepId, step] of Object.entries(view.steps)) {
    if (step.status === 'completed' && !trace.some((event) => event.stepId === stepId && event.type === 'step.completed')) {
      problems.push(`step ${stepId} completed without a trace event`);
    }
  }
  return problems;
}

/** Every check of the suite over MongoDB (through the API) and Redis, once the fleet has recovered. */
export async function checkInvariants(
  cluster: Cluster,
  accepted: Accepted[],
  options: { lockHorizonMs: number; redisMaxBytes: number; rssMaxKb: number; expectAlive: string[]; faultEndedAt: number },
): Promise<Findings> {
  const checks: CheckResult[] = [];
  await resolveCases(cluster, accepted);

  // 1. Every accepted case exists and is terminal, or marked stuck with a reason; and as expected.
  let lost = 0;
  const unexpected: string[] = [];
  const views = new Map<string, CaseView>();
  for (const entry of accepted) {
    const view = entry.caseId ? await readCase(cluster, entry.caseId) : undefined;
    if (!view) {
      lost += 1;
      unexpected.push(`${entry.via} start ${entry.idempotencyKey}: no case`);
      continue;
    }
    views.set(view.id, view);
    if (OPEN.has(view.status) && !view.stuck) {
      lost += 1;
      unexpected.push(`${view.id} still ${view.status}`);
    } else if (view.status !== entry.expect.status || (entry.expect.errorCode && view.error?.code !== entry.expect.errorCode && !JSON.stringify(view.steps).includes(entry.expect.errorCode))) {
      unexpected.push(
        `${view.id} ${view.workflow} ${view.status}${view.error ? ` (${view.error.code}: ${view.error.message})` : ''}${view.stuck ? ` stuck: ${view.stuck.reason}` : ''}, expected ${entry.expect.status}${entry.expect.errorCode ? ` ${entry.expect.errorCode}` : ''}`,
      );
    }
  }
  checks.push({ name: 'cases', ok: unexpected.length === 0, detail: unexpected.length === 0 ? `${accepted.length} as expected` : unexpected.slice(0, 5).join('; ') });

  // 2. Traces complete and ordered; transitions applied once.
  const traceIssues: string[] = [];
  for (const view of views.values()) {
    const { status, body } = await cluster.http('GET', `/v1/cases/${view.id}/trace`);
    if (status !== 200) {
      traceIssues.push(`${view.id}: trace answered ${status}`);
      continue;
    }
    for (const problem of traceProblems(view, (body as { events: TraceEvent[] }).events)) traceIssues.push(`${view.id}: ${problem}`);
  }
  checks.push({ name: 'trace', ok: traceIssues.length === 0, detail: traceIssues.length === 0 ? 'complete, ordered, one end per unit' : traceIssues.slice(0, 5).join('; ') });

  // 3. Effects: each completed effect step has its effect, under its own key, once.
  const ledgerPrefix = `${cluster.prefix}:chaos:effects:`;
  const ledgerKeys = new Set((await cluster.ledgerClient.keys(`${ledgerPrefix}*`)).map((key) => key.slice(ledgerPrefix.length)));
  const written = Number((await cluster.ledgerClient.get(`${cluster.prefix}:chaos:effects-written`)) ?? 0);
  let executions = 0;
  for (const key of await cluster.ledgerClient.keys(`${cluster.prefix}:chaos:executions:*`)) executions += Number(await cluster.ledgerClient.get(key));
  const known = new Set<string>();
  const missingEffects: string[] = [];
  for (const view of views.values()) {
    for (const [stepId, step] of Object.entries(view.steps)) {
      const output = step.output as { effect?: unknown } | undefined;
      if (typeof output?.effect !== 'string') continue;
      known.add(output.effect);
      if (output.effect !== `${view.id}:${stepId}`) missingEffects.push(`${view.id}/${stepId} got key ${output.effect}`);
      if (step.status === 'completed' && !ledgerKeys.has(output.effect)) missingEffects.push(`${view.id}/${stepId} completed without its effect`);
    }
  }
  // An effect under a key no case step accounts for is an effect made twice (or for nothing).
  const caseIds = new Set(views.keys());
  const strays = [...ledgerKeys].filter((key) => !known.has(key) && !caseIds.has(key.split(':')[0] ?? ''));
  const duplicated = strays.length + Math.max(0, written - ledgerKeys.size);
  checks.push({
    name: 'effects',
    ok: duplicated === 0 && missingEffects.length === 0,
    detail: `${ledgerKeys.size} effects, ${executions} executions${duplicated ? `, ${duplicated} duplicated` : ''}${missingEffects.length ? `; ${missingEffects.slice(0, 3).join('; ')}` : ''}`,
  });

  // 4. No job active past its lock horizon. A job that was active while the fault lasted (Redis
  // paused, its worker killed) could neither renew its lock nor be recovered then: it has until
  // the horizon after the fault's end to be finished or taken back by the stalled-job check.
  // Cases may settle sooner than that, so overdue jobs are looked at again until that deadline.
  const queueNames = new Set<string>();
  for (const keys of await cluster.eachMaster((redis) => redis.keys(`${cluster.prefix}:*:meta`))) {
    for (const key of keys) {
      const name = cluster.queueOfMetaKey(key);
      if (name !== undefined) queueNames.add(name);
    }
  }
  const overdueJobs = async (): Promise<string[]> => {
    const found: string[] = [];
    const now = Date.now();
    for (const name of queueNames) {
      for (const job of await cluster.queue(name).getActive()) {
        if (job.processedOn !== undefined && now - job.processedOn > options.lockHorizonMs) found.push(`${name}/${job.id} active for ${Math.round((now - job.processedOn) / 1000)} s`);
      }
    }
    return found;
  };
  const judgedBy = options.faultEndedAt + options.lockHorizonMs;
  let overdue = await overdueJobs();
  while (overdue.length > 0 && Date.now() < judgedBy) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(500, judgedBy - Date.now())));
    overdue = await overdueJobs();
  }
  checks.push({ name: 'locks', ok: overdue.length === 0, detail: overdue.length === 0 ? `no job active past ${options.lockHorizonMs / 1000} s` : overdue.slice(0, 3).join('; ') });

  // 5. Memory bounded: Redis, and every process.
  // On a cluster, the fullest master.
  const usedBytes = Math.max(0, ...(await cluster.eachMaster((redis) => redis.info('memory'))).map((info) => Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0)));
  const rss = cluster.rssKb();
  const fat = Object.entries(rss).filter(([, kb]) => kb > options.rssMaxKb);
  checks.push({
    name: 'memory',
    ok: usedBytes <= options.redisMaxBytes && fat.length === 0,
    detail: `redis ${(usedBytes / 1048576).toFixed(1)} MiB, max rss ${Math.round(Math.max(0, ...Object.values(rss)) / 1024)} MiB${fat.length ? `; over: ${fat.map(([name]) => name).join(', ')}` : ''}`,
  });

  // 6. No process crashed that the scenario did not kill on purpose.
  const dead = options.expectAlive.filter((name) => !cluster.alive(name));
  checks.push({ name: 'processes', ok: dead.length === 0, detail: dead.length === 0 ? `${options.expectAlive.length} alive` : `exited: ${dead.join(', ')}` });

  return { checks, lost, duplicated, reExecutions: Math.max(0, executions - written) };
}
