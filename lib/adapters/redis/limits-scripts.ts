import { PARKED_SCORE } from '../../core/limits.js';

/**
 * The Lua scripts of the Redis concurrency gate and rate limiter (lib/adapters/redis/limits.ts).
 * Each gate script takes one key, the group's base name `<prefix>:limits:{<group>}`, and works on
 * keys under it, all in the group's slot on a cluster (the hash tag):
 *
 *   <base>:held:<key>  ZSET job id → lease expiry (ms): the key's slots
 *   <base>:line:<key>  ZSET job id → line score (lib/core/limits.ts): units waiting for a slot
 *   <base>:units       HASH job id → "<key>\n<queue>\n<payload>" for every unit holding or waiting
 *                      (payload empty once enqueued, or for a job parked in its queue)
 *   <base>:leases      ZSET job id → lease expiry, over all keys: what `sweep` looks through
 *   <base>:limit       HASH key → limit (the latest offer's or claim's); removed with the key's last unit
 *   <base>:keys        ZSET key → units holding or waiting; removed at 0 (top keys)
 *   <base>:count       HASH held, waiting: the group's totals (metrics)
 *
 * Nothing outlives the units that made it, so the keyspace is bounded by the units in flight.
 */

const PRELUDE = `
local base = KEYS[1]
local units, leases, keys, count, limits = base .. ':units', base .. ':leases', base .. ':keys', base .. ':count', base .. ':limit'

local function split(entry)
  local a = string.find(entry, '\\n', 1, true)
  local b = string.find(entry, '\\n', a + 1, true)
  return string.sub(entry, 1, a - 1), string.sub(entry, a + 1, b - 1), string.sub(entry, b + 1)
end

-- One unit of the key fewer: the key and its limit go with its last unit.
local function forget(K)
  if tonumber(redis.call('ZINCRBY', keys, -1, K)) <= 0 then
    redis.call('ZREM', keys, K)
    redis.call('HDEL', limits, K)
  end
end

local function hold(K, jobId, expiry)
  redis.call('ZADD', base .. ':held:' .. K, expiry, jobId)
  redis.call('ZADD', leases, expiry, jobId)
  redis.call('HINCRBY', count, 'held', 1)
end

-- Slots whose lease ran out are freed: their worker died, or their job never came.
local function prune(K, now)
  local held = base .. ':held:' .. K
  for _, jobId in ipairs(redis.call('ZRANGEBYSCORE', held, '-inf', now)) do
    redis.call('ZREM', held, jobId)
    redis.call('ZREM', leases, jobId)
    redis.call('HDEL', units, jobId)
    redis.call('HINCRBY', count, 'held', -1)
    forget(K)
  end
end

-- Free slots go to the head of the line, each admission appended to out.
local function fill(K, now, admitLease, out)
  prune(K, now)
  local held, line = base .. ':held:' .. K, base .. ':line:' .. K
  local limit = tonumber(redis.call('HGET', limits, K) or '1')
  while redis.call('ZCARD', held) < limit do
    local head = redis.call('ZRANGE', line, 0, 0)[1]
    if not head then break end
    redis.call('ZREM', line, head)
    redis.call('HINCRBY', count, 'waiting', -1)
    local entry = redis.call('HGET', units, head)
    if entry then
      local _, queue, payload = split(entry)
      hold(K, head, now + admitLease)
      redis.call('HSET', units, head, K .. '\\n' .. queue .. '\\n')
      out[#out + 1] = { head, K, queue, payload, redis.call('ZCARD', held) }
    else
      forget(K)
    end
  end
end

-- The unit's slot or place given up; answers its key (to be filled), or nil for a unit unknown here.
local function leave(jobId)
  local entry = redis.call('HGET', units, jobId)
  if not entry then return nil end
  local K = split(entry)
  if redis.call('ZREM', base .. ':held:' .. K, jobId) == 1 then
    redis.call('HINCRBY', count, 'held', -1)
  elseif redis.call('ZREM', base .. ':line:' .. K, jobId) == 1 then
    redis.call('HINCRBY', count, 'waiting', -1)
  end
  redis.call('HDEL', units, jobId)
  redis.call('ZREM', leases, jobId)
  forget(K)
  return K
end
`;

