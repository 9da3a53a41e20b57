"""Lua scripts the producer runs so that a check and a write happen as one step."""

from __future__ import annotations

# Enqueue exactly as arq does (job envelope + queue entry), plus Sluice's status hash,
# refusing a duplicate id and respecting the queue cap in the same atomic step.
# KEYS: queue, arq job, arq result, status hash, inputs list
# ARGV: job id, envelope, score, expires ms, cap, enqueued at (s), pipeline, total, status ttl s
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
return 1
"""
