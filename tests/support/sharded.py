"""Fixtures that put a test on a sharded layout: SLUICE_SHARDS=SHARDS on the one test server.

A test module imports them beside tests of another module (``test_x = module.test_x``), and
those tests run again with every client, dashboard, CLI call and worker on the sharded
layout: the same behaviour, found from every shard. Each fixture overrides the one of the
same name it asks for.
"""

from __future__ import annotations

import pytest

from producer import ClientSettings
from producer.contract.keys import Keys
from tests.support.workers import WorkerFactory

SHARDS = 4


@pytest.fixture
def settings(settings: ClientSettings) -> ClientSettings:
    """The test's settings, over SHARDS shards."""
    return settings.model_copy(update={"shards": SHARDS})


@pytest.fixture
def workers(workers: WorkerFactory) -> WorkerFactory:
    """Workers started over SHARDS shards."""
    workers.base_env["SLUICE_SHARDS"] = str(SHARDS)
    return workers


@pytest.fixture
def env(env: dict[str, str]) -> dict[str, str]:
    """The CLI's environment, over SHARDS shards."""
    return {**env, "SLUICE_SHARDS": str(SHARDS)}


@pytest.fixture
def keys(settings: ClientSettings) -> Keys:
    """The key names on the sharded layout (a job's keys follow its id's shard)."""
    return settings.keys