/** ARGV: now, admitLeaseMs, n, then n × (jobId, key, limit, score, queue, payload). Answers {answers, admitted}. */
export const OFFER = `${PRELUDE}
local now, admitLease, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local answers, admitted = {}, {}
for i = 0, n - 1 do
  local o = 4 + i * 6
  local jobId, K, limit, score, queue, payload = ARGV[o], ARGV[o + 1], tonumber(ARGV[o + 2]), ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local held, line = base .. ':held:' .. K, base .. ':line:' .. K
  redis.call('HSET', limits, K, limit)
  fill(K, now, admitLease, admitted)
  if redis.call('ZSCORE', held, jobId) then
    answers[#answers + 1] = { jobId, 1, redis.call('ZCARD', held) }
  elseif redis.call('ZSCORE', line, jobId) then
    answers[#answers + 1] = { jobId, 0, redis.call('ZRANK', line, jobId) }
  else
    redis.call('ZINCRBY', keys, 1, K)
    if redis.call('ZCARD', held) < limit and redis.call('ZCARD', line) == 0 then
      hold(K, jobId, now + admitLease)
      redis.call('HSET', units, jobId, K .. '\\n' .. queue .. '\\n')
      answers[#answers + 1] = { jobId, 1, redis.call('ZCARD', held) }
    else
      redis.call('ZADD', line, score, jobId)
      redis.call('HSET', units, jobId, K .. '\\n' .. queue .. '\\n' .. payload)
      redis.call('HINCRBY', count, 'waiting', 1)
      answers[#answers + 1] = { jobId, 0, redis.call('ZRANK', line, jobId) }
    end
  end
end
return { answers, admitted }
`;

/** ARGV: now, leaseMs, admitLeaseMs, jobId, key, limit, queue. Answers {run (1/0), ahead, admitted}. */
export const CLAIM = `${PRELUDE}
local now, lease, admitLease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local jobId, K, limit, queue = ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local held, line = base .. ':held:' .. K, base .. ':line:' .. K
local admitted = {}
redis.call('HSET', limits, K, limit)
fill(K, now, admitLease, admitted)
if redis.call('ZSCORE', held, jobId) then
  redis.call('ZADD', held, 'XX', now + lease, jobId)
  redis.call('ZADD', leases, 'XX', now + lease, jobId)
  return { 1, 0, admitted }
end
local waiting = redis.call('ZSCORE', line, jobId)
local head = redis.call('ZRANGE', line, 0, 0)[1]
if redis.call('ZCARD', held) < limit and (head == nil or head == jobId) then
  if waiting then
    redis.call('ZREM', line, jobId)
    redis.call('HINCRBY', count, 'waiting', -1)
  else
    redis.call('ZINCRBY', keys, 1, K)
  end
  hold(K, jobId, now + lease)
  redis.call('HSET', units, jobId, K .. '\\n' .. queue .. '\\n')
  return { 1, 0, admitted }
end
-- No slot: the job waits in its queue (delayed by the worker) at the head of the line, to be promoted.
if not waiting then
  redis.call('ZADD', line, ${PARKED_SCORE}, jobId)
  redis.call('HINCRBY', count, 'waiting', 1)
  redis.call('ZINCRBY', keys, 1, K)
end
redis.call('HSET', units, jobId, K .. '\\n' .. queue .. '\\n')
return { 0, redis.call('ZRANK', line, jobId), admitted }
`;

