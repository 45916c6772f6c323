import { createHash } from 'node:crypto';
import { admitLeaseOf, busiestRateKeys, lineScore } from '../../core/limits.js';
import {
  RATE_STATS_SCAN,
  type Admission,
  type ClaimAnswer,
  type ConcurrencyGate,
  type GatedUnit,
  type LimitStats,
  type OfferAnswer,
  type RateLimiter,
  type RateStats,
  type UnitPosition,
  type UnitRef,
} from '../../ports/limits.js';
import type { RedisClient } from './connection.js';
import { CLAIM, OFFER, POSITION, RATE_STATS, RELEASE, RENEW, RESERVE, STATS, SWEEP, WITHDRAW } from './limits-scripts.js';

export interface RedisLimitsOptions {
  prefix: string;
  /** How long an admitted unit keeps its slot before a worker claims it. Default 10 min: a busy queue may hold its job that long. */
  admitLeaseMs?: number;
}

/** What the scripts answer, as ioredis reads Redis replies. */
type Reply = string | number | null | Reply[];

/** Keys longer than this, or with control characters, are stored (and shown) as a digest. */
const MAX_STORED_KEY = 100;

/** The key as stored in Redis key names and shown in stats: itself when short and printable. */
function storedKey(key: string): string {
  return key.length <= MAX_STORED_KEY && !/[\u0000-\u001f\u007f]/.test(key) ? key : `#${createHash('sha256').update(key).digest('hex').slice(0, 32)}`;
}

const SCRIPTS = {
  wfOffer: OFFER,
  wfClaim: CLAIM,
  wfRenew: RENEW,
  wfRelease: RELEASE,
  wfSweep: SWEEP,
  wfPosition: POSITION,
  wfStats: STATS,
  wfReserve: RESERVE,
  wfRateStats: RATE_STATS,
  wfWithdraw: WITHDRAW,
} as const;
type Scripts = { [name in keyof typeof SCRIPTS]: (key: string, ...args: Array<string | number>) => Promise<Reply> };

/** Expired leases one sweep of a group looks at, at most: the rest wait for the next sweep. */
const SWEEP_BATCH = 500;

/**
 * The concurrency gate and rate limiter on Redis: every decision is one Lua script on the
 * group's keys (lib/adapters/redis/limits-scripts.ts), so that any number of schedulers and
 * workers share the slots without races. On a cluster each group lives in one slot (its name
 * is the hash tag), and different groups spread over the masters.
 */
export class RedisLimits implements ConcurrencyGate, RateLimiter {
  private readonly scripts: Scripts;
  private readonly admitLeaseMs: number;
  private readonly known = new Set<string>();
  private readonly knownRates = new Set<string>();

  constructor(
    private readonly connection: RedisClient,
    private readonly options: RedisLimitsOptions,
  ) {
    for (const [name, lua] of Object.entries(SCRIPTS)) if (!(name in connection)) connection.defineCommand(name, { numberOfKeys: 1, lua });
    this.scripts = connection as unknown as Scripts;
    this.admitLeaseMs = options.admitLeaseMs ?? 600_000;
  }

  private base(group: string): string {
    return `${this.options.prefix}:limits:{${group}}`;
  }

  private get groupsKey(): string {
    return `${this.options.prefix}:limits:groups`;
  }

  private get rateGroupsKey(): string {
    return `${this.options.prefix}:limits:rate-groups`;
  }

  /** Remembers a group for sweeps and stats (once per process and group). */
  private register(groups: Iterable<string>): Promise<void> {
    return this.remember(this.groupsKey, this.known, groups);
  }

  private async remember(setKey: string, known: Set<string>, groups: Iterable<string>): Promise<void> {
    const fresh = [...new Set(groups)].filter((group) => !known.has(group));
    if (fresh.length === 0) return;
    await this.connection.sadd(setKey, ...fresh);
    for (const group of fresh) known.add(group);
  }

  async offer(units: readonly GatedUnit[], now: number): Promise<{ answers: OfferAnswer[]; admitted: Admission[] }> {
    await this.register(units.map((unit) => unit.group));
    const byGroup = groupBy(units, (unit) => unit.group);
    const answers = new Map<string, OfferAnswer>();
    const admitted: Admission[] = [];
    await Promise.all(
      [...byGroup].map(async ([group, list]) => {
        const args = list.flatMap((unit, order) => [unit.jobId, storedKey(unit.key), unit.limit, lineScore(now, unit.priority, order), unit.queue, unit.payload]);
        const [replies, admissions] = (await this.scripts.wfOffer(this.base(group), now, admitLeaseOf(group, this.admitLeaseMs), list.length, ...args)) as [Reply[][], Reply[][]];
        for (const [jobId, held, place] of replies) {
          answers.set(String(jobId), held === 1 ? { jobId: String(jobId), admitted: true, rank: Number(place) } : { jobId: String(jobId), admitted: false, ahead: Number(place) });
        }
        admitted.push(...admissions.map((reply) => admission(group, reply)));
      }),
    );
    return { answers: units.map((unit) => answers.get(unit.jobId) ?? { jobId: unit.jobId, admitted: false, ahead: 0 }), admitted };
  }

