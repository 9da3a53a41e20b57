"""A job whose own keys Redis cannot use (a key of the wrong type) fails alone: the jobs
claimed or ended in the same batch go on, and so does the worker."""

from __future__ import annotations

import asyncio

import pytest

from producer import Client, ClientSettings, JobState
from producer.client import client as client_module
from producer.client.client import SCAN_MOST
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.workers import WorkerFactory


async def test_a_job_with_a_broken_status_key_fails_alone_at_claim(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """Its status key holds a string: it lands in the failed set; the others run."""
    jobs = [await client.enqueue("text-stats", [data_uri(f"{i}".encode())]) for i in range(5)]
    await redis.delete(client.keys.job(jobs[2]))
    await redis.set(client.keys.job(jobs[2]), b"not a hash")
    worker = workers()
    for job_id in jobs[:2] + jobs[3:]:
        assert (await client.wait(job_id, timeout_s=30)).state == JobState.COMPLETE

    async def failed() -> bool:
        return await redis.zscore(client.keys.failed, jobs[2]) is not None

    await poll(failed, 10)
    assert await redis.zscore(client.keys.queue, jobs[2]) is None
    assert "job cannot start" in worker.log() and jobs[2] in worker.log()


async def test_a_job_whose_status_breaks_mid_run_does_not_block_other_endings(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """Its status key is clobbered while it runs: its ending is refused and logged, while
    a job ending at the same time, and later jobs, are written."""
    slow = await client.enqueue("test-sleep", [data_uri(b"a")], options={"seconds": 1})
    other = await client.enqueue("test-sleep", [data_uri(b"b")], options={"seconds": 1})
    # its record is already there (as after an earlier attempt), so storing it again adds
    # nothing and leaves the status alone: the ending is the first write to meet the string
    await redis.hset(client.keys.results(slow), "0", b'{"index":0,"ok":true,"result":{}}')
    worker = workers(pipelines="tests.sample_pipelines", pool_size=2)

    async def running() -> bool:
        return (await client.status(slow)).state == JobState.IN_PROGRESS

    await poll(running, 10)
    await redis.delete(client.keys.job(slow))
    await redis.set(client.keys.job(slow), b"clobbered")
    assert (await client.wait(other, timeout_s=30)).state == JobState.COMPLETE
    later = await client.enqueue("text-stats", [data_uri(b"later")])
    assert (await client.wait(later, timeout_s=30)).state == JobState.COMPLETE

    async def logged() -> bool:  # its next write (its ending, with its record) is refused
        said = ("cannot store a job's records", "lease lost", "cannot write a unit's ending")
        return any(line in worker.log() for line in said)

    await poll(logged, 10)
    assert await redis.sismember(client.keys.running, other) == 0


async def test_a_job_with_a_broken_results_key_fails_alone_in_a_shared_store_batch(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """One-input jobs queued together are stored in one batch: the one whose results key
    holds a string fails (WRONGTYPE, after its tries), and the rest of its batch is stored."""
    jobs = await client.enqueue_many("text-stats", [[data_uri(f"{i}".encode())] for i in range(20)])
    await redis.set(client.keys.results(jobs[7]), b"not a hash")
    workers(max_tries=2, retry_backoff_s=0.1)
    broken = await client.wait(jobs[7], timeout_s=60)
    assert broken.state == JobState.FAILED
    assert "WRONGTYPE" in (broken.error or "")
    for job_id in jobs[:7] + jobs[8:]:
        status = await client.wait(job_id, timeout_s=30)
        assert (status.state, status.stored) == (JobState.COMPLETE, 1)


@pytest.mark.parametrize("scan_most", [SCAN_MOST, 0], ids=["read", "paged"])
async def test_results_stop_at_the_last_record_whatever_total_the_status_holds(
    settings: ClientSettings, redis: Redis, scan_most: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status written by another tool with total 1e12 and three records: the reader returns
    the three at once, instead of paging two billion HMGETs past them; whether it reads the
    records there are or (past SCAN_MOST of them) pages until it has found them all, or up to
    the most inputs a job may have."""
    monkeypatch.setattr(client_module, "SCAN_MOST", scan_most)
    # 50 pages of places at most (1,000 with the default): quick on a loaded machine
    async with Client(settings.model_copy(update={"max_inputs_per_job": 50_000})) as client:
        job_id = "bogus-total"
        await redis.hset(client.keys.job(job_id), mapping={"state": "complete", "total": "1e12"})
        record = '{"index": %d, "input": "data:,x", "ok": true, "result": {"n": %d}}'
        records: dict[str, str] = {str(i): record % (i, i) for i in (0, 1, 7)}
        await redis.hset(client.keys.results(job_id), mapping=records)
        if scan_most:  # fields that are no index are not records (paging never asks for them)
            await redis.hset(client.keys.results(job_id), mapping={"x": "y", "-1": "z"})
            await redis.hset(client.keys.results(job_id), mapping={"1" * 30: "z"})

        async def read(start: int) -> list[int]:
            return [r.index async for r in client.results(job_id, start=start)]

        assert await asyncio.wait_for(read(0), timeout=10) == [0, 1, 7]
        # with records below start, the paging stops at SLUICE_MAX_INPUTS_PER_JOB
        assert await asyncio.wait_for(read(1), timeout=10) == [1, 7]
        await redis.delete(client.keys.results(job_id))
        assert await asyncio.wait_for(read(0), timeout=10) == []
