/** What operators see of the fleet: its queues, its live processes, its Redis. */

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
  completed: number;
  prioritized: number;
}

export interface FleetMember {
  /** host:pid */
  id: string;
  role: 'api' | 'scheduler' | 'worker';
  host: string;
  pid: number;
  queues: string[];
  /** Jobs at once per queue (workers), or per consumer (scheduler). */
  concurrency: number;
  startedAt: number;
  seenAt: number;
}

export interface RedisHealth {
  maxmemoryPolicy: string;
  usedMemoryBytes: number;
  /** Redis's `maxmemory`; 0 when unlimited. */
  maxmemoryBytes: number;
}

export interface FleetMonitor {
  /** Every BullMQ queue under the prefix, found in Redis. */
  queueNames(): Promise<string[]>;
  queueCounts(names: readonly string[]): Promise<Record<string, QueueCounts>>;
  /** Records that a process is alive; members not seen for a while drop out. */
  heartbeat(member: FleetMember): Promise<void>;
  leave(id: string): Promise<void>;
  members(now: number): Promise<FleetMember[]>;
  redisHealth(): Promise<RedisHealth>;
}
