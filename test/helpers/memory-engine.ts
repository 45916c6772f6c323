import { MemoryLimits } from '../../lib/adapters/memory/limits.js';
import { CaseSlots } from '../../lib/engine/case-slots.js';
import { MemoryStore } from '../../lib/adapters/memory/store.js';
import { CaseAdvancer } from '../../lib/engine/advancer.js';
import { BulkService } from '../../lib/engine/bulk.js';
import { CaseRepository } from '../../lib/engine/case-repository.js';
import { MemoryStartDebouncer } from '../../lib/adapters/memory/debounce.js';
import { CaseService } from '../../lib/engine/cases.js';
import { DebouncedStarts } from '../../lib/engine/debounced-starts.js';
import { StartRequests } from '../../lib/engine/start-requests.js';
import { WorkflowRegistry } from '../../lib/engine/workflows.js';
import { createLogger } from '../../lib/obs/logger.js';
import type { Clock } from '../../lib/ports/clock.js';
import { RecordingQueues } from './recording-queues.js';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(public time: number) {}
  now(): number {
    return this.time;
  }
}

/** Case ids in UUID form (the store's cursors take only those), ascending: ...0001, ...0002. */
function sequentialIds(): () => string {
  let next = 0;
  return () => `01a00000-0000-7000-8000-${String(++next).padStart(12, '0')}`;
}

export interface MemoryEngine {
  store: MemoryStore;
  queues: RecordingQueues;
  /** Bursts of debounced starts; `debouncer.closes` lists the closes the Redis adapter would schedule. */
  debouncer: MemoryStartDebouncer;
  clock: ManualClock;
  workflows: WorkflowRegistry;
  repository: CaseRepository;
  advancer: CaseAdvancer;
  cases: CaseService;
  /** The concurrency gate its cases' slots are in. */
  limits: MemoryLimits;
  /** Bulk operations over this engine's cases, `bulkPageSize` cases a page. */
  bulk: BulkService;
  conflicts: () => number;
  /** Another scheduler on the same store and queues: a repository, advancer and service of its own. */
  peer: () => { repository: CaseRepository; advancer: CaseAdvancer; cases: CaseService; conflicts: () => number };
}

/**
 * The engine's services wired as lib/runtime/engine.ts wires them, on a MemoryStore (or the
 * one given) and RecordingQueues: for unit tests of lib/engine, with no servers.
 */
export function memoryEngine(options: { now: number; store?: MemoryStore; bulkPageSize?: number }): MemoryEngine {
  const store = options.store ?? new MemoryStore();
  const queues = new RecordingQueues();
  const clock = new ManualClock(options.now);
  const workflows = new WorkflowRegistry(store, clock);
  const logger = createLogger({ level: 'silent', name: 'engine-test' });
  const newId = sequentialIds();
  // One gate for the engine and its peers, as Redis is one for a fleet.
  const limits = new MemoryLimits();
  const debouncer = new MemoryStartDebouncer();
  const wire = () => {
    let conflicts = 0;
    const starts = new StartRequests({ store, workflows, clock, newId });
    const repository = new CaseRepository({ store, workflows, queues, clock, children: starts, slots: new CaseSlots({ gate: limits, clock }) });
    const advancer = new CaseAdvancer({ repository, workflows, clock, logger, hooks: { onConflict: () => void conflicts++ } });
    const debounced = new DebouncedStarts({ debouncer, clock, newId });
    const cases = new CaseService({ store, workflows, starts, debounced, repository, advancer, clock });
    return { repository, advancer, cases, conflicts: () => conflicts };
  };
  const services = wire();
  const bulk = new BulkService({ store, cases: services.cases, clock, newId, logger, ...(options.bulkPageSize === undefined ? {} : { pageSize: options.bulkPageSize }) });
  return { store, queues, debouncer, clock, workflows, limits, ...services, bulk, peer: wire };
}
