import { createHash } from 'node:crypto';
import { INTAKE_QUEUE } from '../../ports/queues.js';
import { DEBOUNCE_JOB, type BurstClose, type BurstJoin, type BurstJoinRequest, type HeldStart, type StartDebouncer } from '../../ports/debounce.js';
import type { RedisClient } from '../redis/connection.js';
import { waitForReplicas } from '../redis/wait-replicas.js';
import { queuePrefix, type BullQueues } from './queues.js';

/**
 * How long a burst's hash outlives its due time: a closed burst waits there for its case while
 * MongoDB is away, and its close job is retried meanwhile. 7 days, as long as a failed job is kept.
 */
const KEEP_AFTER_DUE_MS = 7 * 86_400_000;

/**
 * Joins a start to the open burst of a hash, or opens one. One script, so that every replica's
 * starts are applied one at a time: the hash holds the open burst (`burst`, `first`, `due`, `at`,
 * `starts`, `start`) and closed bursts waiting for their case (`closed:<id>`).
 *
 * KEYS[1] the burst hash; KEYS[2] (with an idempotency key) the key's memory, same hash tag.
 * ARGV candidate id, now, at, forMs, maxWaitMs ("" none), start JSON, request hash ("" none),
 *      memory ms, keep ms.
 * Returns {outcome, burst id, due, starts} (due and starts "" for a replay of a closed burst).
 */
const JOIN = `
local now = tonumber(ARGV[2])
local function int(n) return string.format('%d', n) end
if ARGV[7] ~= '' then
  local seen = redis.call('GET', KEYS[2])
  if seen then
    local sep = string.find(seen, '|', 1, true)
    local burst = string.sub(seen, 1, sep - 1)
    if string.sub(seen, sep + 1) ~= ARGV[7] then return {'conflict', burst, '', ''} end
    local open = redis.call('HMGET', KEYS[1], 'burst', 'due', 'starts')
    if open[1] == burst then return {'replayed', burst, open[2], open[3]} end
    return {'replayed', burst, '', ''}
  end
end
local outcome = 'joined'
local burst = redis.call('HGET', KEYS[1], 'burst')
if not burst then
  outcome = 'opened'
  burst = ARGV[1]
  redis.call('HSET', KEYS[1], 'burst', burst, 'first', ARGV[2], 'due', '0', 'at', ARGV[3], 'start', ARGV[6], 'starts', '0')
elseif tonumber(ARGV[3]) >= tonumber(redis.call('HGET', KEYS[1], 'at')) then
  redis.call('HSET', KEYS[1], 'at', ARGV[3], 'start', ARGV[6])
end
local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
local due = now + tonumber(ARGV[4])
if ARGV[5] ~= '' then due = math.min(due, first + tonumber(ARGV[5])) end
-- Never earlier than promised: the close job already added must not come after the due time.
due = math.max(due, tonumber(redis.call('HGET', KEYS[1], 'due')))
redis.call('HSET', KEYS[1], 'due', int(due))
local starts = redis.call('HINCRBY', KEYS[1], 'starts', 1)
local ttl = due - now + tonumber(ARGV[9])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], int(ttl)) end
if ARGV[7] ~= '' then redis.call('SET', KEYS[2], burst .. '|' .. ARGV[7], 'PX', ARGV[8]) end
return {outcome, burst, int(due), int(starts)}
`;

/**
 * Closes burst ARGV[1] of hash KEYS[1] if it is due at ARGV[2] (now): the open burst's start
 * moves to `closed:<id>` as "<first>|<starts>|<start JSON>", where the next close finds it again
 * until the case is made and the field deleted.
 * Returns {"wait", due}, {"start", closed}, or {"gone"}.
 */
const CLOSE = `
local open = redis.call('HMGET', KEYS[1], 'burst', 'due', 'first', 'starts', 'start')
if open[1] == ARGV[1] then
  if tonumber(open[2]) > tonumber(ARGV[2]) then return {'wait', open[2]} end
  local closed = open[3] .. '|' .. open[4] .. '|' .. open[5]
  redis.call('HSET', KEYS[1], 'closed:' .. ARGV[1], closed)
  redis.call('HDEL', KEYS[1], 'burst', 'due', 'first', 'starts', 'start', 'at')
  return {'start', closed}
end
local closed = redis.call('HGET', KEYS[1], 'closed:' .. ARGV[1])
if closed then return {'start', closed} end
return {'gone'}
`;