/** ARGV: until, then job ids. */
export const RENEW = `${PRELUDE}
local expiry = tonumber(ARGV[1])
for i = 2, #ARGV do
  local entry = redis.call('HGET', units, ARGV[i])
  if entry then
    local K = split(entry)
    if redis.call('ZSCORE', base .. ':held:' .. K, ARGV[i]) then
      redis.call('ZADD', base .. ':held:' .. K, 'XX', expiry, ARGV[i])
      redis.call('ZADD', leases, 'XX', expiry, ARGV[i])
    end
  end
end
return 0
`;

/**
 * ARGV: now, admitLeaseMs, then job ids. Answers the admitted. Every unit leaves before any key
 * is filled: filling after each would admit units released further on (a cancelled case's), whose
 * jobs would then be put back in their queue.
 */
export const RELEASE = `${PRELUDE}
local now, admitLease = tonumber(ARGV[1]), tonumber(ARGV[2])
local admitted, touched, seen = {}, {}, {}
for i = 3, #ARGV do
  local K = leave(ARGV[i])
  if K and not seen[K] then
    seen[K] = true
    touched[#touched + 1] = K
  end
end
for _, K in ipairs(touched) do fill(K, now, admitLease, admitted) end
return admitted
`;

/** ARGV: the job ids. Units waiting in a line leave it; a unit holding a slot keeps it. */
export const WITHDRAW = `${PRELUDE}
for i = 1, #ARGV do
  local entry = redis.call('HGET', units, ARGV[i])
  if entry then
    local K = split(entry)
    if redis.call('ZREM', base .. ':line:' .. K, ARGV[i]) == 1 then
      redis.call('HINCRBY', count, 'waiting', -1)
      redis.call('HDEL', units, ARGV[i])
      forget(K)
    end
  end
end
return 0
`;

/** ARGV: now, admitLeaseMs, max. Answers the admitted. */
export const SWEEP = `${PRELUDE}
local now, admitLease = tonumber(ARGV[1]), tonumber(ARGV[2])
local admitted = {}
for _, jobId in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  local entry = redis.call('HGET', units, jobId)
  if entry then fill(split(entry), now, admitLease, admitted) else redis.call('ZREM', leases, jobId) end
end
return admitted
`;

/** ARGV: jobId. Answers {} or {holding (1/0), key, ahead, inUse, limit}. */
export const POSITION = `${PRELUDE}
local entry = redis.call('HGET', units, ARGV[1])
if not entry then return {} end
local K = split(entry)
local inUse, limit = redis.call('ZCARD', base .. ':held:' .. K), tonumber(redis.call('HGET', limits, K) or '0')
if redis.call('ZSCORE', base .. ':held:' .. K, ARGV[1]) then return { 1, K, 0, inUse, limit } end
return { 0, K, redis.call('ZRANK', base .. ':line:' .. K, ARGV[1]) or 0, inUse, limit }
`;

/** ARGV: top. Answers {held, waiting, {key, inUse, waiting, limit}...}. */
export const STATS = `${PRELUDE}
local held, waiting = tonumber(redis.call('HGET', count, 'held') or '0'), tonumber(redis.call('HGET', count, 'waiting') or '0')
local top = {}
local busiest = redis.call('ZREVRANGE', keys, 0, tonumber(ARGV[1]) - 1)
for _, K in ipairs(busiest) do
  top[#top + 1] = { K, redis.call('ZCARD', base .. ':held:' .. K), redis.call('ZCARD', base .. ':line:' .. K), tonumber(redis.call('HGET', limits, K) or '0') }
end
return { held, waiting, top }
`;

/**
 * The rate limiter's scripts take the group's base name `<prefix>:rate:{<group>}` and work in its
 * slot:
 *
 *   <base>:<key>     ZSET member (one attempt of one unit) → reserved time: the key's reservations
 *   <base>#s:<key>   ZSET member → the time it started: the key's starts in the last perMs
 *   <base>#keys      ZSET key → when its windows empty (its latest reservation or start + per)
 *   <base>#specs     HASH key → "<max>:<perMs>", the key's latest limit
 *
 * Windows expire with their last entry; the index forgets a key a little later (a few at each
 * reservation, the rest at a stats read), so the keyspace is bounded by the keys in use.
 */
