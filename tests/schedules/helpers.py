"""Schedules published and fired as a worker would, in the test's own process."""

from __future__ import annotations

from producer import ClientSettings
from producer.contract.schedules import Schedule, tick_job_id
from producer.redis.typed import Redis
from worker.schedules.firing import Firing
from worker.schedules.scheduler import Scheduler
from worker.settings import WorkerConfig

NIGHTLY = Schedule(
    name="nightly",
    pipeline="text-stats",
    inputs=["data:,report"],
    cron="0 3 * * *",
    timezone="Europe/Paris",
    queue="reports",
    priority=3,
)
OFTEN = Schedule(name="often", pipeline="text-stats", inputs=["data:,x"], every_s=60)


async def publish_and_fire(settings: ClientSettings) -> str:
    """Publish NIGHTLY and OFTEN as a worker would, and fire one tick of NIGHTLY; its job."""
    config = WorkerConfig(
        redis_url=settings.redis_url,
        namespace=settings.namespace,
        shards=settings.shards,
        _env_file=None,
    )
    keys = config.keys
    redis = Redis.from_url(str(settings.redis_url))
    try:
        await Scheduler(redis, keys, config, "w1", [NIGHTLY, OFTEN]).publish()
        tick = int((await redis.time())[0]) // 60 * 60_000
        await redis.zadd(keys.schedules, {"nightly": tick})
        next_ms = tick + 86_400_000
        outcome, job_id = await Firing(redis, keys, config).fire(
            NIGHTLY, NIGHTLY.digest(), tick, tick, next_ms
        )
        assert job_id == tick_job_id(settings.namespace, "nightly", tick), outcome
    finally:
        await redis.aclose()
    return job_id
