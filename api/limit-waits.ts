import { isInfrastructureUnavailable } from '../lib/adapters/unavailable.js';
import type { CompiledWorkflow } from '../lib/core/definition.js';
import { describeLimits, placeLookups, type SlotPlace, type StepLimits } from '../lib/core/limit-waits.js';
import { isTerminalCase, type CaseState } from '../lib/core/state.js';
import type { ConcurrencyGate } from '../lib/ports/limits.js';

/** How long a read of a case waits for places in line before it answers without them. */
const LOOKUP_TIMEOUT_MS = 1_000;

/**
 * Where the queued units of a case's keyed steps stand, for GET /v1/cases/:id: the case says
 * which are rate limited; the gate, asked about a bounded number of units
 * (lib/core/limit-waits.ts), says where the others are in their key's line. The case is
 * MongoDB's and stays readable without Redis: when the gate is away or slow the answer says the
 * places are unavailable instead of failing.
 */
export class LimitWaits {
  constructor(
    private readonly deps: {
      gate: Pick<ConcurrencyGate, 'position'>;
      workflows: { compiled(name: string, version?: number): Promise<CompiledWorkflow> };
      timeoutMs?: number;
    },
  ) {}

  async of(record: CaseState): Promise<Record<string, StepLimits>> {
    if (isTerminalCase(record.status)) return {};
    const workflow = await this.deps.workflows.compiled(record.workflow, record.version);
    return describeLimits(record, workflow, await this.places(placeLookups(record, workflow)));
  }

  private async places(lookups: ReturnType<typeof placeLookups>): Promise<ReadonlyMap<string, SlotPlace> | 'unavailable'> {
    if (lookups.length === 0) return new Map();
    const ms = this.deps.timeoutMs ?? LOOKUP_TIMEOUT_MS;
    const asked = Promise.all(lookups.map(async ({ group, jobId }) => [jobId, await this.deps.gate.position({ group, jobId })] as const));
    // A lookup that answers after the deadline is dropped; its rejection must not go unhandled.
    asked.catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      const answered = await Promise.race([asked, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
      return answered ? new Map(answered) : 'unavailable';
    } catch (error) {
      if (isInfrastructureUnavailable(error)) return 'unavailable';
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}
