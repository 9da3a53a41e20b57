"""Fixtures of the CLI's tests, which are synchronous: the CLI runs its own event loop."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from producer import ClientSettings
from producer.contract.keys import Keys
from producer.redis.typed import SyncRedis


@pytest.fixture
def env(settings: ClientSettings) -> dict[str, str]:
    assert settings.redis_url is not None
    return {"SLUICE_REDIS_URL": settings.redis_url, "SLUICE_NAMESPACE": settings.namespace}


@pytest.fixture
def job_id() -> str:
    """A fresh job id: arq's keys (``arq:job:{id}``) are shared by every namespace."""
    return f"cli-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def keys(settings: ClientSettings) -> Keys:
    return Keys(settings.namespace)


@pytest.fixture
def rdb(settings: ClientSettings) -> Iterator[SyncRedis]:
    """A blocking Redis client: these tests are synchronous because the CLI runs its own loop."""
    assert settings.redis_url is not None
    client = SyncRedis.from_url(settings.redis_url)
    yield client
    client.close()
