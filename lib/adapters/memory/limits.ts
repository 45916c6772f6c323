import { admitLeaseOf, busiestRateKeys, lineScore, nextReservation, nextStart, PARKED_SCORE } from '../../core/limits.js';
import {
  RATE_STATS_SCAN,
  type Admission,
  type ClaimAnswer,
  type ConcurrencyGate,
  type GatedUnit,
  type LimitStats,
  type OfferAnswer,
  type RateKeyUse,
  type RateLimiter,
  type RateStats,
  type UnitPosition,
  type UnitRef,
} from '../../ports/limits.js';

interface Key {
  limit: number;
  /** job id → lease expiry */
  held: Map<string, number>;
  /** waiting units in line order (score, then job id) */
  line: Array<{ jobId: string; score: number }>;
}

/** One rate-limit key's windows: reservations (member → reserved time) and starts, with the key's latest limit. */
interface RateWindow {
  max: number;
  perMs: number;
  reserved: Map<string, number>;
  /** member → the time it started */
  started: Map<string, number>;
}

interface Unit {
  group: string;
  key: string;
  queue: string;
  /** Empty once enqueued, or for a parked job. */
  payload: string;
}

/**
 * The limits port in one process's memory, for engine tests and the benchmark's engine-only
 * runs (never a fleet's: slots must be shared by every process). It follows the rules of the
 * Redis scripts and passes the same contract suite.
 */
export class MemoryLimits implements ConcurrencyGate, RateLimiter {
  private readonly keys = new Map<string, Key>();
  private readonly units = new Map<string, Unit>();
  private readonly windows = new Map<string, RateWindow>();

  constructor(private readonly admitLeaseMs = 600_000) {}

  private keyOf(group: string, key: string, limit?: number): Key {
    const id = `${group}\n${key}`;
    let entry = this.keys.get(id);
    if (!entry) {
      entry = { limit: limit ?? 1, held: new Map(), line: [] };
      this.keys.set(id, entry);
    }
    if (limit !== undefined) entry.limit = limit;
    return entry;
  }

  private forgetIfIdle(group: string, key: string): void {
    const entry = this.keys.get(`${group}\n${key}`);
    if (entry && entry.held.size === 0 && entry.line.length === 0) this.keys.delete(`${group}\n${key}`);
  }

  private fill(group: string, key: string, now: number, out: Admission[]): void {
    const entry = this.keyOf(group, key);
    for (const [jobId, expiry] of entry.held) {
      if (expiry <= now) {
        entry.held.delete(jobId);
        this.units.delete(jobId);
      }
    }
    while (entry.held.size < entry.limit && entry.line.length > 0) {
      const head = entry.line.shift();
      const unit = head && this.units.get(head.jobId);
      if (!head || !unit) continue;
      entry.held.set(head.jobId, now + admitLeaseOf(group, this.admitLeaseMs));
      out.push({ group, key, jobId: head.jobId, queue: unit.queue, ...(unit.payload ? { payload: unit.payload } : {}), rank: entry.held.size });
      unit.payload = '';
    }
    this.forgetIfIdle(group, key);
  }