const RATE_PRELUDE = `
local base = KEYS[1]
local index, specs = base .. '#keys', base .. '#specs'

local function forgetEmptied(now, max)
  local gone = redis.call('ZRANGEBYSCORE', index, '-inf', now, 'LIMIT', 0, max)
  if #gone > 0 then
    redis.call('ZREM', index, unpack(gone))
    redis.call('HDEL', specs, unpack(gone))
  end
end
`;

/**
 * ARGV: now, max, perMs, member, key. Answers when the member may start: now (its start is
 * recorded) or later (defer until then). A member without a live reservation reserves one, by
 * nextReservation; once its reserved time has come, the key's starts decide, by nextStart
 * (lib/core/limits.ts): a member that starts has its reservation moved to its start, one that
 * must wait again to that time.
 * A member that already started (its job delivered again) is answered its start time.
 */
export const RESERVE = `${RATE_PRELUDE}
local now, max, per, member, K = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local key, starts = base .. ':' .. K, base .. '#s:' .. K
local ttl = per + 1000
local started = redis.call('ZSCORE', starts, member)
if started and tonumber(started) > now - per then return started end
local at
local mine = redis.call('ZSCORE', key, member)
if mine and tonumber(mine) > now - per then
  at = tonumber(mine)
else
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - per)
  local n = redis.call('ZCARD', key)
  at = now
  if n >= max then
    local leaving = tonumber(redis.call('ZRANGE', key, n - max, n - max, 'WITHSCORES')[2])
    local last = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    at = math.max(now, leaving + per, last)
  end
end
if at <= now then
  redis.call('ZREMRANGEBYSCORE', starts, '-inf', now - per)
  local n = redis.call('ZCARD', starts)
  if n < max then
    -- Started: its reservation becomes its start, so that later ones are paced by what happened.
    at = now
    redis.call('ZADD', starts, now, member)
    redis.call('PEXPIRE', starts, ttl)
  else
    at = tonumber(redis.call('ZRANGE', starts, n - max, n - max, 'WITHSCORES')[2]) + per
  end
end
redis.call('ZADD', key, at, member)
ttl = math.max(at - now, 0) + per + 1000
if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
local emptiesAt = math.max(at, now) + per
if emptiesAt > tonumber(redis.call('ZSCORE', index, K) or '0') then redis.call('ZADD', index, emptiesAt, K) end
redis.call('HSET', specs, K, max .. ':' .. per)
forgetEmptied(now, 10)
if redis.call('PTTL', index) < ttl then
  redis.call('PEXPIRE', index, ttl)
  redis.call('PEXPIRE', specs, ttl)
end
return at
`;

/**
 * ARGV: now, scan. Answers the group's live keys and, for the `scan` most recently used, each
 * key's limit, its starts in the last perMs and its reservations after now (deferred).
 */
export const RATE_STATS = `${RATE_PRELUDE}
local now, scan = tonumber(ARGV[1]), tonumber(ARGV[2])
-- Emptied keys leave the index with their specs, a bounded number per read; any left over are
-- skipped here and forgotten by the next reads and reservations.
forgetEmptied(now, 1000)
local rows = {}
for _, K in ipairs(redis.call('ZREVRANGEBYSCORE', index, '+inf', '(' .. now, 'LIMIT', 0, scan)) do
  local spec = redis.call('HGET', specs, K) or '0:0'
  local colon = string.find(spec, ':', 1, true)
  local max, per = tonumber(string.sub(spec, 1, colon - 1)), tonumber(string.sub(spec, colon + 1))
  rows[#rows + 1] = { K, max, per, redis.call('ZCOUNT', base .. '#s:' .. K, '(' .. (now - per), now), redis.call('ZCOUNT', base .. ':' .. K, '(' .. now, '+inf') }
end
return { redis.call('ZCOUNT', index, '(' .. now, '+inf'), rows }
`;
