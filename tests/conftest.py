"""Fixtures: a real Valkey server per session, a fresh namespace per test, real workers."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from producer import Client, ClientSettings
from producer.redis.typed import Redis
from tests.support.cluster import Cluster, start_cluster
from tests.support.http_server import HttpServer
from tests.support.latency_proxy import LatencyProxy
from tests.support.servers import Server, valkey_binary
from tests.support.workers import WorkerFactory

ROOT = Path(__file__).resolve().parent.parent

# Property-based tests run in `make test` on a bounded budget: a fixed number of examples each
# (a few seconds a test on the shared 2-core machine), no per-example deadline (a noisy machine
# must not fail them). HYPOTHESIS_PROFILE=deep searches much longer, for a session of its own.
hypothesis_settings.register_profile("sluice", max_examples=100, deadline=None, database=None)
hypothesis_settings.register_profile("deep", max_examples=5000, deadline=None, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "sluice"))

# A shell starts a background job (`pytest … &`) with SIGINT ignored, and every process the
# suite starts would inherit that: a CLI subprocess a test interrupts would ignore the Ctrl-C
# it is sent. A handler, unlike an ignored signal, is reset to the default in a child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded Valkey server for the session, on a free port."""
    srv = Server(valkey_binary(), tmp_path_factory.mktemp("valkey")).start()
    yield srv
    srv.stop()


def cluster_or_skip(base_dir: Path, **options: int) -> Cluster:
    """A started Valkey Cluster, or the test skipped with why cluster mode cannot start."""
    try:
        return start_cluster(valkey_binary(), base_dir, **options)
    except (OSError, RuntimeError, TimeoutError) as exc:
        pytest.skip(f"a Valkey Cluster cannot start here: {exc}")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-primary Valkey Cluster for the session (no replicas): do not kill or reshard it;
    a test that does takes its own from ``make_cluster``."""
    started = cluster_or_skip(tmp_path_factory.mktemp("cluster"))
    yield started
    started.stop()


@pytest.fixture
def make_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(replicas=1)``: a cluster of this test's own, stopped at its end."""
    made: list[Cluster] = []

    def make(**options: int) -> Cluster:
        made.append(cluster_or_skip(tmp_path_factory.mktemp("cluster"), **options))
        return made[-1]

    yield make
    for each in made:
        each.stop()


@pytest.fixture
def namespace() -> str:
    """A namespace of this test's own, so tests never see each other's keys."""
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(server: Server, namespace: str, tmp_path: Path) -> ClientSettings:
    return ClientSettings(
        redis_url=server.url, namespace=namespace, data_dir=tmp_path / "data", _env_file=None
    )


@pytest.fixture
async def client(settings: ClientSettings) -> AsyncIterator[Client]:
    async with Client(settings) as c:
        yield c


@pytest.fixture
async def redis(server: Server) -> AsyncIterator[Redis]:
    r = Redis.from_url(server.url)
    yield r
    await r.aclose()


@pytest.fixture
def http() -> Iterator[HttpServer]:
    """A real local HTTP server; tests fill ``documents`` and read ``hits``."""
    srv = HttpServer().start()
    yield srv
    srv.stop()


def worker_env(redis_url: str, namespace: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a worker process in a test: no stray SLUICE_* from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_REDIS_URL=redis_url,
        SLUICE_NAMESPACE=namespace,
        SLUICE_POOL_SIZE="2",
        SLUICE_LOG_FORMAT="json",
        SLUICE_FILE_ROOTS=str(tmp_path),
        SLUICE_FETCH_ALLOW="127.0.0.0/8",
        SLUICE_DATA_DIR=str(tmp_path / "data"),
        PYTHONPATH=str(ROOT),
    )
    return env


@pytest.fixture
def workers(server: Server, namespace: str, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real worker processes with ``workers(**settings)``; all are stopped at the end."""
    factory = WorkerFactory(
        base_env=worker_env(server.url, namespace, tmp_path),
        log_dir=tmp_path,
        redis_url=server.url,
        namespace=namespace,
    )
    yield factory
    factory.stop_all()


@pytest.fixture
def slow_redis(server: Server) -> Iterator[LatencyProxy]:
    """The test server behind a proxy that holds each chunk 50 ms, either way."""
    proxy = LatencyProxy(server.port, delay_s=0.05).start()
    yield proxy
    proxy.stop()
