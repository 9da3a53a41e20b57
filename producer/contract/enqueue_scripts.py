"""The enqueue's Lua scripts: one job, or many in order, each admitted in one atomic step with
the queue cap's check (`producer.client.enqueue` runs them)."""

from __future__ import annotations

from producer.contract.scripts import ADMIT, CHUNKED, EMIT, WAKE

# Enqueue one job, refusing a duplicate id and respecting the queue cap in the same atomic
# step; a job ready now wakes a worker (a deferred one passes 0 tokens).
# KEYS: the job's queue, arq job, arq result, status hash, inputs list, wake list, queues,
#       events
# ARGV: job id, envelope, score, expires ms, cap, enqueued at (s), pipeline, total, status ttl s,
#       wake tokens kept (0: deferred, wake nobody), queue name ('': default), events kept
#       (SLUICE_EVENTS_MAXLEN), then the status fields the enqueue chose (name, value...:
#       producer.contract.placement)
# Returns 1 enqueued, 0 queue at cap, -1 job exists, -2 a new queue past MAX_QUEUES.
ENQUEUE = (
    ADMIT
    + WAKE
    + EMIT
    + """
if redis.call('EXISTS', KEYS[2], KEYS[3], KEYS[4]) > 0 then return -1 end
if not queue_allowed(KEYS[7], ARGV[11]) then return -2 end
local cap = tonumber(ARGV[5])
if cap > 0 and redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
admit(KEYS[1], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[6], ARGV[7], ARGV[8],
      ARGV[9], {unpack(ARGV, 13)})
register_queue(KEYS[7], ARGV[11])
events_to(KEYS[8], ARGV[12])
emit(ARGV[1], 'enqueued', ARGV[11], ARGV[7], {'total', ARGV[8]})
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('EXPIRE', KEYS[5], ARGV[9])
  redis.call('HSET', KEYS[4], 'inputs_list', 1)  -- the ending sets its TTL when this is set
end
wake(KEYS[6], 1, tonumber(ARGV[10]))
return 1
"""
)

# Enqueue many jobs (`enqueue_many`), in order, while the queue has room under its cap.
# KEYS: the jobs' queue, wake list, queues, events
# ARGV: cap, score, expires ms, enqueued at (s), pipeline, status ttl s, wake tokens kept,
#       status hash prefix, queue name ('': default), the status fields the enqueue chose
#       (JSON list: name, value...), events kept (SLUICE_EVENTS_MAXLEN), then (id, envelope,
#       total) per job
# Returns how many of the jobs (the first ones) were admitted (-1: a new queue past
# MAX_QUEUES, none admitted). The ids are fresh
# (producer.client.bulk.job_ids), so unlike ENQUEUE there is no check that a job exists already.
# The queue gets every admitted job in one ZADD (all share one score; ids break the tie).
ENQUEUE_MANY = (
    ADMIT
    + CHUNKED
    + WAKE
    + EMIT
    + """
local first = 12
local n = (#ARGV - first + 1) / 3
local chosen = cjson.decode(ARGV[10])
if not queue_allowed(KEYS[3], ARGV[9]) then return -1 end
local cap = tonumber(ARGV[1])
if cap > 0 then n = math.max(0, math.min(n, cap - redis.call('ZCARD', KEYS[1]))) end
local entries = {}
for j = 0, n - 1 do
  local i = first + 3 * j
  admit(false, ARGV[8] .. ARGV[i], ARGV[i], ARGV[i + 1], ARGV[2], ARGV[3], ARGV[4], ARGV[5],
        ARGV[i + 2], ARGV[6], chosen)
  entries[2 * j + 1], entries[2 * j + 2] = ARGV[2], ARGV[i]
end
events_to(KEYS[4], ARGV[11])
for j = 0, n - 1 do emit_many(ARGV[first + 3 * j], 'enqueued', ARGV[9], ARGV[5]) end
flush_events()
chunked('ZADD', KEYS[1], entries)
if n > 0 then register_queue(KEYS[3], ARGV[9]) end
wake(KEYS[2], n, tonumber(ARGV[7]))
return n
"""
)
