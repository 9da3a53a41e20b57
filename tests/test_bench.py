"""The benchmark's own measuring (tests/bench/): what it counts as done, on a real server."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from producer import Client
from producer.keys import Keys
from tests.bench.systems import Context
from tests.bench.systems.sluice_system import SluiceSystem
from tests.bench.workloads import WORKLOADS
from tests.support.servers import Server
from worker.lifecycle.claim import Claimer


def bench_context(redis: Redis, server: Server, namespace: str, tmp_path: Path) -> Context:
    return Context(
        redis=redis, redis_url=server.url, namespace=namespace, cores=2, fetch_concurrency=8,
        poll_delay_s=0.05, log_dir=tmp_path,
    )  # fmt: skip


async def test_tiny_jobs_claimed_but_not_ended_are_not_done(
    redis: Redis, server: Server, client: Client, namespace: str, tmp_path: Path
) -> None:
    """Sluice's tiny-job count leaves out jobs a worker holds and has not ended."""
    tiny = WORKLOADS["tiny"]
    ctx = bench_context(redis, server, namespace, tmp_path)
    system = SluiceSystem(ctx, tiny, tiny.uris(20, ""))
    system.client = client
    system.job_ids = []
    await system.submit()
    assert await system.done() == 0
    claimer = Claimer(redis, Keys(namespace), "bench-test", 30, 100, 60)
    claim = await claimer.claim(room=100, most=100, aborts_since_ms=0)
    assert len(claim.units) == 20
    assert await redis.zcard(Keys(namespace).queue) == 0
    assert await system.done() == 0
