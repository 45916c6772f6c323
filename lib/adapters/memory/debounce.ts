import { burstDueAt } from '../../core/debounce.js';
import type { BurstClose, BurstJoin, BurstJoinRequest, HeldStart, StartDebouncer } from '../../ports/debounce.js';

interface Burst {
  id: string;
  firstAt: number;
  dueAt: number;
  at: number;
  starts: number;
  start: HeldStart;
}

interface Address {
  open?: Burst;
  closed: Map<string, Burst>;
  /** Idempotency keys: burst id, request hash, forgotten at. */
  keys: Map<string, { burstId: string; requestHash: string; until: number }>;
}

/**
 * The StartDebouncer port in this process's memory, with the Redis adapter's rules, for the
 * engine's unit tests: nothing closes a burst by itself; `closes` lists the bursts to close and
 * when, as the Redis adapter's delayed jobs would, and the test calls the engine's close.
 */
export class MemoryStartDebouncer implements StartDebouncer {
  private readonly addresses = new Map<string, Address>();
  /** Every close asked for, in order: where the Redis adapter adds a delayed job. */
  readonly closes: Array<{ address: string; burstId: string; at: number }> = [];

  async join(request: BurstJoinRequest): Promise<BurstJoin> {
    const address: Address = this.addresses.get(request.address) ?? { closed: new Map(), keys: new Map() };
    this.addresses.set(request.address, address);
    const { idempotency } = request;
    const seen = idempotency && address.keys.get(idempotency.key);
    if (idempotency && seen && seen.until > request.now) {
      if (seen.requestHash !== idempotency.requestHash) return { outcome: 'conflict', burstId: seen.burstId };
      const open = address.open?.id === seen.burstId ? address.open : undefined;
      return { outcome: 'replayed', burstId: seen.burstId, ...(open ? { dueAt: open.dueAt, starts: open.starts } : {}) };
    }
    const joined = address.open !== undefined;
    const burst: Burst = address.open ?? { id: request.candidateId, firstAt: request.now, dueAt: 0, at: request.at, starts: 0, start: request.start };
    // Never earlier than promised: the close already scheduled must not come after the burst's due time.
    burst.dueAt = Math.max(burst.dueAt, burstDueAt(request, burst.firstAt, request.now));
    if (request.at >= burst.at) {
      burst.at = request.at;
      burst.start = structuredClone(request.start);
    }
    burst.starts += 1;
    address.open = burst;
    if (idempotency) address.keys.set(idempotency.key, { burstId: burst.id, requestHash: idempotency.requestHash, until: request.now + idempotency.memoryMs });
    this.closes.push({ address: request.address, burstId: burst.id, at: burst.dueAt });
    return { outcome: joined ? 'joined' : 'opened', burstId: burst.id, dueAt: burst.dueAt, starts: burst.starts };
  }

  async close(addressOf: string, burstId: string, now: number): Promise<BurstClose> {
    const address = this.addresses.get(addressOf);
    const open = address?.open;
    if (address && open?.id === burstId) {
      if (open.dueAt > now) return { kind: 'wait', dueAt: open.dueAt };
      delete address.open;
      address.closed.set(burstId, open);
    }
    const closed = address?.closed.get(burstId);
    return closed ? { kind: 'start', start: structuredClone(closed.start), firstAt: closed.firstAt, starts: closed.starts } : { kind: 'gone' };
  }

  async release(address: string, burstId: string): Promise<void> {
    this.addresses.get(address)?.closed.delete(burstId);
  }
}