  async claim(unit: GatedUnit, now: number, leaseMs: number): Promise<{ answer: ClaimAnswer; admitted: Admission[] }> {
    await this.register([unit.group]);
    const [run, ahead, admissions] = (await this.scripts.wfClaim(this.base(unit.group), now, leaseMs, admitLeaseOf(unit.group, this.admitLeaseMs), unit.jobId, storedKey(unit.key), unit.limit, unit.queue)) as [
      number,
      number,
      Reply[][],
    ];
    return { answer: run === 1 ? { run: true } : { run: false, ahead: Number(ahead) }, admitted: admissions.map((reply) => admission(unit.group, reply)) };
  }

  async renew(units: readonly UnitRef[], until: number): Promise<void> {
    await Promise.all([...groupBy(units, (unit) => unit.group)].map(([group, list]) => this.scripts.wfRenew(this.base(group), until, ...list.map((unit) => unit.jobId))));
  }

  async withdraw(units: readonly UnitRef[]): Promise<void> {
    await Promise.all([...groupBy(units, (unit) => unit.group)].map(([group, list]) => this.scripts.wfWithdraw(this.base(group), ...list.map((unit) => unit.jobId))));
  }

  async release(units: readonly UnitRef[], now: number): Promise<Admission[]> {
    const admitted = await Promise.all(
      [...groupBy(units, (unit) => unit.group)].map(async ([group, list]) => {
        const replies = (await this.scripts.wfRelease(this.base(group), now, admitLeaseOf(group, this.admitLeaseMs), ...list.map((unit) => unit.jobId))) as Reply[][];
        return replies.map((reply) => admission(group, reply));
      }),
    );
    return admitted.flat();
  }

  async sweep(now: number): Promise<Admission[]> {
    const groups = await this.connection.smembers(this.groupsKey);
    const admitted = await Promise.all(
      groups.map(async (group) => {
        const replies = (await this.scripts.wfSweep(this.base(group), now, admitLeaseOf(group, this.admitLeaseMs), SWEEP_BATCH)) as Reply[][];
        return replies.map((reply) => admission(group, reply));
      }),
    );
    return admitted.flat();
  }

  async position(unit: UnitRef): Promise<UnitPosition> {
    const reply = (await this.scripts.wfPosition(this.base(unit.group), unit.jobId)) as Reply[];
    if (reply.length === 0) return { state: 'none' };
    const [holding, key, ahead, inUse, limit] = reply;
    const common = { group: unit.group, key: String(key), inUse: Number(inUse), limit: Number(limit) };
    return holding === 1 ? { state: 'holding', ...common } : { state: 'waiting', ...common, ahead: Number(ahead) };
  }

  async heldIn(group: string, max: number, offset = 0): Promise<string[]> {
    if (max <= 0) return [];
    return this.connection.zrange(`${this.base(group)}:leases`, String(offset), String(offset + max - 1));
  }

  async holders(group: string, key: string): Promise<string[]> {
    // Scored by lease expiry; a case's lease is as long for every case, so the oldest comes first.
    return this.connection.zrange(`${this.base(group)}:held:${storedKey(key)}`, '0', '-1');
  }

  async stats(top: number): Promise<LimitStats> {
    const groups = (await this.connection.smembers(this.groupsKey)).sort();
    // One script per group, all at once (in the groups' own slots on a cluster), reported in name order.
    const replies = await Promise.all(groups.map((group) => this.scripts.wfStats(this.base(group), Math.max(1, top)) as Promise<[number, number, Reply[][]]>));
    const stats: LimitStats = { groups: [], topKeys: [] };
    groups.forEach((group, index) => {
      const [held, waiting, keys] = replies[index] ?? [0, 0, []];
      stats.groups.push({ group, inUse: Number(held), waiting: Number(waiting) });
      for (const [key, inUse, queued, limit] of keys) stats.topKeys.push({ group, key: String(key), inUse: Number(inUse), waiting: Number(queued), limit: Number(limit) });
    });
    return stats;
  }

  async reserve(request: { group: string; key: string; max: number; perMs: number; member: string }, now: number): Promise<number> {
    await this.remember(this.rateGroupsKey, this.knownRates, [request.group]);
    return Number(await this.scripts.wfReserve(`${this.options.prefix}:rate:{${request.group}}`, now, request.max, request.perMs, request.member, storedKey(request.key)));
  }

  async rateStats(top: number, now: number): Promise<RateStats> {
    const groups = (await this.connection.smembers(this.rateGroupsKey)).sort();
    const replies = await Promise.all(groups.map((group) => this.scripts.wfRateStats(`${this.options.prefix}:rate:{${group}}`, now, RATE_STATS_SCAN) as Promise<[number, Reply[][]]>));
    const stats: RateStats = { groups: [], topKeys: [] };
    groups.forEach((group, index) => {
      const [keys, rows] = replies[index] ?? [0, []];
      if (Number(keys) === 0) return;
      const uses = rows.map(([key, max, perMs, used, deferred]) => ({ group, key: String(key), max: Number(max), perMs: Number(perMs), used: Number(used), deferred: Number(deferred) }));
      stats.groups.push({ group, keys: Number(keys), deferred: uses.reduce((sum, use) => sum + use.deferred, 0) });
      stats.topKeys.push(...busiestRateKeys(uses, top));
    });
    return stats;
  }
}

function admission(group: string, [jobId, key, queue, payload, rank]: Reply[]): Admission {
  return { group, key: String(key), jobId: String(jobId), queue: String(queue), ...(payload ? { payload: String(payload) } : {}), rank: Number(rank) };
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const list = groups.get(keyOf(item)) ?? [];
    list.push(item);
    groups.set(keyOf(item), list);
  }
  return groups;
}
