"""Queue figures read in one step: what `sluice stats` prints and what workers export as metrics.

A job is split into units when a worker first claims it: the queue then holds the job's next
unit (due) and its later ones (parked, at +inf), and the lease set the units workers hold.
So "ready" jobs are those with a unit waiting for a worker — a running job's later units
count it there too — and the unit figures say how much work waits and how much is held.
"""

from __future__ import annotations

from typing import Any, Protocol

from redis.typing import EncodableT

from producer.contract.keys import Keys
from producer.contract.liveness import LIVE_S
from producer.contract.models import QueueFigures, QueueStats
from producer.contract.scripts import NOW

MARK = "\x00"  # stands for a queue's name while its key is split around it

# KEYS: the default queue, running set, failed set, workers, leases, the registry of queues
# ARGV: live-worker window (ms), the key of a named queue around its name (prefix, suffix)
# Returns {running, failed, workers, leased, lapsed, now, then per queue ("default" first,
# then the registry's names in order): name, due, deferred, parked, oldest due score or -1}.
# Every figure is a count on a sorted set's scores: the cost does not grow with the jobs
# queued or held (it grows with the number of queues).
QUEUE_STATS = (
    NOW
    + """
local now = now_ms()
local out = {redis.call('SCARD', KEYS[2]), redis.call('ZCARD', KEYS[3]),
             redis.call('ZCOUNT', KEYS[4], now - tonumber(ARGV[1]), '+inf'),
             redis.call('ZCARD', KEYS[5]), redis.call('ZCOUNT', KEYS[5], '-inf', now), now}
local names = redis.call('SMEMBERS', KEYS[6])
table.sort(names)
table.insert(names, 1, 'default')
for i, name in ipairs(names) do
  local queue = KEYS[1]
  if i > 1 then queue = ARGV[2] .. name .. ARGV[3] end
  local due = redis.call('ZCOUNT', queue, '-inf', now)
  local parked = redis.call('ZCOUNT', queue, '+inf', '+inf')
  local deferred = redis.call('ZCARD', queue) - due - parked
  local first = redis.call('ZRANGEBYSCORE', queue, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 1)
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, due, deferred, parked
  out[n + 5] = first[2] or '-1'
end
return out
"""
)


# KEYS: workers; ARGV: live-worker window (ms). Returns the live workers.
LIVE_WORKERS = NOW + "return redis.call('ZCOUNT', KEYS[1], now_ms() - tonumber(ARGV[1]), '+inf')"
MEMBERS = "return redis.call('SMEMBERS', KEYS[1])"  # KEYS: a set


class Evaluates(Protocol):
    """A Redis client that runs a script, as `producer.redis.typed.Redis` types it (the
    contract imports nothing of the Redis layer)."""

    async def eval(self, script: str, numkeys: int, *keys_and_args: EncodableT) -> Any: ...


async def read_queue_stats(redis: Evaluates, keys: Keys) -> QueueStats:
    """The namespace's queue figures, in all and per queue, read atomically by one script (on
    a sharded layout, one a shard, summed: each shard's figures are atomic, not their sum)."""
    if not keys.sharded:
        return _stats([await _read_shard(redis, keys, keys.workers, keys.queues)])
    # a shard's call counts its leases where the workers go (the fleet's key is in no
    # shard's slot): replaced below by the count of the fleet's workers
    raws = [await _read_shard(redis, k, k.leases, k.shard_queues) for k in keys.every_shard()]
    raws[0][2] = await redis.eval(LIVE_WORKERS, 1, keys.workers, LIVE_S * 1000)
    names = raws[0][6::5]  # the queues workers serve, even where nothing was enqueued yet
    served = sorted(map(_name, await redis.eval(MEMBERS, 1, keys.queues)))
    raws[0] += [v for name in served if name not in names for v in (name, 0, 0, 0, -1)]
    return _stats(raws)


async def _read_shard(redis: Evaluates, k: Keys, workers: str, registry: str) -> list[Any]:
    keys_ = [k.queue, k.running, k.failed, workers, k.leases, registry]
    prefix, _, suffix = k.named_queue(MARK).partition(MARK)
    raw = await redis.eval(QUEUE_STATS, len(keys_), *keys_, LIVE_S * 1000, prefix, suffix)
    return [_name(v) if i >= 6 and (i - 6) % 5 == 0 else v for i, v in enumerate(raw)]


def _name(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _stats(raws: list[list[Any]]) -> QueueStats:
    """The figures of every shard's QUEUE_STATS reply, summed."""
    running = failed = workers = leased = lapsed = 0
    sums: dict[str, list[Any]] = {}
    for raw in raws:
        r, f, w, held, late, now = (int(float(v)) for v in raw[:6])
        running, failed, workers = running + r, failed + f, workers + w
        leased, lapsed = leased + held, lapsed + late
        for i in range(6, len(raw), 5):
            due, deferred, parked, oldest = (int(float(v)) for v in raw[i + 1 : i + 5])
            age = _age_s(now, oldest)
            got = sums.setdefault(raw[i], [0, 0, 0, 0.0])
            got[0], got[1], got[2] = got[0] + due, got[1] + deferred, got[2] + parked
            got[3] = max(got[3], age)
    queues = {
        name: QueueFigures(
            ready=due,
            deferred=deferred,
            oldest_ready_age_s=age,
            ready_units=due + parked,
        )
        for name, (due, deferred, parked, age) in sums.items()
    }
    every = queues.values()
    return QueueStats(
        ready=sum(q.ready for q in every),
        deferred=sum(q.deferred for q in every),
        in_progress=running,
        failed=failed,
        workers=workers,
        oldest_ready_age_s=max((q.oldest_ready_age_s for q in every), default=0.0),
        ready_units=sum(q.ready_units for q in every) + lapsed,
        held_units=leased - lapsed,
        queues=queues,
    )


def _age_s(now: int, oldest: int) -> float:
    return round(max(0.0, (now - oldest) / 1000), 3) if oldest >= 0 else 0.0
