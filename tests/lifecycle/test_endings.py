"""Unit endings against a real server: complete only with every record, fenced by token,
and a terminal state never overwritten."""

from __future__ import annotations

import asyncio
import time

import pytest

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.lifecycle.support import claimer, end, member_scores, store, units_of
from worker.lifecycle.endings import BATCH, Endings, Entry, flat


async def test_the_last_unit_completes_the_job_when_every_input_has_a_record(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """Two units ended done, every record there: complete, stage counts = total, TTLs set,
    nothing left in the queue, the leases or the running set; no arq result for a job a
    Client enqueued (one written raw gets it: tests/test_wire.py)."""
    keys = client.keys
    job = await client.enqueue("text-stats", [f"data:,{i}" for i in range(150)])
    worker = claimer(redis, keys)
    [first] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    [second] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    await store(redis, keys, first, *range(100))
    assert await end(endings, first, "done") == "ok"
    assert (await client.status(job)).state == JobState.IN_PROGRESS
    await store(redis, keys, second, *range(100, 150))
    assert await end(endings, second, "done") == "complete"
    status = await client.status(job)
    assert (status.state, status.total, status.fetched, status.transformed) == (
        JobState.COMPLETE,
        150,
        150,
        150,
    )
    assert await redis.exists(keys.arq_result(job)) == 0
    assert 0 < await redis.ttl(keys.job(job)) <= 600
    assert 0 < await redis.ttl(keys.results(job)) <= 600
    assert await redis.zcard(keys.queue) == await redis.zcard(keys.leases) == 0
    assert await redis.scard(keys.running) == 0
    assert await units_of(redis, keys, job) == {}


async def test_missing_records_run_the_job_again_then_fail_naming_them(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """Records lost from Redis: the last unit's ending does not complete the job but runs
    it again (run 2) for the missing inputs; with the runs spent (2 here) it fails saying
    how many have no record."""
    keys = client.keys
    job = await client.enqueue("text-stats", ["data:,a", "data:,b", "data:,c"])
    [unit] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    await store(redis, keys, unit, 0, 2)
    assert await end(endings, unit, "done") == "resumed"
    status = await client.status(job)
    assert (status.state, status.stored) == (JobState.QUEUED, 2)
    assert "1 of 3 inputs had no record" in (status.error or "")
    [again] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert (again.job_id, again.run, again.look_up_stored) == (job, 2, True)
    assert await end(endings, again, "done") == "failed"
    failed = await client.status(job)
    assert failed.state == JobState.FAILED
    assert "1 of 3 inputs have no record after 2 runs" in (failed.error or "")
    assert await redis.zscore(keys.failed, job) is not None


@pytest.mark.parametrize("mode", ["done", "release", "fail"])
async def test_a_stale_token_writes_nothing(
    client: Client, redis: Redis, endings: Endings, mode: str
) -> None:
    """After a takeover, the first holder's ending — whatever it says — is refused: the
    unit stays with its new holder and the job runs on."""
    keys = client.keys
    job = await client.enqueue("text-stats", ["data:,a"])
    short = claimer(redis, keys, "w-a", lease_s=0.05)
    [stale] = (await short.claim(room=1, most=1, aborts_since_ms=0)).units
    await asyncio.sleep(0.1)
    [fresh] = (await claimer(redis, keys, "w-b").claim(room=1, most=1, aborts_since_ms=0)).units
    before = await redis.hgetall(keys.job(job))
    assert await end(endings, stale, mode) == "lost"
    assert await redis.hgetall(keys.job(job)) == before
    assert list(await member_scores(redis, keys.leases)) == [f"{job}#0"]
    await store(redis, keys, fresh, 0)
    assert await end(endings, fresh, "done") == "complete"


async def test_a_terminal_state_is_never_overwritten(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A job cancelled while its unit runs stays cancelled: the unit's done, release and
    fail are all refused, and its records stay as they were."""
    keys = client.keys
    job = await client.enqueue("text-stats", ["data:,a"])
    [unit] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert await client.cancel(job)
    await store(redis, keys, unit, 0)
    for mode in ("done", "release", "fail"):
        assert await end(endings, unit, mode) == "lost"
    status = await client.status(job)
    assert (status.state, status.error) == (JobState.CANCELLED, "cancelled")


async def test_a_released_unit_waits_its_delay_then_any_worker_takes_it(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A retry's release puts the unit back, due after its delay, its token gone and its
    try kept; a hand-back that undoes the try leaves the count as before."""
    keys = client.keys
    job = await client.enqueue("text-stats", ["data:,a"])
    [unit] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert await end(endings, unit, "release", delay_ms=300) == "released"
    assert await units_of(redis, keys, job) == {"unit:0": "- 1"}
    assert (await client.status(job)).state == JobState.QUEUED  # no worker holds a unit
    assert (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units == []
    await asyncio.sleep(0.35)
    [again] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert (again.index, again.tries) == (0, 2)
    assert await end(endings, again, "release", undo=1) == "released"
    assert await units_of(redis, keys, job) == {"unit:0": "- 1"}


async def test_a_failing_unit_fails_the_job_and_withdraws_its_other_units(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """One unit's failure fails the whole job: its other units leave the queue and the
    lease set (their holder's next write is refused), the envelope is kept for `retry`,
    which runs the job again from its records."""
    keys = client.keys
    job = await client.enqueue("text-stats", [f"data:,{i}" for i in range(300)])
    worker = claimer(redis, keys)
    [first] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    [second] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    assert await end(endings, first, "fail") == "failed"
    failed = await client.status(job)
    assert (failed.state, failed.error) == (JobState.FAILED, "it broke")
    assert await redis.zcard(keys.queue) == await redis.zcard(keys.leases) == 0
    assert await end(endings, second, "done") == "lost"
    assert await redis.exists(keys.spec(job)) == 1
    await client.retry(job)
    assert (await client.status(job)).state == JobState.QUEUED
    [again] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    assert (again.job_id, again.index, again.run, again.units) == (job, 0, 2, 3)


async def test_counters_add_up_across_units_and_are_set_for_a_lone_unit(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """Stage counters of a done unit add to what the hash holds; a job's only unit whose
    hash holds none has them set outright (no read-modify-write)."""
    keys = client.keys
    job = await client.enqueue("text-stats", ["data:,a"])
    [unit] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    await redis.hset(keys.job(job), mapping={"fetch_count": 5, "fetch_s": 1.5})
    await store(redis, keys, unit, 0)
    entry = Entry("done", job, 0, unit.token, counters=("fetch_count", "3", "fetch_s", "0.25"))
    assert await endings.send(job, entry) == "complete"
    status = await client.status(job)
    assert status.stages["fetch"].count == 8
    assert status.stages["fetch"].total_s == pytest.approx(1.75)


async def test_a_complete_job_counts_every_input_fetched_once_whatever_its_counters_said(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """The last unit's counters name ``fetched`` and ``transformed`` below the total (inputs
    another holder had counted): the complete job reads the total for both, and its ending
    writes each once (the server's count of the hash's writes: one HSET of the ending)."""
    keys = client.keys
    job = await client.enqueue("text-stats", ["data:,a", "data:,b"])
    [unit] = (await claimer(redis, keys).claim(room=2, most=1, aborts_since_ms=0)).units
    await store(redis, keys, unit, 0, 1)
    counters = ("fetched", "1", "transformed", "1", "fetch_count", "1")
    entry = Entry("done", job, 0, unit.token, plain=1, counters=counters)
    assert await endings.send(job, entry) == "complete"
    status = await client.status(job)
    assert (status.fetched, status.transformed, status.stages["fetch"].count) == (2, 2, 1)


def test_seconds_go_to_the_script_to_the_microsecond() -> None:
    """Stage seconds are sent rounded to the microsecond (shorter for Redis to parse, keep
    and log); counts and text as they are."""
    values: dict[str, str | int | float] = {
        "fetch_s": 2.0411003788467497e-05,
        "fetch_count": 3,
        "error": "x",
        "store_s": 0.5,
    }
    assert flat(values, []) == [
        "fetch_s",
        "2e-05",
        "fetch_count",
        "3",
        "error",
        "x",
        "store_s",
        "0.5",
    ]


async def test_many_endings_at_once_are_all_written_in_batches(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """More endings than one call carries (BATCH) end together: every one is written, in
    several script calls (counted by the server) rather than one."""
    keys = client.keys
    jobs = await client.enqueue_many("text-stats", [["data:,x"]] * (3 * BATCH + 5))
    worker = claimer(redis, keys)
    units = (await worker.claim(room=len(jobs), most=len(jobs), aborts_since_ms=0)).units
    assert len(units) == len(jobs)
    for unit in units:
        await store(redis, keys, unit, 0)
    await end(endings, units[0], "done")  # loads the script: later calls are EVALSHA
    before = await _evalsha_calls(redis)
    codes = await asyncio.gather(*(end(endings, unit, "done") for unit in units[1:]))
    assert set(codes) == {"complete"}
    assert await _evalsha_calls(redis) - before >= -(-(len(jobs) - 1) // BATCH)
    assert [(await client.status(j)).state for j in jobs] == [JobState.COMPLETE] * len(jobs)


async def _evalsha_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def _now_ms() -> int:
    return int(time.time() * 1000)
