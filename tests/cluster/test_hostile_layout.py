"""Trying to break the sharded layout (SLUICE_SHARDS=4, one server) as an attacker and an
operator would: raw jobs in the wrong shard, ids that are not ids, odd namespaces."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import orjson
import pytest

from producer import Client, ClientSettings, JobState
from producer.contract.errors import InvalidJob
from producer.contract.keys import shard_of
from producer.redis.typed import Redis
from tests.support.scrape import wait_until
from tests.support.workers import WorkerFactory

SHARDS = 4


@pytest.fixture
async def sharded(settings: ClientSettings) -> AsyncIterator[Client]:
    async with Client(settings.model_copy(update={"shards": SHARDS})) as c:
        yield c


def envelope(*inputs: str) -> bytes:
    job = {"pipeline": "text-stats", "inputs": list(inputs), "options": {}}
    return orjson.dumps({"t": 1, "f": "sluice", "a": [], "k": job, "et": int(time.time() * 1000)})


async def test_a_raw_job_in_the_wrong_shard_fails_alone_naming_its_shard(
    sharded: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """A raw producer that computes the shard wrongly (docs/wire-format.md): its job is
    refused at the claim into the failed set of the shard it was put in, with the reason
    naming the shard its id belongs in; it is not run again and again, and the jobs placed
    right beside it run."""
    keys = sharded.keys
    await sharded.enqueue("text-stats", ["data:,a"])  # records the layout
    job_id, good = "misplaced-1", [f"placed-{i}" for i in range(8)]
    wrong = keys.shard_keys((shard_of(job_id, SHARDS) + 1) % SHARDS)
    now = int(time.time() * 1000) - 1000
    await redis.set(wrong.arq_job(job_id), envelope("data:,x"), px=86_400_000)
    await redis.zadd(wrong.queue, {job_id: now})
    for placed in good:  # in every shard: the script's CRC-32 agrees with zlib's
        await redis.set(keys.arq_job(placed), envelope("data:,y"), px=86_400_000)
        await redis.zadd(keys.for_job(placed).queue, {placed: now})
    assert len({shard_of(placed, SHARDS) for placed in good}) == SHARDS
    workers(shards=SHARDS)
    for placed in good:
        assert (await sharded.wait(placed, timeout_s=30)).state == JobState.COMPLETE

    async def refused() -> bool:
        return await redis.hget(wrong.refused, job_id) is not None

    await wait_until(refused)
    reason = (await redis.hget(wrong.refused, job_id) or b"").decode()
    assert f"shard {shard_of(job_id, SHARDS)}" in reason and "SLUICE_SHARDS" in reason, reason
    assert await redis.zscore(wrong.failed, job_id) is not None
    assert (await redis.zcard(wrong.queue), await redis.zcard(wrong.leases)) == (0, 0)
    assert await redis.exists(wrong.arq_job(job_id), wrong.job(job_id)) == 0


@pytest.mark.parametrize("shards", [1, SHARDS])
async def test_ids_naming_another_jobs_keys_are_refused_by_name(
    settings: ClientSettings, redis: Redis, shards: int
) -> None:
    """status, cancel, retry, results of an id that names another job's key (``X:inputs``,
    ``X:results``), a hash tag or a path: InvalidJob naming the grammar, and the other
    job's keys untouched (a read of ``X:inputs`` as a status hash was WRONGTYPE)."""
    async with Client(settings.model_copy(update={"shards": shards})) as client:
        victim = await client.enqueue("text-stats", iter(["data:,a", "data:,b"]))  # chunked
        keys = client.keys
        await redis.hset(keys.results(victim), "0", b"kept")
        before = await redis.lrange(keys.inputs(victim), 0, -1)
        calls: list[Callable[[str], Awaitable[object]]] = [
            client.status,
            client.cancel,
            client.retry,
            partial(client.retry, failed_inputs=True),
            partial(client.blob, index=0),
            client.delete,
            partial(client.wait, timeout_s=1),
        ]
        for bad in (f"{victim}:inputs", f"{victim}:results", "x{y}", "../x", "a b"):
            for call in calls:
                with pytest.raises(InvalidJob, match="invalid job id"):
                    await call(bad)
            with pytest.raises(InvalidJob, match="invalid job id"):
                _ = [r async for r in client.results(bad)]
        assert await redis.hgetall(keys.results(victim)) == {b"0": b"kept"}
        assert await redis.lrange(keys.inputs(victim), 0, -1) == before
        assert (await client.status(victim)).state == JobState.QUEUED


async def test_no_wake_token_goes_to_a_shards_own_list(
    sharded: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """Idle workers of a sharded layout wait on the fleet's list ({ns}:wake) only: enqueue,
    enqueue_many, retry and a claim that splits a job push there, and nothing to a shard's
    list (no one reads it, and shard 1 of namespace "a", ``{a.1}:wake``, is the fleet list
    of namespace "a.1": its tokens woke another namespace's workers)."""
    keys = sharded.keys
    job = await sharded.enqueue("text-stats", ["data:,a"])
    await sharded.enqueue_many("text-stats", [[f"data:,{i}"] for i in range(8)])
    assert await sharded.cancel(job)
    await sharded.retry(job)
    assert await redis.llen(keys.fleet_wake_for("default")) > 0
    big = await sharded.enqueue("text-stats", [f"data:,{i}" for i in range(40)])
    workers(shards=SHARDS, unit_inputs=4)
    assert (await sharded.wait(big, timeout_s=60)).state == JobState.COMPLETE
    own = [k.wake for k in keys.every_shard()]
    assert [await redis.llen(key) for key in own] == [0] * SHARDS
