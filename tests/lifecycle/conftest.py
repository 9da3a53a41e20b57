"""Fixtures for the lifecycle's tests: the batched endings writer, started and stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from producer import Client
from producer.redis.typed import Redis
from worker.lifecycle.endings import Endings


@pytest.fixture
async def endings(client: Client, redis: Redis) -> AsyncIterator[Endings]:
    writer = Endings(redis, client.keys, result_ttl_s=600, most_runs=2)
    writer.start()
    yield writer
    await writer.stop()
