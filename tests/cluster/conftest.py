"""Fixtures of the tests on a real cluster (tests.support.cluster): client settings in
cluster mode, a client, and a factory of cluster-mode workers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from producer import Client, ClientSettings
from tests.conftest import worker_env
from tests.support.cluster import Cluster
from tests.support.workers import WorkerFactory


@pytest.fixture
def cluster_settings(cluster: Cluster, namespace: str, tmp_path: Path) -> ClientSettings:
    return ClientSettings(
        redis_url=cluster.url,
        redis_cluster=True,
        namespace=namespace,
        data_dir=tmp_path / "data",
        _env_file=None,
    )


@pytest.fixture
async def on_cluster(cluster_settings: ClientSettings) -> AsyncIterator[Client]:
    async with Client(cluster_settings) as c:
        yield c


@pytest.fixture
def cluster_workers(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[WorkerFactory]:
    env = worker_env(cluster.url, namespace, tmp_path)
    env["SLUICE_REDIS_CLUSTER"] = "true"
    factory = WorkerFactory(
        base_env=env, log_dir=tmp_path, redis_url=cluster.url, namespace=namespace
    )
    yield factory
    factory.stop_all()
