"""SIGTERM drains: in-flight inputs finish, the job goes back to the queue, exit 0."""

from __future__ import annotations

import asyncio
import signal
import time

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.workers import WorkerFactory

SMALL = {
    "pipelines": "tests.sample_pipelines",
    "pool_size": 1,
    "fetch_concurrency": 2,
    "transform_queue_size": 2,
    "store_queue_size": 2,
}


async def test_sigterm_drains_and_hands_back(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """In-flight inputs are stored, the rest wait in Redis, the try is not counted, exit 0."""
    worker = workers(**SMALL, shutdown_grace_s=20)
    job_id = await client.enqueue(
        "test-sleep", [data_uri(f"{i}".encode()) for i in range(100)], options={"seconds": 0.05}
    )

    async def started() -> bool:
        return (await client.status(job_id)).stored >= 5

    await poll(started, 30)
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    after = await client.status(job_id)
    assert after.state == JobState.QUEUED
    assert 5 <= after.stored < 100
    workers(**SMALL)
    done = await client.wait(job_id, timeout_s=60)
    assert (done.state, done.stored, done.failed) == (JobState.COMPLETE, 100, 0)
    assert done.attempts == 1  # the drained attempt did not count


async def test_second_sigterm_stops_at_once(client: Client, workers: WorkerFactory) -> None:
    """A second signal stops the worker without waiting out the grace period; nothing is lost."""
    worker = workers(**SMALL, shutdown_grace_s=120)
    job_id = await client.enqueue("test-sleep", [data_uri(b"x")] * 4, options={"seconds": 20})

    async def running() -> bool:
        return (await client.status(job_id)).state == JobState.IN_PROGRESS

    await poll(running, 30)
    worker.signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    start = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert time.monotonic() - start < 15
    assert (await client.status(job_id)).state == JobState.QUEUED


async def test_grace_period_end_stops_at_once(client: Client, workers: WorkerFactory) -> None:
    """When the grace period ends with inputs still running, the worker stops and exits 0."""
    worker = workers(**SMALL, shutdown_grace_s=1)
    job_id = await client.enqueue("test-sleep", [data_uri(b"x")] * 2, options={"seconds": 30})

    async def running() -> bool:
        return (await client.status(job_id)).state == JobState.IN_PROGRESS

    await poll(running, 30)
    start = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0
    assert time.monotonic() - start < 15  # far less than the 30 s the inputs wanted
    assert (await client.status(job_id)).state == JobState.QUEUED
