"""Backpressure: with a slow store, memory holds a bounded number of items; jobs wait in Redis."""

from __future__ import annotations

import asyncio

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.support.http_server import HttpServer
from tests.support.latency_proxy import LatencyProxy
from tests.support.workers import WorkerFactory
from worker.stages.store import WRITERS as STORE_WRITERS

LIMITS = {
    "fetch_concurrency": 4,
    "pool_size": 1,
    "pool_inflight_per_process": 1,
    "transform_batch_items": 1,
    "transform_queue_size": 2,
    "store_queue_size": 2,
    "store_batch_size": 1,
    "max_jobs": 1,
}
# fetched but not yet stored, at most: held by fetchers, queued, in the pool, queued, and a
# batch in each of the store stage's writers
BOUND = 4 + 2 + 1 + 2 + 1 * STORE_WRITERS


async def test_slow_store_bounds_items_in_memory(
    client: Client,
    redis: Redis,
    slow_redis: LatencyProxy,  # before ``workers``: set up first, so stopped after them
    workers: WorkerFactory,
    http: HttpServer,
    namespace: str,
) -> None:
    """Fetched-but-unstored items never exceed the configured bound; other jobs stay queued."""
    http.documents.update({f"d{i}": b"word " * 50 for i in range(40)})
    sizes = [40, 5, 5]
    # jobs due at the same instant are taken in id order (the queue's ties); make all three
    # tie, with ids in enqueue order, so the big one runs first however fast the enqueues were
    jobs = [
        await client.enqueue(
            "text-stats", [http.url(f"d{i}") for i in range(n)], job_id=f"{namespace}-{k}"
        )
        for k, n in enumerate(sizes)
    ]
    await redis.zadd(client.keys.queue, dict.fromkeys(jobs, 1))
    workers(redis_url=slow_redis.url, **LIMITS)
    peak, queued_while_running = 0, []
    while (status := await client.status(jobs[0])).state != JobState.COMPLETE:
        stored = sum([await redis.hlen(client.keys.results(j)) for j in jobs])
        peak = max(peak, http.total_hits - stored)
        assert http.total_hits - stored <= BOUND
        if status.state == JobState.IN_PROGRESS:
            others = [await client.status(j) for j in jobs[1:]]
            queued_while_running.append(sum(s.state == JobState.QUEUED for s in others))
        await asyncio.sleep(0.02)
    assert peak >= BOUND // 2, "the store was not the bottleneck: the test proves nothing"
    # the worker ran one job at a time; the other two waited in Redis, not in memory
    assert queued_while_running and min(queued_while_running) == 2
    for job, size in zip(jobs, sizes, strict=True):
        assert (await client.wait(job, timeout_s=120)).stored == size