  private enterLine(entry: Key, jobId: string, score: number): number {
    entry.line.push({ jobId, score });
    entry.line.sort((a, b) => a.score - b.score || (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
    return entry.line.findIndex((waiting) => waiting.jobId === jobId);
  }

  async offer(units: readonly GatedUnit[], now: number): Promise<{ answers: OfferAnswer[]; admitted: Admission[] }> {
    const admitted: Admission[] = [];
    const answers = units.map((unit, order): OfferAnswer => {
      // The offer's limit first, as the script sets it before filling: a raised limit admits from the line at once.
      this.keyOf(unit.group, unit.key, unit.limit);
      this.fill(unit.group, unit.key, now, admitted);
      const key = this.keyOf(unit.group, unit.key, unit.limit);
      if (key.held.has(unit.jobId)) return { jobId: unit.jobId, admitted: true, rank: key.held.size };
      const place = key.line.findIndex((waiting) => waiting.jobId === unit.jobId);
      if (place >= 0) return { jobId: unit.jobId, admitted: false, ahead: place };
      if (key.held.size < key.limit && key.line.length === 0) {
        key.held.set(unit.jobId, now + admitLeaseOf(unit.group, this.admitLeaseMs));
        this.units.set(unit.jobId, { group: unit.group, key: unit.key, queue: unit.queue, payload: '' });
        return { jobId: unit.jobId, admitted: true, rank: key.held.size };
      }
      this.units.set(unit.jobId, { group: unit.group, key: unit.key, queue: unit.queue, payload: unit.payload });
      return { jobId: unit.jobId, admitted: false, ahead: this.enterLine(key, unit.jobId, lineScore(now, unit.priority, order)) };
    });
    return { answers, admitted };
  }

  async claim(unit: GatedUnit, now: number, leaseMs: number): Promise<{ answer: ClaimAnswer; admitted: Admission[] }> {
    const admitted: Admission[] = [];
    this.keyOf(unit.group, unit.key, unit.limit);
    this.fill(unit.group, unit.key, now, admitted);
    const key = this.keyOf(unit.group, unit.key, unit.limit);
    if (key.held.has(unit.jobId)) {
      key.held.set(unit.jobId, now + leaseMs);
      return { answer: { run: true }, admitted };
    }
    const place = key.line.findIndex((waiting) => waiting.jobId === unit.jobId);
    if (key.held.size < key.limit && (key.line.length === 0 || place === 0)) {
      if (place === 0) key.line.shift();
      key.held.set(unit.jobId, now + leaseMs);
      this.units.set(unit.jobId, { group: unit.group, key: unit.key, queue: unit.queue, payload: '' });
      return { answer: { run: true }, admitted };
    }
    this.units.set(unit.jobId, { group: unit.group, key: unit.key, queue: unit.queue, payload: '' });
    const ahead = place >= 0 ? place : this.enterLine(key, unit.jobId, PARKED_SCORE);
    return { answer: { run: false, ahead }, admitted };
  }

  async renew(units: readonly UnitRef[], until: number): Promise<void> {
    for (const { jobId } of units) {
      const unit = this.units.get(jobId);
      const key = unit && this.keys.get(`${unit.group}\n${unit.key}`);
      if (key?.held.has(jobId)) key.held.set(jobId, until);
    }
  }

  async withdraw(units: readonly UnitRef[]): Promise<void> {
    for (const { jobId } of units) {
      const unit = this.units.get(jobId);
      const key = unit && this.keys.get(`${unit.group}\n${unit.key}`);
      if (!unit || !key?.line.some((waiting) => waiting.jobId === jobId)) continue;
      key.line = key.line.filter((waiting) => waiting.jobId !== jobId);
      this.units.delete(jobId);
      this.forgetIfIdle(unit.group, unit.key);
    }
  }

  async release(units: readonly UnitRef[], now: number): Promise<Admission[]> {
    // Every unit leaves before any key is filled, as in the Redis script: else a unit released further on could be admitted.
    const touched = new Map<string, { group: string; key: string }>();
    for (const { jobId } of units) {
      const unit = this.units.get(jobId);
      if (!unit) continue;
      this.units.delete(jobId);
      const key = this.keyOf(unit.group, unit.key);
      key.held.delete(jobId);
      key.line = key.line.filter((waiting) => waiting.jobId !== jobId);
      touched.set(`${unit.group}\n${unit.key}`, { group: unit.group, key: unit.key });
    }
    const admitted: Admission[] = [];
    for (const { group, key } of touched.values()) this.fill(group, key, now, admitted);
    return admitted;
  }

  async sweep(now: number): Promise<Admission[]> {
    const admitted: Admission[] = [];
    for (const id of [...this.keys.keys()]) {
      const [group = '', key = ''] = id.split('\n');
      this.fill(group, key, now, admitted);
    }
    return admitted;
  }

  async position({ jobId }: UnitRef): Promise<UnitPosition> {
    const unit = this.units.get(jobId);
    const key = unit && this.keys.get(`${unit.group}\n${unit.key}`);
    if (!unit || !key) return { state: 'none' };
    const common = { group: unit.group, key: unit.key, inUse: key.held.size, limit: key.limit };
    if (key.held.has(jobId)) return { state: 'holding', ...common };
    return {
      state: 'waiting',
      ...common,
      ahead: Math.max(
        0,
        key.line.findIndex((waiting) => waiting.jobId === jobId),
      ),
    };
  }

  async heldIn(group: string, max: number, offset = 0): Promise<string[]> {
    const held = [...this.keys].filter(([id]) => id.startsWith(`${group}\n`)).flatMap(([, entry]) => [...entry.held]);
    return held
      .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(offset, offset + Math.max(0, max))
      .map(([jobId]) => jobId);
  }

  async holders(group: string, key: string): Promise<string[]> {
    const entry = this.keys.get(`${group}\n${key}`);
    return entry ? [...entry.held].sort((a, b) => a[1] - b[1]).map(([jobId]) => jobId) : [];
  }

  async stats(top: number): Promise<LimitStats> {
    const stats: LimitStats = { groups: [], topKeys: [] };
    const byGroup = new Map<string, Array<{ key: string; entry: Key }>>();
    for (const [id, entry] of this.keys) {
      const [group = '', key = ''] = id.split('\n');
      byGroup.set(group, [...(byGroup.get(group) ?? []), { key, entry }]);
    }
    for (const [group, keys] of [...byGroup].sort(([a], [b]) => (a < b ? -1 : 1))) {
      stats.groups.push({ group, inUse: keys.reduce((sum, { entry }) => sum + entry.held.size, 0), waiting: keys.reduce((sum, { entry }) => sum + entry.line.length, 0) });
      const busiest = keys.sort((a, b) => b.entry.held.size + b.entry.line.length - (a.entry.held.size + a.entry.line.length)).slice(0, Math.max(1, top));
      for (const { key, entry } of busiest) stats.topKeys.push({ group, key, inUse: entry.held.size, waiting: entry.line.length, limit: entry.limit });
    }
    return stats;
  }

  async reserve(request: { group: string; key: string; max: number; perMs: number; member: string }, now: number): Promise<number> {
    const { member, max, perMs } = request;
    const id = `${request.group}\n${request.key}`;
    const window = this.windows.get(id) ?? { max, perMs, reserved: new Map<string, number>(), started: new Map<string, number>() };
    this.windows.set(id, Object.assign(window, { max, perMs }));
    const { reserved, started } = window;
    const startedAt = started.get(member);
    if (startedAt !== undefined && startedAt > now - perMs) return startedAt;
    let at = reserved.get(member);
    if (at === undefined || at <= now - perMs) {
      for (const [other, time] of reserved) if (time <= now - perMs) reserved.delete(other);
      at = nextReservation(
        [...reserved.values()].sort((a, b) => a - b),
        now,
        max,
        perMs,
      );
    }
    if (at <= now) {
      for (const [other, time] of started) if (time <= now - perMs) started.delete(other);
      at = nextStart(
        [...started.values()].sort((a, b) => a - b),
        now,
        max,
        perMs,
      );
      if (at <= now) started.set(member, now);
    }
    // Started, its reservation becomes its start (later ones are paced by what happened); else the time it waits for.
    reserved.set(member, at);
    return at;
  }

  async rateStats(top: number, now: number): Promise<RateStats> {
    const byGroup = new Map<string, Array<{ key: string; latest: number; use: RateKeyUse }>>();
    for (const [id, window] of this.windows) {
      const [group = '', key = ''] = id.split('\n');
      const times = [...window.reserved.values(), ...window.started.values()].filter((at) => at > now - window.perMs);
      // As on Redis: a key whose latest reservation and start have left their windows is forgotten.
      if (times.length === 0) {
        this.windows.delete(id);
        continue;
      }
      const used = [...window.started.values()].filter((at) => at > now - window.perMs && at <= now).length;
      const deferred = [...window.reserved.values()].filter((at) => at > now).length;
      const use = { group, key, max: window.max, perMs: window.perMs, used, deferred };
      byGroup.set(group, [...(byGroup.get(group) ?? []), { key, latest: Math.max(...times), use }]);
    }
    const stats: RateStats = { groups: [], topKeys: [] };
    for (const [group, keys] of [...byGroup].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const scanned = keys.sort((a, b) => b.latest - a.latest || (a.key < b.key ? -1 : 1)).slice(0, RATE_STATS_SCAN);
      stats.groups.push({ group, keys: keys.length, deferred: scanned.reduce((sum, { use }) => sum + use.deferred, 0) });
      stats.topKeys.push(
        ...busiestRateKeys(
          scanned.map(({ use }) => use),
          top,
        ),
      );
    }
    return stats;
  }
}
