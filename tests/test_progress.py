"""Stage progress of a running job: written a few times a second once the job has run a
tick, and added up right at its ending."""

from __future__ import annotations

import asyncio
import time

from producer import Client, JobState
from producer.contract.keys import Keys
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.support.latency_proxy import LatencyProxy
from tests.support.workers import WorkerFactory
from worker.pipelines import text_stats  # noqa: F401  # registers text-stats
from worker.registry import REGISTRY
from worker.stages.items import JobRun
from worker.stages.progress import ProgressWriter


async def test_a_long_job_shows_its_stage_counts_while_it_runs(
    client: Client, workers: WorkerFactory
) -> None:
    inputs = [data_uri(f"item {i}".encode()) for i in range(8)]
    job_id = await client.enqueue("test-sleep", inputs, options={"seconds": 0.25})
    workers(pipelines="tests.sample_pipelines", pool_size=1, transform_batch_items=1)
    mid_run: list[int] = []
    deadline = time.monotonic() + 60
    while (status := await client.status(job_id)).state != JobState.COMPLETE:
        assert time.monotonic() < deadline, "the job did not complete"
        if status.state == JobState.IN_PROGRESS:
            mid_run.append(status.stages["transform"].count)
        await asyncio.sleep(0.05)
    # progress was written before the end: some transforms counted, not yet all
    assert any(0 < count < 8 for count in mid_run), mid_run
    # and the ending added the rest to what progress wrote, without counting anything twice
    assert all(status.stages[s].count == 8 for s in ("fetch", "transform", "store"))
    assert status.stages["transform"].total_s >= 8 * 0.25
    assert (status.fetched, status.transformed, status.stored) == (8, 8, 8)


async def test_the_ending_waits_for_a_progress_write_still_on_the_wire(
    slow_redis: LatencyProxy, redis: Redis
) -> None:
    """Through a 50 ms latency proxy: a run's progress write is on its way when the run
    finishes; `settled` (which Engine.finish awaits) returns only once it has landed, so
    the ending written next (which sets counts outright) cannot be overtaken by it."""
    slow = Redis.from_url(slow_redis.url)
    keys = Keys("progress-race")
    await redis.hset(keys.job("race-1"), mapping={"state": "in_progress", "unit:0": "t1 1"})
    try:
        writer = ProgressWriter(slow, keys)
        run = JobRun("race-1", REGISTRY.pipelines["text-stats"], {}, "unit:0", "t1")
        writer.runs.add(run)
        run.counters.transformed = 1
        flushing = asyncio.create_task(writer.flush([run]))
        await asyncio.sleep(0.02)  # the write is sent, its reply not back
        assert not flushing.done()
        writer.runs.discard(run)  # as Engine.finish does, then it waits:
        await writer.settled(run)
        assert flushing.done()
        assert await redis.hget(keys.job("race-1"), "transformed") == b"1"
    finally:
        await slow.aclose()


async def test_progress_of_a_unit_whose_token_is_gone_is_refused(redis: Redis) -> None:
    """A progress write shows the unit's token: once another hand-out replaced it, nothing
    is added and the run stops (its lease is lost); the holder's counts are added."""
    keys = Keys("progress-fence")
    await redis.hset(keys.job("j"), mapping={"state": "in_progress", "unit:0": "new 2"})
    writer = ProgressWriter(redis, keys)
    stale = JobRun("j", REGISTRY.pipelines["text-stats"], {}, "unit:0", "old")
    holder = JobRun("j", REGISTRY.pipelines["text-stats"], {}, "unit:0", "new")
    stale.counters.fetched = holder.counters.fetched = 5
    await writer.flush([stale, holder])
    assert await redis.hget(keys.job("j"), "fetched") == b"5"
    assert stale.lost and stale.stopped() and not holder.lost
