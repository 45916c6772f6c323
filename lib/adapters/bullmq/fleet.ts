import type { FleetMember, FleetMonitor, QueueCounts, RedisHealth } from '../../ports/fleet.js';
import type { BullQueues } from './queues.js';

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
    let cursor = '0';
    do {
      const [next, keys] = await this.queues.connection.scan(cursor, 'MATCH', `${this.prefix}:*:meta`, 'COUNT', 1_000);
      cursor = next;
      for (const key of keys) names.add(key.slice(this.prefix.length + 1, -':meta'.length));
    } while (cursor !== '0');
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

  async redisHealth(): Promise<RedisHealth> {
    // INFO, not CONFIG GET: managed Redis services often disable CONFIG.
    const info = await this.queues.connection.info('memory');
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
    return { maxmemoryPolicy: field('maxmemory_policy'), usedMemoryBytes: Number(field('used_memory')) || 0, maxmemoryBytes: Number(field('maxmemory')) || 0 };
  }
}
