import type { FleetMember, FleetMonitor, QueueCounts, RedisHealth } from '../../ports/fleet.js';
import { masterConnections } from '../redis/connection.js';
import { queueOfMetaKey, queuePrefix, type BullQueues } from './queues.js';

/** A member not seen for this long is taken as gone (heartbeats come every 5 s). */
const MEMBER_TTL_MS = 20_000;

/** The FleetMonitor port on the Redis behind BullMQ: queues by their meta keys, members in one hash. */
export class BullFleetMonitor implements FleetMonitor {
  private readonly membersKey: string;

  constructor(
    private readonly queues: BullQueues,
    private readonly prefix: string,
  ) {
    this.membersKey = `${prefix}:fleet:members`;
  }

  async queueNames(): Promise<string[]> {
    const names = new Set<string>();
    const { cluster } = this.queues;
    // A cluster's keys are spread over its masters: each is scanned (SCAN reaches one node only).
    const pattern = `${queuePrefix(this.prefix, '*', cluster)}:*:meta`;
    await Promise.all(
      masterConnections(this.queues.connection).map(async (connection) => {
        let cursor = '0';
        do {
          const [next, keys] = await connection.scan(cursor, 'MATCH', pattern, 'COUNT', 1_000);
          cursor = next;
          for (const key of keys) {
            const name = queueOfMetaKey(this.prefix, key, cluster);
            if (name !== undefined) names.add(name);
          }
        } while (cursor !== '0');
      }),
    );
    return [...names].sort();
  }

  async queueCounts(names: readonly string[]): Promise<Record<string, QueueCounts>> {
    const entries = await Promise.all(
      names.map(async (name) => {
        const counts = await this.queues.queue(name).getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized');
        return [name, { waiting: 0, active: 0, delayed: 0, failed: 0, completed: 0, prioritized: 0, ...counts }] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  async heartbeat(member: FleetMember): Promise<void> {
    await this.queues.connection.hset(this.membersKey, member.id, JSON.stringify(member));
  }

  async leave(id: string): Promise<void> {
    await this.queues.connection.hdel(this.membersKey, id);
  }

  async members(now: number): Promise<FleetMember[]> {
    const all = await this.queues.connection.hgetall(this.membersKey);
    const live: FleetMember[] = [];
    const gone: string[] = [];
    for (const [id, text] of Object.entries(all)) {
      const member = JSON.parse(text) as FleetMember;
      if (now - member.seenAt > MEMBER_TTL_MS) gone.push(id);
      else live.push(member);
    }
    if (gone.length > 0) await this.queues.connection.hdel(this.membersKey, ...gone);
    return live.sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id));
  }

  /** On a cluster, the master nearest its limit (or, with none set, the fullest), and any policy but noeviction a master has. */
  async redisHealth(): Promise<RedisHealth> {
    // INFO, not CONFIG GET: managed Redis services often disable CONFIG.
    const masters = await Promise.all(
      masterConnections(this.queues.connection).map(async (connection) => {
        const info = await connection.info('memory');
        const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
        return { maxmemoryPolicy: field('maxmemory_policy'), usedMemoryBytes: Number(field('used_memory')) || 0, maxmemoryBytes: Number(field('maxmemory')) || 0 };
      }),
    );
    const fullness = (health: RedisHealth) => (health.maxmemoryBytes > 0 ? health.usedMemoryBytes / health.maxmemoryBytes : 0);
    const [fullest] = masters.sort((a, b) => fullness(b) - fullness(a) || b.usedMemoryBytes - a.usedMemoryBytes);
    if (!fullest) throw new Error('no Redis master to ask');
    const policy = masters.find((health) => health.maxmemoryPolicy !== 'noeviction')?.maxmemoryPolicy ?? fullest.maxmemoryPolicy;
    return { ...fullest, maxmemoryPolicy: policy };
  }
}
