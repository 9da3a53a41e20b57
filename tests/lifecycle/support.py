"""Driving the lifecycle's scripts directly, as a worker would, against the test server."""

from __future__ import annotations

from producer.contract.keys import Keys
from producer.redis.typed import Redis
from worker.lifecycle.claim import Claimer, Unit
from worker.lifecycle.endings import Endings, Entry


def claimer(redis: Redis, keys: Keys, worker: str = "w-1", lease_s: float = 30.0) -> Claimer:
    return Claimer(redis, keys, worker, lease_s, unit_inputs=100, result_ttl_s=600)


async def member_scores(redis: Redis, key: str) -> dict[str, float]:
    """A sorted set's members (as text) and scores."""
    return {m.decode(): s for m, s in await redis.zrange(key, 0, -1, withscores=True)}


async def units_of(redis: Redis, keys: Keys, job_id: str) -> dict[str, str]:
    """The lease fields (``unit:{k}``) of a job's status hash."""
    fields = await redis.hgetall(keys.job(job_id))
    return {k.decode(): v.decode() for k, v in fields.items() if k.startswith(b"unit:")}


async def end(endings: Endings, unit: Unit, mode: str, delay_ms: int = 0, undo: int = 0) -> str:
    """Send one ending for ``unit`` (as `worker.lifecycle.attempt` builds them)."""
    fields = ("error", "it broke") if mode == "fail" else ()
    entry = Entry(mode, unit.job_id, unit.index, unit.token, delay_ms, undo, fields=fields)
    return await endings.send(unit.job_id, entry)


async def store(redis: Redis, keys: Keys, unit: Unit, *indexes: int) -> None:
    """Records for these inputs, as if the store stage had written them."""
    await redis.hset(keys.results(unit.job_id), mapping={str(i): b"{}" for i in indexes})
