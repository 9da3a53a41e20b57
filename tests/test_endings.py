"""The END script against a real server: what a finished attempt leaves in the status hash."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from producer import Client, JobState
from tests.expected import data_uri
from tests.support.workers import WorkerFactory
from worker.endings import BATCH, Endings, FinalStatus
from worker.stages.items import StageCounters


async def test_counters_add_to_the_hash_and_the_fields_win(client: Client, redis: Redis) -> None:
    """Stage counters add to what an earlier attempt (or a progress flush) wrote; a field the
    ending sets outright (a complete job's fetched = total) wins over the counter."""
    keys, job = client.keys, "ending-1"
    await redis.hset(
        keys.job(job),
        mapping={"state": "in_progress", "fetch_count": 5, "fetch_s": 1.5, "fetched": 2},
    )
    endings = Endings(redis, keys, "w-1", result_ttl_s=60)
    endings.start()
    counters = StageCounters(fetched=3, fetch_count=3, fetch_s=0.25, store_count=4, store_s=0.125)
    final = FinalStatus("complete", {"total": 9, "fetched": 9}, counters=counters)
    await endings.finish(job, final, b'{"state": "complete"}')
    await endings.stop()
    status = {k.decode(): v.decode() for k, v in (await redis.hgetall(keys.job(job))).items()}
    assert status["state"] == "complete" and status["worker"] == "w-1"
    assert (status["fetch_count"], status["store_count"], status["fetched"]) == ("8", "4", "9")
    assert float(status["fetch_s"]) == pytest.approx(1.75)
    assert float(status["store_s"]) == pytest.approx(0.125)
    assert 0 < await redis.ttl(keys.job(job)) <= 60
    assert await redis.get(keys.arq_result(job)) == b'{"state": "complete"}'


async def test_a_new_attempt_adds_to_the_counters_an_earlier_one_wrote(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """The claim tells the worker whether the hash already holds stage counters: a job that
    an earlier attempt counted in gets this attempt's counts added; a fresh one gets its own."""
    earlier = await client.enqueue("text-stats", [data_uri(b"a b"), data_uri(b"c")])
    await redis.hset(client.keys.job(earlier), mapping={"fetch_count": 5, "store_s": 1.5})
    fresh = await client.enqueue("text-stats", [data_uri(b"d e f")])
    workers()
    for job_id in (earlier, fresh):
        assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
    again, new = await client.status(earlier), await client.status(fresh)
    assert (again.stages["fetch"].count, again.stages["store"].count) == (7, 2)
    assert again.stages["store"].total_s > 1.5
    assert (new.stages["fetch"].count, new.stages["store"].count) == (1, 1)
    assert 0 < new.stages["store"].total_s < 1.5
    assert (new.fetched, new.transformed, new.stored) == (1, 1, 1)


async def test_many_endings_at_once_are_all_written_in_batches(
    client: Client, redis: Redis
) -> None:
    """More endings than one call carries (BATCH) end together: every one is written, in
    several script calls (counted by the server) rather than one."""
    keys, jobs = client.keys, [f"many-{i}" for i in range(3 * BATCH + 5)]
    endings = Endings(redis, keys, "w-1", result_ttl_s=60)
    endings.start()
    await endings.finish("warm-up", None, b"{}")  # loads the script: later calls are EVALSHA
    before = await _evalsha_calls(redis)
    await asyncio.gather(*(
        endings.finish(job, FinalStatus("complete", {"total": 1}), b"{}") for job in jobs
    ))  # fmt: skip
    await endings.stop()
    states = [await redis.hget(keys.job(job), "state") for job in jobs]
    assert states == [b"complete"] * len(jobs)
    assert await _evalsha_calls(redis) - before >= -(-len(jobs) // BATCH)  # ceil: 4


async def _evalsha_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
