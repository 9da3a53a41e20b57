"""The worker's heartbeat: who it is, that it is alive, the pipelines it runs, the queues
it serves and the rate limits it applies."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Callable, Sequence

import structlog
from redis.exceptions import RedisError
from redis.typing import EncodableT

from producer.contract.keys import DEFAULT_QUEUE, Keys
from producer.contract.liveness import BEAT_INTERVAL_S, FORGOTTEN_S, LIVE_S
from producer.contract.version import sluice_version
from producer.contract.wire import dumps, now_ms
from producer.redis.typed import Redis
from worker.registry import REGISTRY

log = structlog.get_logger("sluice.heartbeat")


def worker_name(configured: str | None) -> str:
    return configured or f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        name: str,
        pool_size: int,
        units: Callable[[], int],
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        rates: Sequence[str] = (),
    ) -> None:
        self.redis, self.keys, self.name = redis, keys, name
        self.queues = list(queues)
        self.rates = list(rates)  # the rate limits it applies, as `RateRule.describe` says
        self.started = time.time()
        self.pool_size = pool_size
        self.units = units
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.beat()
        self._task = asyncio.create_task(self._loop(), name="sluice-heartbeat")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(BEAT_INTERVAL_S)
            try:
                await self.beat()
            except RedisError as exc:
                log.warning("heartbeat failed", error=str(exc))

    async def beat(self) -> None:
        details: dict[str, EncodableT] = {
            "id": self.name,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": self.started,
            "last_beat": time.time(),
            "jobs": self.units(),  # units held (a job of one unit is one)
            "pool_size": self.pool_size,
            "version": sluice_version(),
            "queues": ",".join(self.queues),
            "rates": ",".join(self.rates),
        }
        named = [q for q in self.queues if q != DEFAULT_QUEUE]
        pipelines = {name: dumps(p.describe()) for name, p in REGISTRY.pipelines.items()}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.workers, {self.name: now_ms()})
            pipe.hset(self.keys.worker(self.name), mapping=details)
            pipe.expire(self.keys.worker(self.name), LIVE_S)
            if pipelines:
                pipe.hset(self.keys.pipelines, mapping=pipelines)
                if self.keys.sharded:  # each shard's claim reads its own copy
                    for shard in self.keys.every_shard():
                        pipe.hset(shard.shard_pipelines, mapping=pipelines)
            if named:  # `sluice stats` shows the queues served, even before a job comes
                pipe.sadd(self.keys.queues, *named)
            # forget workers that stopped beating long ago
            pipe.zremrangebyscore(self.keys.workers, "-inf", now_ms() - FORGOTTEN_S * 1000)
            await pipe.execute()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrem(self.keys.workers, self.name)
                pipe.delete(self.keys.worker(self.name))
                await pipe.execute()
        except RedisError as exc:
            log.warning("could not remove heartbeat", error=str(exc))
