"""Redis restarts and outages: workers wait and reconnect; producers get a clear error."""

from __future__ import annotations

import asyncio
import signal

import pytest

from producer import Client, ClientSettings, JobState, ServerUnavailable
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.processes import alive, descendants
from tests.support.servers import Server, free_port, valkey_binary
from tests.support.workers import WorkerFactory


async def test_redis_restarted_mid_job(
    private_server: Server, settings: ClientSettings, workers: WorkerFactory
) -> None:
    """Redis stops and restarts (append-only file kept) mid-job; the job completes, no loss."""
    own = settings.model_copy(update={"redis_url": private_server.url})
    workers(
        redis_url=private_server.url,
        pipelines="tests.sample_pipelines",
        pool_size=1,
        fetch_concurrency=2,
        transform_queue_size=2,
    )
    async with Client(own) as client:
        job_id = await client.enqueue(
            "test-sleep", [data_uri(f"{i}".encode()) for i in range(60)], options={"seconds": 0.05}
        )

        async def some_stored() -> bool:
            return (await client.status(job_id)).stored >= 5

        await poll(some_stored, 30)
        private_server.stop()
        await asyncio.sleep(2)
        private_server.start()
        status = await client.wait(job_id, timeout_s=90)
        assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 60, 0)
        assert await client.redis.hlen(client.keys.results(job_id)) == 60


async def test_worker_waits_for_redis_at_start(
    settings: ClientSettings, workers: WorkerFactory, tmp_path: object
) -> None:
    """With Redis down at start, the worker logs that it waits, then runs once Redis is up."""
    port = free_port()
    late = Server(valkey_binary(), workers.log_dir / "late-valkey", port=port)
    worker = workers(redis_url=late.url, wait=False)

    async def waiting() -> bool:  # a worker starting on a busy machine may take seconds to say
        return "waiting for Redis" in worker.log()

    await poll(waiting, 30)
    await asyncio.sleep(2)  # and it goes on waiting
    assert worker.process is not None and worker.process.poll() is None, worker.log()
    assert "waiting for Redis" in worker.log()
    late.start()
    try:
        worker.wait_ready(late.url, settings.namespace)
        async with Client(settings.model_copy(update={"redis_url": late.url})) as client:
            job_id = await client.enqueue("text-stats", ["data:,late"])
            assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
    finally:
        worker.stop()
        late.stop()


async def test_producer_facing_down_redis_gets_clear_error(settings: ClientSettings) -> None:
    """Enqueue (once its timeout is over) and status against a closed port raise
    ServerUnavailable naming the server."""
    down = settings.model_copy(
        update={"redis_url": f"redis://:secret@127.0.0.1:{free_port()}", "enqueue_timeout_s": 0.3}
    )
    async with Client(down) as client:
        with pytest.raises(
            ServerUnavailable, match="cannot reach Redis at redis://\\*\\*\\*@"
        ) as err:
            await client.enqueue("text-stats", ["data:,x"])
        assert "secret" not in str(err.value)
        with pytest.raises(ServerUnavailable):
            await client.status("x")


async def test_worker_stops_promptly_with_redis_gone(
    private_server: Server, settings: ClientSettings, workers: WorkerFactory
) -> None:
    """Redis gone, then SIGTERM: the worker still shuts its pool down and exits, leaving no
    pool process behind (their jobs are redone once their leases lapse)."""
    worker = workers(redis_url=private_server.url, pool_size=2)
    children = descendants(worker.pid)
    assert len(children) >= 2, "the worker has no pool processes to check"
    private_server.stop()
    worker.signal(signal.SIGTERM)
    worker.wait(timeout_s=15)

    async def all_gone() -> bool:
        return not any(alive(pid) for pid in children)

    await poll(all_gone, 5)
