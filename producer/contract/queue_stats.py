"""Queue figures read in one step: what `sluice stats` prints and what workers export as metrics.

A job is split into units when a worker first claims it: the queue then holds the job's next
unit (due) and its later ones (parked, at +inf), and the lease set the units workers hold.
So "ready" jobs are those with a unit waiting for a worker — a running job's later units
count it there too — and the unit figures say how much work waits and how much is held.
"""

from __future__ import annotations

from redis.asyncio import Redis

from producer.contract.keys import Keys
from producer.contract.liveness import LIVE_S
from producer.contract.models import QueueStats
from producer.contract.scripts import NOW

# KEYS: queue, running set, failed set, workers, leases   ARGV: live-worker window (ms)
# Returns {due, deferred, parked, running, failed, workers, oldest due score or -1, leased,
# lapsed, now}. Every figure is a count on a sorted set's scores: the cost does not grow with
# the jobs queued or held.
QUEUE_STATS = (
    NOW
    + """
local now = now_ms()
local due = redis.call('ZCOUNT', KEYS[1], '-inf', now)
local parked = redis.call('ZCOUNT', KEYS[1], '+inf', '+inf')
local deferred = redis.call('ZCARD', KEYS[1]) - due - parked
local first = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
local oldest = first[2] or '-1'
local leased = redis.call('ZCARD', KEYS[5])
local lapsed = redis.call('ZCOUNT', KEYS[5], '-inf', now)
local running = redis.call('SCARD', KEYS[2])
local failed = redis.call('ZCARD', KEYS[3])
local workers = redis.call('ZCOUNT', KEYS[4], now - tonumber(ARGV[1]), '+inf')
return {due, deferred, parked, running, failed, workers, oldest, leased, lapsed, now}
"""
)


async def read_queue_stats(redis: Redis, keys: Keys) -> QueueStats:
    """The namespace's queue figures, read atomically by one script."""
    keys_ = [keys.queue, keys.running, keys.failed, keys.workers, keys.leases]
    raw = await redis.eval(QUEUE_STATS, len(keys_), *keys_, LIVE_S * 1000)
    due, deferred, parked, running, failed, workers, oldest, leased, lapsed, now = (
        int(float(v)) for v in raw
    )
    age_s = max(0.0, (now - oldest) / 1000) if oldest >= 0 else 0.0
    return QueueStats(
        ready=due,
        deferred=deferred,
        in_progress=running,
        failed=failed,
        workers=workers,
        oldest_ready_age_s=round(age_s, 3),
        ready_units=due + parked + lapsed,
        held_units=leased - lapsed,
    )
