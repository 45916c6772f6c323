import { createHash } from 'node:crypto';
import { canonicalJson } from '../core/canonical-json.js';
import { debounceKeyOf } from '../core/debounce.js';
import type { CompiledDebounce } from '../core/definition.js';
import { idempotencyConflictError, InputInvalidError } from '../core/errors.js';
import { producerScope } from '../core/idempotency.js';
import { idempotencyWindowMs } from '../core/requests.js';
import type { Clock, IdGenerator } from '../ports/clock.js';
import type { BurstClose, HeldStart, StartDebouncer } from '../ports/debounce.js';
import { requestHashOf, type CheckedStart, type StartOrigin } from './start-requests.js';

/**
 * How long a debounced start's idempotency key is remembered without an `idempotencyWindow`:
 * 24 hours. Not for ever, unlike a key that makes a case: the memory is in Redis, beside the burst.
 */
const DEBOUNCED_KEY_MEMORY_MS = 86_400_000;

/** What a debounced start is answered: the burst it is in, and the case the burst will make. */
export interface DebouncedStart {
  /** The id of the case the burst will make (`GET /v1/cases/:id` finds it once made). */
  id: string;
  workflow: string;
  version: number;
  /** The debounce key the start rendered. */
  key: string;
  /** opened: the start began the burst; joined: it joined an open one; replayed: its idempotency key had joined it before. */
  outcome: 'opened' | 'joined' | 'replayed';
  /** When the burst closes as things stand (later starts may put it off, up to maxWait); unknown for a replay of a closed burst. */
  startsAt?: number;
  /** Starts in the burst so far, this one included. */
  starts?: number;
}

/** Names the burst a close job closes: the job's data. */
export interface BurstRef {
  address: string;
  burstId: string;
}

/** The data of a close job, checked (anyone who can write to the fleet's Redis can add one). */
export function parseBurstRef(data: unknown): BurstRef {
  const ref = data as Partial<BurstRef> | null;
  const fine = (value: unknown) => typeof value === 'string' && value.length > 0 && value.length <= 100;
  if (ref === null || typeof ref !== 'object' || !fine(ref.address) || !fine(ref.burstId)) {
    throw new InputInvalidError([{ path: '', message: 'a debounce job carries {"address", "burstId"}, strings of 1 to 100 characters' }], 'debounce job');
  }
  return { address: ref.address as string, burstId: ref.burstId as string };
}

/**
 * Debounced starts (lib/core/debounce.ts): a start of a workflow with `debounce:` joins the
 * burst of its producer's scope, workflow and key instead of making a case; the debouncer
 * (lib/ports/debounce.ts) closes the burst when it is due, and the case service makes the case
 * from its last start, under the burst's id.
 */
export class DebouncedStarts {
  constructor(
    private readonly deps: {
      debouncer: StartDebouncer;
      clock: Clock;
      newId: IdGenerator;
    },
  ) {}

  /** Adds a checked start to its burst. DEBOUNCE_KEY_INVALID when its key renders to nothing; IDEMPOTENCY_CONFLICT for a key reused with another request. */
  async join({ request, workflow }: CheckedStart, debounce: CompiledDebounce, origin: StartOrigin): Promise<DebouncedStart> {
    const key = debounceKeyOf(debounce, workflow, request.input ?? {});
    // Per producer, as idempotency keys: one producer's starts never swallow another's, nor name its case.
    const address = createHash('sha256')
      .update(canonicalJson([producerScope(origin.startedBy), workflow.name, key]))
      .digest('hex')
      .slice(0, 40);
    const now = this.deps.clock.now();
    const start: HeldStart = {
      request: { workflow: workflow.name, version: workflow.version, input: request.input ?? {}, ...(request.businessKeys === undefined ? {} : { businessKeys: request.businessKeys }) },
      key,
      ...(origin.startedBy === undefined ? {} : { startedBy: origin.startedBy }),
      ...(origin.requestId === undefined ? {} : { requestId: origin.requestId }),
    };
    const joined = await this.deps.debouncer.join({
      address,
      candidateId: this.deps.newId(),
      now,
      at: origin.at ?? now,
      forMs: debounce.forMs,
      ...(debounce.maxWaitMs === undefined ? {} : { maxWaitMs: debounce.maxWaitMs }),
      start,
      ...(request.idempotencyKey === undefined ? {} : { idempotency: { key: request.idempotencyKey, requestHash: requestHashOf(request), memoryMs: idempotencyWindowMs(request) ?? DEBOUNCED_KEY_MEMORY_MS } }),
    });
    if (joined.outcome === 'conflict') throw idempotencyConflictError(request.idempotencyKey ?? '', joined.burstId);
    return {
      id: joined.burstId,
      workflow: workflow.name,
      version: workflow.version,
      key,
      outcome: joined.outcome,
      ...(joined.dueAt === undefined ? {} : { startsAt: joined.dueAt }),
      ...(joined.starts === undefined ? {} : { starts: joined.starts }),
    };
  }

  /** Closes the burst if it is due. */
  close(ref: BurstRef): Promise<BurstClose> {
    return this.deps.debouncer.close(ref.address, ref.burstId, this.deps.clock.now());
  }

  /** Forgets a closed burst whose case exists. */
  release(ref: BurstRef): Promise<void> {
    return this.deps.debouncer.release(ref.address, ref.burstId);
  }
}
