"""No worker may undo or double what another did: a worker paused past its lease (SIGSTOP,
as a GC pause, a frozen VM or a partition would) and resumed, with and without a cancel in
between; a unit handed again to the worker whose stale attempt at it still winds down; a
worker's copy of a job deleted and enqueued again under its id; and Redis restarted without
persistence, which must never read as complete."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from redis.exceptions import RedisError

from producer import Client, ClientSettings, JobState
from tests.faults.conftest import poll
from tests.fleet.test_spread import documents
from tests.support.http_server import HttpServer
from tests.support.servers import Server, valkey_binary
from tests.support.workers import WorkerFactory, WorkerProcess

# one unit for the whole job, so the second worker can only get it by taking it over
STALE = {"unit_inputs": 1000, "fetch_concurrency": 4, "pool_size": 1, "lease_s": 1}


async def paused_and_taken_over(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> tuple[str, WorkerProcess, WorkerProcess]:
    """Worker A runs a 300-input job; it is frozen past its lease and B takes the job over."""
    a, b = workers(**STALE, worker_name="a"), None
    job = await client.enqueue("text-stats", documents(http, 300, latency_s=0.05))

    async def under_way() -> bool:
        return (await client.status(job)).stored >= 20

    await poll(under_way, 60)
    a.signal(signal.SIGSTOP)
    b = workers(**STALE, worker_name="b")

    async def taken_over() -> bool:
        return (await client.status(job)).worker == "b"

    await poll(taken_over, 30)
    return job, a, b


async def test_a_worker_paused_past_its_lease_does_not_undo_or_double_the_takeover(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """Resumed, the paused worker finds its lease lost and stops the unit at once: the job
    completes once, by the other worker, one record per input, fetched about once each."""
    job, a, _b = await paused_and_taken_over(client, workers, http)
    a.signal(signal.SIGCONT)
    status = await client.wait(job, timeout_s=120)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 300, 0)
    assert (status.worker, status.attempts) == ("b", 2)
    assert (status.fetched, status.transformed) == (300, 300)
    assert await client.redis.hlen(client.keys.results(job)) == 300

    async def noticed() -> bool:
        return "lease lost" in a.log()

    await poll(noticed, 30)
    # what A had in flight when frozen may be fetched twice; nothing it fed afterwards
    assert sum(http.hits.values()) <= 300 + 4 * STALE["fetch_concurrency"]
    assert a.process is not None and a.process.poll() is None  # A lives on, and takes work
    later = await client.enqueue("text-stats", [http.url("d0")])
    assert (await client.wait(later, timeout_s=60)).state == JobState.COMPLETE


async def test_a_job_cancelled_during_the_pause_stays_cancelled(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """Cancelled after the takeover, while A is frozen: when A resumes, its ending cannot
    call the job complete, and no record is added after the cancel."""
    job, a, _b = await paused_and_taken_over(client, workers, http)
    assert await client.cancel(job)
    stored = (await client.status(job)).stored
    a.signal(signal.SIGCONT)

    async def noticed() -> bool:
        return "lease lost" in a.log() or "job cancelled" in a.log()

    await poll(noticed, 30)
    await asyncio.sleep(1.0)  # A's late writes, if any were let through, would land now
    status = await client.status(job)
    assert (status.state, status.error, status.stored) == (JobState.CANCELLED, "cancelled", stored)
    assert await client.redis.hlen(client.keys.results(job)) == stored


async def test_a_unit_handed_again_to_its_worker_is_not_undone_by_the_stale_attempt(
    client: Client, workers: WorkerFactory
) -> None:
    """Cancelled and retried between two claims of the worker running it, a job's unit comes
    back to that worker with the cancel: the cancelled attempt, winding down, must not drop
    the new attempt's lease (it lapsed, the unit was taken over and a try counted, so with
    max_tries 1 the job failed "gave up after 1 tries")."""
    worker = workers(pipelines="tests.sample_pipelines", pool_size=1, lease_s=1, poll_delay_s=1)
    job = await client.enqueue("test-sleep", ["data:,x"], options={"seconds": 2.5}, max_tries=1)

    async def running() -> bool:
        return (await client.status(job)).state == JobState.IN_PROGRESS

    await poll(running, 30)
    assert await client.cancel(job)
    await client.retry(job)  # both before the worker's next claim (one a second when busy)
    status = await client.wait(job, timeout_s=60)
    assert (status.state, status.stored, status.attempts) == (JobState.COMPLETE, 1, 1), status
    assert "job cancelled: stopping its unit" in worker.log()


async def test_a_job_id_used_again_runs_the_new_jobs_inputs_on_every_worker(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """Both workers ran units of a job (and kept its envelope for its later units); it is
    deleted and another job enqueued under its id: every record is of the new job's inputs,
    none from a worker's copy of the old one (same id, same run: it was used as is)."""
    fleet = workers.many(2, unit_inputs=10, fetch_concurrency=4, pool_size=1)
    urls = documents(http, 160)
    first = await client.enqueue("text-stats", urls[:80], job_id="used-twice")
    assert (await client.wait(first, timeout_s=60)).state == JobState.COMPLETE
    assert all(worker.units_started() >= 1 for worker in fleet)
    await client.delete(first)
    again = await client.enqueue("text-stats", urls[80:], job_id="used-twice")
    status = await client.wait(again, timeout_s=60)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 80, 0)
    assert [record.input async for record in client.results(again)] == urls[80:]


async def test_redis_restarted_without_persistence_is_never_called_complete(
    settings: ClientSettings, workers: WorkerFactory, tmp_path: Path
) -> None:
    """Redis loses everything mid-job: the worker warned at start-up what would be lost;
    the job reads not_found (never complete with records missing), no write of the
    worker recreates its keys, and the worker goes on with new work."""
    volatile = Server(valkey_binary(), tmp_path / "volatile", extra_args=["--appendonly", "no"])
    volatile.start()
    try:
        own = settings.model_copy(update={"redis_url": volatile.url})
        worker = workers(
            redis_url=volatile.url,
            pipelines="tests.sample_pipelines",
            pool_size=1,
            fetch_concurrency=2,
            transform_queue_size=2,
            max_jobs=1,
            unit_inputs=1000,
        )

        async def warned() -> bool:
            return "persists nothing" in worker.log()

        await poll(warned, 10)
        async with Client(own) as client:
            job = await client.enqueue(
                "test-sleep", [f"data:,{i}" for i in range(400)], options={"seconds": 0.02}
            )
            queued = [await client.enqueue("text-stats", ["data:,q"]) for _ in range(3)]

            async def under_way() -> bool:
                return (await client.status(job)).stored >= 20

            await poll(under_way, 60)
            volatile.kill()
            volatile.start()

            async def stopped() -> bool:
                return "lease lost" in worker.log()

            await poll(stopped, 30)
            with contextlib.suppress(RedisError):  # a pooled connection died with the server
                await client.redis.ping()
            assert (await client.status(job)).state == JobState.NOT_FOUND
            for job_id in queued:
                assert (await client.status(job_id)).state == JobState.NOT_FOUND
            assert await client.redis.exists(client.keys.job(job), client.keys.results(job)) == 0
            after = await client.enqueue("text-stats", ["data:,after"])
            assert (await client.wait(after, timeout_s=60)).state == JobState.COMPLETE
    finally:
        volatile.stop()
