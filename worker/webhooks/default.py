"""The namespace's default webhook, kept in Redis so that every process ending a job knows
whether there is one (a producer's cancel, too) and every worker sends to the same URL.

A worker with SLUICE_WEBHOOK_URL writes it to ``{ns}:webhook-default`` at start-up and
again with each beat, expiring after LIVE_S: the namespace has a default while a live
worker says so, and none once the last such worker has stopped for LIVE_S. Workers that
say different URLs overwrite each other (the latest write wins, for every delivery sent
after it); a worker that finds another URL there at start-up warns.
"""

from __future__ import annotations

import time

import structlog
from redis.asyncio import Redis

from producer.contract.keys import Keys
from producer.contract.liveness import BEAT_INTERVAL_S, LIVE_S

log = structlog.get_logger("sluice.webhooks")


class DefaultUrl:
    def __init__(self, redis: Redis, keys: Keys, url: str | None) -> None:
        self.redis, self.key, self.url = redis, keys.webhook_default, url
        self._next_s = 0.0

    async def publish(self) -> None:
        """Write the default at start-up, warning if a live worker said another one."""
        if self.url is None:
            return
        before = await self.redis.set(self.key, self.url, ex=LIVE_S, get=True)
        if before is not None and before.decode("utf-8", "replace") != self.url:
            log.warning(
                "another live worker has a different SLUICE_WEBHOOK_URL: the namespace has "
                "one default, the latest written (docs/webhooks.md)",
            )
        self._next_s = time.monotonic() + BEAT_INTERVAL_S

    async def refresh(self) -> None:
        """Write it again once a beat has passed."""
        if self.url is not None and time.monotonic() >= self._next_s:
            await self.redis.set(self.key, self.url, ex=LIVE_S)
            self._next_s = time.monotonic() + BEAT_INTERVAL_S
