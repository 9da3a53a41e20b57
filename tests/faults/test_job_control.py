"""Cancel, job-level retries with backoff, the failed set and `retry`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from producer import Client, ClientSettings, JobState, SluiceError
from producer.contract.events import EventType
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.workers import WorkerFactory


async def test_cancel_queued_job(client: Client, redis: Redis) -> None:
    """A queued job leaves the queue at once and reads as cancelled."""
    job_id = await client.enqueue("text-stats", ["data:,x"])
    assert await client.cancel(job_id) is True
    assert (await client.status(job_id)).state == JobState.CANCELLED
    assert await redis.zcard(client.keys.queue) == 0
    assert await client.cancel(job_id) is False


async def test_cancel_running_job_drops_pending_inputs(
    client: Client, workers: WorkerFactory
) -> None:
    """A running job stops; inputs not yet stored are dropped; the worker goes on."""
    workers(
        pipelines="tests.sample_pipelines", pool_size=1, fetch_concurrency=2, transform_queue_size=2
    )
    job_id = await client.enqueue(
        "test-sleep", [data_uri(f"{i}".encode()) for i in range(200)], options={"seconds": 0.05}
    )

    async def some_stored() -> bool:
        return (await client.status(job_id)).stored >= 3

    await poll(some_stored, 30)
    assert await client.cancel(job_id)
    await poll(lambda: _aborted(client, job_id), 30)
    settled = (await client.status(job_id)).stored
    assert (await client.status(job_id)).state == JobState.CANCELLED
    assert settled < 200
    after = await client.enqueue("text-stats", ["data:,next"])
    assert (await client.wait(after, timeout_s=60)).state == JobState.COMPLETE
    assert (await client.status(job_id)).stored == settled  # nothing more was processed


async def test_a_cancelled_job_is_kept_for_its_own_result_ttl(client: Client, redis: Redis) -> None:
    """A cancel is an ending: the job's own result_ttl_s (set at enqueue) says how long its
    keys are kept, not the cancelling client's SLUICE_RESULT_TTL_S (it kept a job enqueued
    with result_ttl_s=60 for the default 7 days, and one asking for 30 days only 7)."""
    for own in (60, 30 * 86400):
        job_id = await client.enqueue("text-stats", ["data:,x"], result_ttl_s=own)
        await redis.hset(client.keys.results(job_id), "0", "{}")  # as if it had stored one
        assert await client.cancel(job_id)
        for key in (client.keys.job(job_id), client.keys.spec(job_id), client.keys.results(job_id)):
            assert own - 5 <= await redis.ttl(key) <= own, key
        assert own - 5 <= await redis.ttl(client.keys.arq_result(job_id)) <= own


async def _aborted(client: Client, job_id: str) -> bool:
    """The worker has stopped the job (arq records the abort as its result)."""
    return bool(await client.redis.exists(client.keys.arq_result(job_id)))


async def test_job_error_retried_with_backoff_then_failed_set(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """An unexpected job error is retried with backoff; past max tries it joins the failed set."""
    job_id = await client.enqueue("text-stats", ["data:,a", "data:,b"])
    await redis.set(client.keys.results(job_id), "not a hash")  # every read of it now errors
    workers(max_tries=3, retry_backoff_s=0.1)
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.FAILED
    assert "failed after 3 tries" in (status.error or "")
    assert "WRONGTYPE" in (status.error or "")
    assert [s.job_id for s in await client.failed()] == [job_id]

    await redis.delete(client.keys.results(job_id))
    await client.retry(job_id)
    assert await client.failed() == []
    done = await client.wait(job_id, timeout_s=60)
    assert (done.state, done.stored) == (JobState.COMPLETE, 2)


async def test_timed_out_job_fails_then_retry_resumes(
    client: Client, workers: WorkerFactory
) -> None:
    """A job past its timeout is failed; `retry` on a patient worker finishes only the rest."""
    impatient = workers(
        pipelines="tests.sample_pipelines", pool_size=1, job_timeout_s=1.5, transform_batch_items=1
    )
    job_id = await client.enqueue(
        "test-sleep", [data_uri(f"{i}".encode()) for i in range(40)], options={"seconds": 0.1}
    )
    failed = await client.wait(job_id, timeout_s=60)
    assert failed.state == JobState.FAILED
    assert "timed out after 1.5 s" in (failed.error or "")
    assert 0 < failed.stored < 40
    impatient.stop()
    workers(pipelines="tests.sample_pipelines", pool_size=2)
    await client.retry(job_id)
    done = await client.wait(job_id, timeout_s=60)
    assert (done.state, done.stored, done.failed) == (JobState.COMPLETE, 40, 0)


async def test_retry_of_failed_inputs_keeps_the_good_records(
    client: Client, redis: Redis, workers: WorkerFactory, tmp_path: Path
) -> None:
    """`retry --failed-inputs` runs a complete job again for the inputs whose record is an
    error: the good records stay (their inputs are not fetched again), the failed ones are
    redone — here they succeed, their files having appeared since."""
    good = tmp_path / "good.txt"
    good.write_text("here already")
    late = [tmp_path / f"late-{i}.txt" for i in range(2)]
    inputs = [good.as_uri(), *(path.as_uri() for path in late)]
    workers(file_roots=str(tmp_path))
    job_id = await client.enqueue("text-stats", inputs)
    first = await client.wait(job_id, timeout_s=60)
    assert (first.state, first.stored, first.failed) == (JobState.COMPLETE, 3, 2)
    kept = await redis.hget(client.keys.results(job_id), "0")
    for path in late:
        path.write_text("arrived late")
    good.write_text("changed: a refetch would show")
    assert await client.retry(job_id, failed_inputs=True) == 2
    again = await client.wait(job_id, timeout_s=60)
    assert (again.state, again.stored, again.failed) == (JobState.COMPLETE, 3, 0)
    assert await redis.hget(client.keys.results(job_id), "0") == kept
    with pytest.raises(SluiceError, match="no failed inputs"):
        await client.retry(job_id, failed_inputs=True)


async def test_retry_of_failed_inputs_is_refused_for_a_job_not_complete(client: Client) -> None:
    """Only a complete job has failed inputs to run again; a queued one says so."""
    job_id = await client.enqueue("text-stats", ["data:,x"])
    with pytest.raises(SluiceError, match="only a complete job"):
        await client.retry(job_id, failed_inputs=True)


async def test_a_cancelled_job_retries_from_its_stored_records(
    client: Client, workers: WorkerFactory
) -> None:
    """Cancel keeps the job (its envelope, as the spec), so `retry` of a cancelled job runs
    it again, doing only the inputs that have no record (issue #19: it failed with
    "payload was malformed")."""
    slow = {"fetch_concurrency": 2, "transform_queue_size": 2, "transform_batch_items": 1}
    workers(pipelines="tests.sample_pipelines", pool_size=1, **slow)
    job_id = await client.enqueue(
        "test-sleep", [data_uri(f"{i}".encode()) for i in range(30)], options={"seconds": 0.05}
    )

    async def some_stored() -> bool:
        return (await client.status(job_id)).stored >= 3

    await poll(some_stored, 30)
    assert await client.cancel(job_id)
    cancelled = await client.status(job_id)
    assert cancelled.state == JobState.CANCELLED and cancelled.stored < 30
    await client.retry(job_id)
    done = await client.wait(job_id, timeout_s=60)
    assert (done.state, done.stored, done.failed) == (JobState.COMPLETE, 30, 0)
    assert done.error is None


async def test_a_retried_job_keeps_its_records_through_a_run_longer_than_its_result_ttl(
    client: Client, redis: Redis, workers: WorkerFactory, settings: ClientSettings
) -> None:
    """The cancel gave the job's keys its own short result TTL (2 s); retried (by a client
    whose queued jobs expire as soon), its run lasts longer than that: the records stored
    before the cancel must outlive the run (they expired mid-run, and the job ran a third
    time for them, or failed past its runs)."""
    slow = {"fetch_concurrency": 2, "transform_queue_size": 2, "transform_batch_items": 1}
    workers(pipelines="tests.sample_pipelines", pool_size=1, **slow)
    inputs = [data_uri(f"{i}".encode()) for i in range(50)]
    job_id = await client.enqueue("test-sleep", inputs, options={"seconds": 0.1}, result_ttl_s=2)

    async def some_stored() -> bool:
        return (await client.status(job_id)).stored >= 10

    await poll(some_stored, 30)
    assert await client.cancel(job_id)
    async with Client(settings.model_copy(update={"job_expires_s": 2})) as hasty:
        await hasty.retry(job_id)
    done = await client.wait(job_id, timeout_s=60)
    assert (done.state, done.stored, done.failed) == (JobState.COMPLETE, 50, 0)
    assert await redis.hget(client.keys.job(job_id), "run") == b"2"  # no run for lost records
    events = [e.type async for e in client.events(job_id=job_id, since="0", follow=False)]
    assert EventType.RETRYING not in events
    assert [record.index async for record in client.results(job_id)] == list(range(50))
    assert 0 < await redis.ttl(client.keys.results(job_id)) <= 2  # its TTL again, once ended


async def test_a_retried_job_keeps_its_records_while_it_waits_in_the_queue(
    client: Client, redis: Redis
) -> None:
    """Retried, the job may wait in the queue past what is left of its own short result TTL
    (no worker free): the records it relies on live as long as its status hash."""
    job_id = await client.enqueue("text-stats", ["data:,x", "data:,y"], result_ttl_s=1)
    await redis.hset(client.keys.results(job_id), "0", '{"ok": true}')  # a run's record
    assert await client.cancel(job_id)
    await client.retry(job_id)
    await asyncio.sleep(1.5)
    assert await redis.hget(client.keys.results(job_id), "0") == b'{"ok": true}'
    assert await redis.ttl(client.keys.results(job_id)) > 60


async def test_a_retry_of_failed_inputs_keeps_the_good_blobs_while_it_waits(
    client: Client, redis: Redis, workers: WorkerFactory, tmp_path: Path
) -> None:
    """`retry --failed-inputs` of a job with a short result_ttl_s, left waiting in the queue
    (no worker): the good inputs' blobs, like their records, outlive the wait (the results
    hash was given the status hash's life, the blobs hash kept its 1 s)."""
    worker = workers(file_roots=str(tmp_path))
    missing = (tmp_path / "late.txt").as_uri()
    job_id = await client.enqueue("text-stats", ["data:,ok", missing], result_ttl_s=1)
    assert (await client.wait(job_id, timeout_s=60)).failed == 1
    worker.stop()
    await redis.hset(client.keys.blobs(job_id), "0", b"a good input's blob")
    await redis.expire(client.keys.blobs(job_id), 1)  # as the ending sets it
    assert await client.retry(job_id, failed_inputs=True) == 1
    await asyncio.sleep(1.5)
    assert await redis.hget(client.keys.blobs(job_id), "0") == b"a good input's blob"
    assert await redis.hget(client.keys.results(job_id), "0") is not None
