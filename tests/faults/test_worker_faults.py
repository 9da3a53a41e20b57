"""Faults that must never stop the fleet: an id no reader can decode, a stage that dies."""

from __future__ import annotations

import orjson

from producer import Client, JobState
from producer.contract.wire import now_ms
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.workers import WorkerFactory


async def test_a_job_id_that_is_not_utf8_fails_alone(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """A raw job whose id is not UTF-8 (with a valid envelope) goes to the failed set with
    the reason; the good jobs queued beside it run, their tries counted once; the worker
    lives on, and so does one started after it."""
    keys = client.keys
    good = await client.enqueue_many("text-stats", [[data_uri(b"ok")]] * 5)
    envelope = orjson.dumps(
        {
            "t": 1,
            "f": "sluice",
            "a": [],
            "k": {"pipeline": "text-stats", "inputs": ["data:,x"]},
            "et": now_ms(),
        }
    )
    bad = b"job\xff\xfe"
    await redis.set(b"arq:job:" + bad, envelope)
    await redis.zadd(keys.queue, {bad: now_ms() - 1000})
    first = workers()
    for job_id in good:
        status = await client.wait(job_id, timeout_s=60)
        assert (status.state, status.attempts) == (JobState.COMPLETE, 1)
    assert await redis.zscore(keys.failed, bad) is not None
    assert b"invalid job id" in (await redis.hget(keys.refused, bad) or b"")
    assert first.process is not None and first.process.poll() is None
    second = workers()
    later = await client.enqueue("text-stats", [data_uri(b"later")])
    assert (await client.wait(later, timeout_s=60)).state == JobState.COMPLETE
    assert "job cannot start" in first.log() + second.log()


async def test_a_worker_whose_stage_dies_hands_its_units_back_and_exits_1(
    client: Client, workers: WorkerFactory
) -> None:
    """A bug kills the store stage (planted by tests/sabotage.py): the worker stops
    claiming, hands its units back (the try not counted) and exits with status 1; another
    worker finishes the jobs."""
    # units of 4 inputs, one held at a time: the doomed job (priority 9) is claimed when the
    # dying worker's first unit of the slow job ends, while the slow job still has units to do
    # (holding all ten, the slow job's last record, stored with its ending, could complete it
    # before the doomed record, fed after all of them, reached the store stage)
    slow = await client.enqueue(
        "test-sleep", [data_uri(f"{i}".encode()) for i in range(40)], options={"seconds": 0.1}
    )
    dying = workers(
        pipelines="tests.sample_pipelines,tests.sabotage",
        pool_size=1,
        unit_inputs=4,
        max_jobs=1,
    )

    async def under_way() -> bool:
        return (await client.status(slow)).stored >= 2

    await poll(under_way, 60)
    doomed = await client.enqueue("text-stats", ["data:,die", data_uri(b"fine")], priority=9)
    assert dying.wait(60) == 1
    assert "a stage stopped" in dying.log()
    assert (await client.status(slow)).state == JobState.QUEUED
    assert await client.cancel(doomed)  # it would kill the next worker too
    workers(pipelines="tests.sample_pipelines", pool_size=1)
    done = await client.wait(slow, timeout_s=60)
    assert (done.state, done.stored, done.attempts) == (JobState.COMPLETE, 40, 1)


async def test_a_raw_job_meets_the_enqueue_limits_in_the_worker(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """A job written raw never met the enqueue checks: the worker applies them. An input
    over SLUICE_MAX_INPUT_CHARS, one with no scheme and one that is not UTF-8 (in a chunked
    job's inputs list) each fail alone, naming why; the good inputs are stored; a job with
    more inputs than SLUICE_MAX_INPUTS_PER_JOB fails as a whole."""
    keys = client.keys
    long_input = "data:," + "x" * 300
    await redis.rpush(
        keys.inputs("raw-limits"), long_input, "no-scheme", b"data:,\xff\xfe", "data:,ok"
    )
    envelope = orjson.dumps(
        {
            "t": 1,
            "f": "sluice",
            "a": [],
            "k": {"pipeline": "text-stats", "inputs": None},
            "et": now_ms(),
        }
    )
    await redis.set(keys.arq_job("raw-limits"), envelope)
    many = orjson.dumps(
        {
            "t": 1,
            "f": "sluice",
            "a": [],
            "k": {"pipeline": "text-stats", "inputs": ["data:,a"] * 6},
            "et": now_ms(),
        }
    )
    await redis.set(keys.arq_job("raw-many"), many)
    await redis.zadd(keys.queue, {"raw-limits": now_ms(), "raw-many": now_ms()})
    workers(max_input_chars=100, max_inputs_per_job=5)
    status = await client.wait("raw-limits", timeout_s=60)
    assert (status.state, status.total, status.stored, status.failed) == (
        JobState.COMPLETE,
        4,
        4,
        3,
    )
    errors = {r.index: r.error async for r in client.results("raw-limits") if not r.ok}
    assert "over the limit of 100 (SLUICE_MAX_INPUT_CHARS)" in (errors[0] or "")
    assert "no URI scheme" in (errors[1] or "")
    assert errors[2] == "input is not valid UTF-8"
    too_many = await client.wait("raw-many", timeout_s=60)
    assert too_many.state == JobState.FAILED
    assert "SLUICE_MAX_INPUTS_PER_JOB" in (too_many.error or "")


async def test_a_raw_job_of_no_inputs_or_too_long_a_list_fails_naming_why(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """A raw job whose envelope has no inline inputs ("inputs" null or missing) is read from
    its inputs list: an empty (or absent) list fails the job as an empty inline list does,
    and a list past SLUICE_MAX_INPUTS_PER_JOB fails it as a long inline list does. Both
    completed instead: "complete" with 0 inputs for a job that forgot its inputs, and every
    input of a list the limit should have refused. A good job beside them runs."""
    keys = client.keys
    jobs = {
        "raw-missing": {"pipeline": "text-stats"},
        "raw-null": {"pipeline": "text-stats", "inputs": None},
        "raw-listed": {"pipeline": "text-stats", "inputs": None},
        "raw-good": {"pipeline": "text-stats", "inputs": ["data:,ok"]},
    }
    await redis.rpush(keys.inputs("raw-listed"), *["data:,a"] * 6)
    for job_id, kwargs in jobs.items():
        envelope = {"t": 1, "f": "sluice", "a": [], "k": kwargs, "et": now_ms()}
        await redis.set(keys.arq_job(job_id), orjson.dumps(envelope))
        await redis.zadd(keys.queue, {job_id: now_ms()})
    worker = workers(max_inputs_per_job=5)
    for job_id in ("raw-missing", "raw-null"):
        status = await client.wait(job_id, timeout_s=60)
        assert status.state == JobState.FAILED, job_id
        assert "no inputs" in (status.error or ""), status.error
    listed = await client.wait("raw-listed", timeout_s=60)
    assert listed.state == JobState.FAILED
    assert "too many inputs: 6, over 5 (SLUICE_MAX_INPUTS_PER_JOB)" in (listed.error or "")
    assert await redis.hlen(keys.results("raw-listed")) == 0
    assert (await client.wait("raw-good", timeout_s=60)).state == JobState.COMPLETE
    assert worker.process is not None and worker.process.poll() is None


async def test_a_total_in_the_status_hash_that_is_no_count_cannot_hang_redis(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """A raw job whose status hash (written by another tool, as docs/wire-format.md lists
    its fields) holds a total that is not a count of inputs, "inf" or "1e12", is counted
    again from its inputs and runs. The claim split it by that total: "inf" units, a loop
    without end inside a script Redis cannot stop (every client answered BUSY for good)."""
    keys = client.keys
    await redis.rpush(keys.inputs("raw-huge"), "data:,a", "data:,b", "data:,c")
    jobs = {
        "raw-inf": ("inf", ["data:,a", "data:,b"]),
        "raw-huge": ("1e12", None),
        "raw-negative": ("-3", ["data:,a"]),
        "raw-fraction": ("0.5", ["data:,a"]),
    }
    for job_id, (total, inputs) in jobs.items():
        kwargs = {"pipeline": "text-stats", "inputs": inputs}
        envelope = {"t": 1, "f": "sluice", "a": [], "k": kwargs, "et": now_ms()}
        await redis.hset(keys.job(job_id), mapping={"total": total, "state": "queued"})
        await redis.set(keys.arq_job(job_id), orjson.dumps(envelope))
        await redis.zadd(keys.queue, {job_id: now_ms()})
    workers(unit_inputs=1)
    for job_id, (_, inputs) in jobs.items():
        status = await client.wait(job_id, timeout_s=30)
        count = 3 if inputs is None else len(inputs)
        assert (status.state, status.total, status.stored) == (
            JobState.COMPLETE,
            count,
            count,
        ), job_id
    assert await redis.ping()
