"""Lua scripts the producer runs so that a check and a write happen as one step."""

from __future__ import annotations

# Shared by the scripts that make a job ready: write it as arq and Sluice expect it (arq's
# envelope and queue entry, Sluice's status hash with its TTL), and push wake tokens so an
# idle worker starts at once instead of at its next poll (at most `kept` stay in the list).
# A false ``queue``: the caller adds the job to the queue itself (many in one ZADD).
_ADMIT = """
local function admit(queue, job_key, status, id, envelope, score, expires_ms, enqueued,
                     pipeline, total, ttl)
  redis.call('SET', job_key, envelope, 'PX', expires_ms)
  if queue then redis.call('ZADD', queue, score, id) end
  redis.call('HSET', status, 'state', 'queued', 'pipeline', pipeline, 'total', total,
             'enqueued_at', enqueued, 'fetched', 0, 'transformed', 0, 'stored', 0, 'failed', 0)
  redis.call('EXPIRE', status, ttl)
end
"""
# One command over many arguments, a thousand at a time: Lua's unpack stops at its stack's
# limit (8,000 values), and a call may carry more (a claim or a shutdown's endings of up to
# SLUICE_MAX_JOBS jobs). Pairs (ZADD's score, member) stay whole: the step is even.
CHUNKED = """
local function chunked(command, key, args)
  for i = 1, #args, 1000 do
    redis.call(command, key, unpack(args, i, math.min(i + 999, #args)))
  end
end
"""
_WAKE = """
local function wake(list, count, kept)
  count = math.min(count, kept)
  if count <= 0 then return end
  local tokens = {}
  for t = 1, count do tokens[t] = 1 end
  redis.call('LPUSH', list, unpack(tokens))
  redis.call('LTRIM', list, 0, kept - 1)
end
"""

# Enqueue one job, refusing a duplicate id and respecting the queue cap in the same atomic
# step; a job ready now wakes a worker (a deferred one passes 0 tokens).
# KEYS: queue, arq job, arq result, status hash, inputs list, wake list
# ARGV: job id, envelope, score, expires ms, cap, enqueued at (s), pipeline, total, status ttl s,
#       wake tokens kept (0: deferred, wake nobody)
# Returns 1 enqueued, 0 queue at cap, -1 job exists.
ENQUEUE = (
    _ADMIT
    + _WAKE
    + """
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then return -1 end
local cap = tonumber(ARGV[5])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
admit(KEYS[1], KEYS[2], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7],
      ARGV[8], ARGV[9])
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('EXPIRE', KEYS[5], ARGV[9]) end
wake(KEYS[6], 1, tonumber(ARGV[10]))
return 1
"""
)

# Enqueue many jobs (`enqueue_many`), in order, while the queue has room under its cap.
# KEYS: queue, wake list
# ARGV: cap, score, expires ms, enqueued at (s), pipeline, status ttl s, wake tokens kept,
#       status hash prefix, arq job prefix, then (id, envelope, total) per job
# Returns how many of the jobs (the first ones) were admitted. The ids are fresh
# (producer.bulk.job_ids), so unlike ENQUEUE there is no check that a job exists already.
# The queue gets every admitted job in one ZADD (all share one score; ids break the tie).
ENQUEUE_MANY = (
    _ADMIT
    + CHUNKED
    + _WAKE
    + """
local first = 10
local n = (#ARGV - first + 1) / 3
local cap = tonumber(ARGV[1])
if cap > 0 then n = math.max(0, math.min(n, cap - redis.call('ZCARD', KEYS[1]))) end
local entries = {}
for j = 0, n - 1 do
  local i = first + 3 * j
  admit(false, ARGV[9] .. ARGV[i], ARGV[8] .. ARGV[i], ARGV[i], ARGV[i + 1], ARGV[2],
        ARGV[3], ARGV[4], ARGV[5], ARGV[i + 2], ARGV[6])
  entries[2 * j + 1], entries[2 * j + 2] = ARGV[2], ARGV[i]
end
chunked('ZADD', KEYS[1], entries)
wake(KEYS[2], n, tonumber(ARGV[7]))
return n
"""
)

# Cancel a job that is queued or running. A queued job leaves the queue at once; a running
# one is aborted through arq's abort set, and its worker drops the inputs not yet stored.
# KEYS: status hash, queue, arq job, arq abort set, running set
# ARGV: job id, now (s), now (ms), ttl s
# Returns 1 cancelled, 0 already final (or unknown).
CANCEL = """
local state = redis.call('HGET', KEYS[1], 'state')
local queued = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not queued and state ~= 'queued' and state ~= 'in_progress' then return 0 end
if state == 'complete' or state == 'failed' or state == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'cancelled', 'finished_at', ARGV[2],
           'error', 'cancelled')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
return 1
"""

# Put a failed or cancelled job back in the queue; records already stored are kept, so the
# new attempt does only the inputs that have none.
# KEYS: status hash, spec, queue, arq job, arq result, arq retry, failed set, inputs list,
#       wake list
# ARGV: job id, now (ms), expires ms, job expires s, wake tokens kept
# Returns 1 re-queued, 0 not failed/cancelled, -1 no spec kept.
RETRY = (
    _WAKE
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'failed' and state ~= 'cancelled' then return 0 end
local spec = redis.call('GET', KEYS[2])
if not spec then return -1 end
local envelope = '{"t":1,"f":"sluice","a":[],"k":' .. spec .. ',"et":' .. ARGV[2] .. '}'
redis.call('SET', KEYS[4], envelope, 'PX', ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('DEL', KEYS[5], KEYS[6])
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'queued', 'error', '', 'finished_at', '')
redis.call('EXPIRE', KEYS[1], ARGV[4])
if redis.call('EXISTS', KEYS[8]) == 1 then redis.call('EXPIRE', KEYS[8], ARGV[4]) end
wake(KEYS[9], 1, tonumber(ARGV[5]))
return 1
"""
)
