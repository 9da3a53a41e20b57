"""Lua scripts the producer runs so that a check and a write happen as one step."""

from __future__ import annotations

# Enqueue exactly as arq does (job envelope + queue entry), plus Sluice's status hash,
# refusing a duplicate id and respecting the queue cap in the same atomic step; a job ready
# now pushes a wake token, so an idle worker starts it at once instead of at its next poll.
# KEYS: queue, arq job, arq result, status hash, inputs list, wake list
# ARGV: job id, envelope, score, expires ms, cap, enqueued at (s), pipeline, total, status ttl s,
#       wake tokens kept (0: deferred, wake nobody)
# Returns 1 enqueued, 0 queue at cap, -1 job exists.
ENQUEUE = """
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then return -1 end
local cap = tonumber(ARGV[5])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[4], 'state', 'queued', 'pipeline', ARGV[7], 'total', ARGV[8],
           'enqueued_at', ARGV[6], 'fetched', 0, 'transformed', 0, 'stored', 0, 'failed', 0)
redis.call('EXPIRE', KEYS[4], ARGV[9])
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('EXPIRE', KEYS[5], ARGV[9]) end
local tokens = tonumber(ARGV[10])
if tokens > 0 then
  redis.call('LPUSH', KEYS[6], 1)
  redis.call('LTRIM', KEYS[6], 0, tokens - 1)
end
return 1
"""

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
RETRY = """
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
redis.call('LPUSH', KEYS[9], 1)
redis.call('LTRIM', KEYS[9], 0, tonumber(ARGV[5]) - 1)
return 1
"""
