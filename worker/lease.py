"""Renews the in-progress key of every job this worker holds, so only a dead worker's job is
ever taken over: one task and one pipelined round trip per renewal for all of them."""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from producer.keys import Keys

log = structlog.get_logger("sluice.lease")


class Leases:
    def __init__(self, redis: Redis, lease_s: float) -> None:
        self.redis, self.lease_s = redis, lease_s
        self.held: set[str] = set()  # job ids; the claim took the lease, the ending drops it

    async def run(self) -> None:
        """Renew every held lease each third of its length."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            await self.renew()

    async def renew(self) -> None:
        if not self.held:
            return
        lease_ms = int(self.lease_s * 1000)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for job_id in self.held:
                    pipe.pexpire(Keys.arq_in_progress(job_id), lease_ms)
                await pipe.execute()
        except RedisError as exc:
            log.warning("lease renewal failed", error=str(exc), jobs=len(self.held))
