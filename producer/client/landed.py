"""Enqueue's writes, tried again after a failure that may have come after Redis took them (a
connection lost before the reply, a failover, replicas that did not confirm in time).

Each write finds out what its earlier try left before writing again, so that nothing is
written twice: the job is there with this very envelope (or, once a worker has taken it, its
status records this enqueue's time); the inputs list is one chunk longer; the first jobs of
a bulk chunk exist (their ids are fresh, so nobody else made them). With
SLUICE_REDIS_WAIT_REPLICAS, what is found counts only once replicas confirm it.
"""

from __future__ import annotations

from collections.abc import Sequence

from producer.client.bulk import Entry
from producer.contract.errors import ServerUnavailable
from producer.contract.keys import Keys
from producer.contract.status import Field
from producer.redis.failover import ReplicaWait
from producer.redis.typed import Redis


async def job_landed(
    redis: Redis,
    keys: Keys,
    job_id: str,
    envelope: bytes,
    enqueued_s: float,
    wait: ReplicaWait | None,
) -> bool:
    """Whether the job that exists under ``job_id`` is the one this enqueue wrote: its
    envelope is this one; or, the envelope gone (the job ended), its status has this
    enqueue's time; or has no enqueue time at all (a worker ran the job from an earlier try
    that reached a primary lost since, and wrote its status on the new one)."""
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.job(job_id), [Field.ENVELOPE, Field.ENQUEUED_AT])
        if wait is not None:
            wait.queue(pipe)
        (stored, at), *waited = await pipe.execute()
    if stored is not None:
        mine = bool(stored == envelope)
    else:  # redis-py sends a float as its repr
        mine = at is None or at == repr(enqueued_s).encode()
    if mine and wait is not None:
        wait.check(waited[-1])
    return mine


async def push_chunk(
    redis: Redis,
    key: str,
    chunk: Sequence[str],
    before: int,
    ttl_s: int,
    wait: ReplicaWait | None,
    in_doubt: bool,
) -> None:
    """Append ``chunk`` to the inputs list at ``key``, which held ``before`` inputs; with
    ``in_doubt`` (an earlier try failed) only if that try did not append it already."""
    length = await redis.llen(key) if in_doubt else before
    if length not in (before, before + len(chunk)):
        raise ServerUnavailable(
            f"the job's inputs list {key} holds {length} inputs, not the {before} written "
            "before: a failover lost some; enqueue the job again"
        )
    async with redis.pipeline(transaction=False) as pipe:
        if length == before:
            pipe.rpush(key, *chunk)
        pipe.expire(key, ttl_s)
        if wait is not None:
            wait.queue(pipe)
        replies = await pipe.execute()
    if wait is not None:
        wait.check(replies[-1])


async def admitted_before(
    redis: Redis, keys: Keys, chunk: Sequence[Entry], wait: ReplicaWait | None
) -> int:
    """How many of a bulk chunk's jobs an earlier try admitted (always the first ones)."""
    async with redis.pipeline(transaction=False) as pipe:
        for entry in chunk:
            pipe.exists(keys.job(entry.job_id))
        if wait is not None:
            wait.queue(pipe)
        replies = await pipe.execute()
    found = replies[: len(chunk)]
    admitted = next((n for n, exists in enumerate(found) if not exists), len(found))
    if admitted and wait is not None:
        wait.check(replies[-1])
    return admitted
