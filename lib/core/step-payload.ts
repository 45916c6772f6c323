import type { CompiledWorkflow } from './definition.js';
import type { StepJob, UnitAddress } from './state.js';
import { unitIdempotencyKey, unitJobId } from './machine/jobs.js';

/**
 * What a step job carries in its queue: only what the definition and the job id cannot give.
 * The case, the step and the unit are in the job id (`unitJobId`); the task, retry policy,
 * timeout and breaker are in the workflow version the payload names; the idempotency key
 * follows from the ids. What remains is the rendered input and, when the case has one, the
 * request id its logs carry. Short keys on purpose: a job whose every field is at most 64 bytes
 * stays in Redis's compact hash encoding, about a quarter of the memory of the full one.
 */
export interface StepPayload {
  /** Workflow name. */
  w: string;
  /** Workflow version. */
  v: number;
  /** The unit's rendered input. */
  in?: unknown;
  /** The request id of the case's start, for log correlation. */
  rq?: string;
  /** The rendered concurrency key (the group and limit are the step's). */
  ck?: string;
  /** The rendered rate-limit key. */
  rk?: string;
  /** The unit's priority, when not 0. */
  pr?: number;
}

export function toStepPayload(job: StepJob): StepPayload {
  return {
    w: job.workflow,
    v: job.version,
    ...(job.input === undefined ? {} : { in: job.input }),
    ...(job.requestId === undefined ? {} : { rq: job.requestId }),
    ...(job.concurrency === undefined ? {} : { ck: job.concurrency.key }),
    ...(job.rateLimit === undefined ? {} : { rk: job.rateLimit.key }),
    ...(job.priority === undefined ? {} : { pr: job.priority }),
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const STEP_ID = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** The inverse of `unitJobId`; undefined for anything it cannot have made. */
export function parseUnitJobId(jobId: string): { caseId: string; stepId: string; address: UnitAddress } | undefined {
  const [caseId, stepId, ...suffixes] = jobId.split('.');
  if (caseId === undefined || stepId === undefined || !UUID.test(caseId) || !STEP_ID.test(stepId)) return undefined;
  const address: UnitAddress = {};
  for (const suffix of suffixes) {
    const number = Number(suffix.slice(1));
    if (suffix === 'undo') address.compensation = true;
    else if (suffix.startsWith('r') && Number.isSafeInteger(number) && number > 0) address.run = number;
    else if (suffix.startsWith('n') && Number.isSafeInteger(number) && number > 1) address.iteration = number;
    else if (suffix.startsWith('i') && Number.isSafeInteger(number) && number >= 0) address.instance = number;
    else return undefined;
  }
  // Only the canonical spelling: the same unit never answers to two ids.
  return unitJobId(caseId, stepId, address) === jobId ? { caseId, stepId, address } : undefined;
}

/** Whether a queued payload is a whole StepJob (as every job was before payloads were cut down). */
export function isWholeStepJob(data: unknown): data is StepJob {
  const job = data as Partial<StepJob> | null;
  return typeof job === 'object' && job !== null && typeof job.caseId === 'string' && typeof job.task === 'string' && typeof job.stepId === 'string';
}

export function isStepPayload(data: unknown): data is StepPayload {
  const payload = data as Partial<StepPayload> | null;
  return (
    typeof payload === 'object' &&
    payload !== null &&
    typeof payload.w === 'string' &&
    Number.isSafeInteger(payload.v) &&
    (payload.rq === undefined || typeof payload.rq === 'string') &&
    (payload.ck === undefined || typeof payload.ck === 'string') &&
    (payload.rk === undefined || typeof payload.rk === 'string') &&
    (payload.pr === undefined || Number.isSafeInteger(payload.pr))
  );
}

/**
 * The StepJob a worker runs, from the job id, its payload and the workflow version the payload
 * names; a string saying why when they do not fit together (a job nobody enqueued this way).
 */
export function stepJobFromPayload(jobId: string, payload: StepPayload, workflow: CompiledWorkflow): StepJob | string {
  const unit = parseUnitJobId(jobId);
  if (!unit) return `job id "${jobId}" does not name a step unit`;
  const step = workflow.steps.get(unit.stepId);
  if (!step) return `workflow ${workflow.name} v${workflow.version} has no step "${unit.stepId}"`;
  const settings = unit.address.compensation ? step.compensate : step;
  if (!settings) return `step "${unit.stepId}" of ${workflow.name} v${workflow.version} has no compensation`;
  // A repeat step's first iteration is not spelled in its job id.
  const address: UnitAddress = step.repeat && !unit.address.compensation ? { iteration: 1, ...unit.address } : unit.address;
  return {
    caseId: unit.caseId,
    workflow: workflow.name,
    version: workflow.version,
    stepId: unit.stepId,
    task: settings.task,
    input: payload.in,
    idempotencyKey: unitIdempotencyKey(unit.caseId, unit.stepId, address),
    maxAttempts: settings.maxAttempts,
    backoff: settings.backoff,
    timeoutMs: settings.timeoutMs,
    breaker: settings.breaker,
    ...address,
    ...(payload.rq === undefined ? {} : { requestId: payload.rq }),
    // A limit the step no longer declares (or a payload from before it did) limits nothing.
    ...(payload.ck === undefined || !step.concurrency || unit.address.compensation ? {} : { concurrency: { ...step.concurrency, key: payload.ck } }),
    ...(payload.rk === undefined || !step.rateLimit || unit.address.compensation ? {} : { rateLimit: { ...step.rateLimit, key: payload.rk } }),
    ...(payload.pr === undefined ? {} : { priority: payload.pr }),
  };
}
