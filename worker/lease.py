"""Renews a running job's in-progress key, so only a dead worker's job is ever taken over."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from producer.keys import Keys

log = structlog.get_logger("sluice.lease")


@contextlib.asynccontextmanager
async def hold_lease(redis: Redis, job_id: str, lease_s: float) -> AsyncIterator[None]:
    """Renew the job's lease every third of its length while the block runs."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(lease_s / 3)
            try:
                await redis.pexpire(Keys.arq_in_progress(job_id), int(lease_s * 1000))
            except RedisError as exc:
                log.warning("lease renewal failed", error=str(exc))

    task = asyncio.create_task(renew(), name=f"lease-{job_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
