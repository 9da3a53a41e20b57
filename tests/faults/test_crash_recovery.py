"""A killed worker's job is taken over within the lease and finished without duplicates."""

from __future__ import annotations

import signal
import time

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.workers import WorkerFactory

LEASE_S = 3.0
SLOW = {"pipelines": "tests.sample_pipelines", "pool_size": 1, "lease_s": LEASE_S}


async def test_sigkill_mid_job_is_taken_over_within_lease(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """SIGKILL a worker mid-job: another finishes it, every input stored exactly once."""
    small = {**SLOW, "fetch_concurrency": 4, "transform_queue_size": 2}
    pair = {w.pid: w for w in (workers(**small), workers(**small))}  # the spare waits idle
    inputs = [data_uri(f"item-{i}".encode()) for i in range(60)]
    job_id = await client.enqueue("test-sleep", inputs, options={"seconds": 0.05})

    async def some_stored() -> bool:
        return (await client.status(job_id)).stored >= 10

    await poll(some_stored, 30)
    holder = (await client.status(job_id)).worker or ""
    victim = pair[int(holder.rpartition(":")[2])]
    victim.signal(signal.SIGKILL)
    victim.wait()
    killed_at = time.monotonic()
    stored_at_kill = (await client.status(job_id)).stored
    assert stored_at_kill < 60, "the job finished before the kill: nothing was tested"

    async def taken_over() -> bool:
        return (await client.status(job_id)).attempts == 2

    await poll(taken_over, 30)
    takeover_s = time.monotonic() - killed_at
    # the lease, plus a poll and a little scheduling slack on a shared machine
    assert takeover_s < LEASE_S + 1.5, f"takeover took {takeover_s:.1f} s"
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.COMPLETE
    assert (status.total, status.stored, status.failed) == (60, 60, 0)
    assert await redis.hlen(client.keys.results(job_id)) == 60
    records = [r async for r in client.results(job_id)]
    assert sorted(r.input for r in records) == sorted(inputs)


async def test_long_job_is_not_taken_over_while_its_worker_lives(
    client: Client, workers: WorkerFactory
) -> None:
    """A job running for several leases stays with its live worker."""
    # a shorter lease than the takeover tests' (renewed every third of it): the same
    # several leases in less time
    lease_s = 2.0
    workers(**SLOW | {"lease_s": lease_s})
    workers(**SLOW | {"lease_s": lease_s})
    job_id = await client.enqueue(
        "test-sleep", [data_uri(b"x")] * 3, options={"seconds": lease_s * 1.2}
    )
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.COMPLETE
    assert status.attempts == 1
