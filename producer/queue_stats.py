"""Queue figures read in one step: what `sluice stats` prints and what workers export as metrics.

arq keeps a job in the queue's sorted set while a worker runs it, so "ready" here is the
jobs that are due and *not* being run, and the oldest ready job is the oldest of those.
"""

from __future__ import annotations

from redis.asyncio import Redis

from producer.keys import Keys
from producer.models import QueueStats
from producer.wire import now_ms

WORKER_TTL_S = 30  # a worker whose heartbeat is older than this is not counted live

# KEYS: queue, running set, failed set, workers   ARGV: now (ms), live-worker cutoff (ms)
# Returns {due, deferred, running, running and due, failed, workers, oldest ready score or -1}.
# Running jobs are few (workers × max jobs), so walking them is cheap; the oldest ready job
# is among the first (running and due + 1) due entries, since at most that many are running.
QUEUE_STATS = """
local now = tonumber(ARGV[1])
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local deferred = redis.call('ZCARD', KEYS[1]) - due
local running = redis.call('SMEMBERS', KEYS[2])
local running_due = 0
for _, id in ipairs(running) do
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now then running_due = running_due + 1 end
end
local oldest = '-1'
local first = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0,
                         running_due + 1)
for i = 1, #first, 2 do
  if redis.call('SISMEMBER', KEYS[2], first[i]) == 0 then oldest = first[i + 1]; break end
end
local failed = redis.call('ZCARD', KEYS[3])
local workers = redis.call('ZCOUNT', KEYS[4], ARGV[2], '+inf')
return {due, deferred, #running, running_due, failed, workers, oldest}
"""


async def read_queue_stats(redis: Redis, keys: Keys) -> QueueStats:
    """The namespace's queue figures, read atomically by one script."""
    now = now_ms()
    keys_ = [keys.queue, keys.running, keys.failed, keys.workers]
    cutoff = now - WORKER_TTL_S * 1000
    raw = await redis.eval(QUEUE_STATS, len(keys_), *keys_, now, cutoff)
    due, deferred, running, running_due, failed, workers, oldest = raw
    oldest_score = float(oldest)
    age_s = max(0.0, (now - oldest_score) / 1000) if oldest_score >= 0 else 0.0
    return QueueStats(
        ready=max(0, int(due) - int(running_due)),
        deferred=int(deferred),
        in_progress=int(running),
        failed=int(failed),
        workers=int(workers),
        oldest_ready_age_s=round(age_s, 3),
    )
