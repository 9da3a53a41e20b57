"""The namespace's default webhook, kept in Redis so that every process ending a job knows
whether there is one (a producer's cancel, too) and every worker sends to the same URL.

A worker with SLUICE_WEBHOOK_URL writes it to ``{ns}:webhook-default`` at start-up and
again with each beat, expiring after LIVE_S: the namespace has a default while a live
worker says so, and none once the last such worker has stopped for LIVE_S. The first URL
written holds while a worker keeps it alive: a worker that says another one warns (at
start-up, and when it finds it so again) and leaves it; its own takes over once the other
has lapsed. So deliveries never alternate between two URLs.
"""

from __future__ import annotations

import hashlib
import time

import structlog

from producer.contract.keys import Keys
from producer.contract.liveness import BEAT_INTERVAL_S, LIVE_S
from producer.redis.scripts import run_script
from producer.redis.typed import Redis

log = structlog.get_logger("sluice.webhooks")

DIFFERENT = (
    "another live worker has a different SLUICE_WEBHOOK_URL: the namespace keeps the first "
    "(docs/webhooks.md)"
)

# KEYS: webhook default
# ARGV: this worker's URL, ttl s
# Returns false when the key now holds this URL (written or kept alive), else the other URL.
KEEP = """
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return held end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return false
"""
KEEP_SHA = hashlib.sha1(KEEP.encode()).hexdigest()


class DefaultUrl:
    def __init__(self, redis: Redis, keys: Keys, url: str | None) -> None:
        self.redis, self.key, self.url = redis, keys.webhook_default, url
        self.copies = [k.shard_webhook_default for k in keys.every_shard()] if keys.sharded else []
        self._next_s = 0.0
        self._warned = False

    async def publish(self) -> None:
        """Write the default at start-up (and keep it alive with `refresh`)."""
        self._next_s = 0.0
        await self.refresh()

    async def refresh(self) -> None:
        """Keep this worker's URL the default once a beat has passed, unless another holds."""
        if self.url is None or time.monotonic() < self._next_s:
            return
        self._next_s = time.monotonic() + BEAT_INTERVAL_S
        other = await run_script(self.redis, KEEP_SHA, KEEP, [self.key], [self.url, LIVE_S])
        if not other and self.copies:  # each shard's scripts read their own copy
            assert self.url is not None
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in self.copies:
                    pipe.set(key, self.url, ex=LIVE_S)
                await pipe.execute()
        if other and not self._warned:
            log.warning(DIFFERENT)
        self._warned = bool(other)