interface DebounceCommands {
  workfleetDebounceJoin(numberOfKeys: number, ...args: string[]): Promise<[string, string, string, string]>;
  workfleetDebounceClose(numberOfKeys: number, ...args: string[]): Promise<string[]>;
}

/**
 * The StartDebouncer port on Redis, fleet-wide: each burst address is one hash (its idempotency
 * keys beside it under the same hash tag, so that one script may touch both on a Redis Cluster),
 * and each burst is closed by a delayed job on the intake queue (`debounce`, job id
 * `debounce-<burst id>`), which the scheduler's intake processor runs: a burst put off since
 * is looked at again when it is due, and a close that dies half way is run again.
 *
 * Every start adds the close job (a job id already there is not added again), so a burst whose
 * opener died between its script and its job gets its job from the next start; a start is
 * answered only once both are in Redis.
 */
export class RedisStartDebouncer implements StartDebouncer {
  private readonly redis: DebounceCommands & RedisClient;

  constructor(
    private readonly queues: BullQueues,
    private readonly options: { prefix: string; retention: { keepFailedSeconds: number }; waitReplicas?: { replicas: number; timeoutMs: number } },
  ) {
    const connection = queues.connection;
    connection.defineCommand('workfleetDebounceJoin', { lua: JOIN });
    connection.defineCommand('workfleetDebounceClose', { lua: CLOSE });
    this.redis = connection as DebounceCommands & RedisClient;
  }

  /** The hash of a burst address; its hash tag spreads addresses over a cluster's slots. */
  private key(address: string): string {
    return `${this.options.prefix}:debounce:{${address}}`;
  }

  async join(request: BurstJoinRequest): Promise<BurstJoin> {
    const key = this.key(request.address);
    const { idempotency } = request;
    const keys = idempotency ? [key, `${key}:idempotency:${createHash('sha256').update(idempotency.key).digest('hex')}`] : [key];
    const [outcome, burstId, due, starts] = await this.redis.workfleetDebounceJoin(
      keys.length,
      ...keys,
      request.candidateId,
      String(request.now),
      String(request.at),
      String(request.forMs),
      request.maxWaitMs === undefined ? '' : String(request.maxWaitMs),
      JSON.stringify(request.start),
      idempotency?.requestHash ?? '',
      String(idempotency?.memoryMs ?? 0),
      String(KEEP_AFTER_DUE_MS),
    );
    if (outcome === 'conflict') return { outcome, burstId };
    const dueAt = due === '' ? undefined : Number(due);
    if (dueAt !== undefined) await this.scheduleClose(request.address, burstId, dueAt - request.now);
    const wait = this.options.waitReplicas;
    if (wait && wait.replicas > 0) await waitForReplicas(this.queues.connection, key, wait.replicas, wait.timeoutMs);
    return {
      outcome: outcome as 'opened' | 'joined' | 'replayed',
      burstId,
      ...(dueAt === undefined ? {} : { dueAt }),
      ...(starts === '' || starts === undefined ? {} : { starts: Number(starts) }),
    };
  }

  /** The close job of a burst, added once (by job id) at its first due time; later starts put the burst off, and the job looks again then. */
  private async scheduleClose(address: string, burstId: string, delayMs: number): Promise<void> {
    const queue = this.queues.queue(INTAKE_QUEUE);
    await queue.add(DEBOUNCE_JOB, { address, burstId }, { jobId: `debounce-${burstId}`, delay: Math.max(0, delayMs), removeOnComplete: true, removeOnFail: { age: this.options.retention.keepFailedSeconds } });
    const wait = this.options.waitReplicas;
    if (wait && wait.replicas > 0) {
      await waitForReplicas(this.queues.connection, `${queuePrefix(this.options.prefix, INTAKE_QUEUE, this.queues.cluster)}:${INTAKE_QUEUE}:meta`, wait.replicas, wait.timeoutMs);
    }
  }

  async close(address: string, burstId: string, now: number): Promise<BurstClose> {
    const [kind, value] = await this.redis.workfleetDebounceClose(1, this.key(address), burstId, String(now));
    if (kind === 'wait') return { kind, dueAt: Number(value) };
    if (kind !== 'start' || value === undefined) return { kind: 'gone' };
    const first = value.indexOf('|');
    const second = value.indexOf('|', first + 1);
    return { kind: 'start', firstAt: Number(value.slice(0, first)), starts: Number(value.slice(first + 1, second)), start: JSON.parse(value.slice(second + 1)) as HeldStart };
  }

  async release(address: string, burstId: string): Promise<void> {
    await this.queues.connection.hdel(this.key(address), `closed:${burstId}`);
  }
}
