"""/healthz, /readyz and `sluice-worker --check` against real workers and real servers."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from producer import Client
from producer.contract.keys import Keys
from producer.contract.wire import now_ms
from producer.redis.typed import Redis
from tests.conftest import worker_env
from tests.expected import data_uri
from tests.support.scrape import get, wait_until
from tests.support.servers import Server, free_port, valkey_binary
from tests.support.workers import WorkerFactory


def check(env: dict[str, str], **settings: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m worker --check` with these extra SLUICE_* settings."""
    env = env | {f"SLUICE_{k.upper()}": v for k, v in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "worker", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def env(server: Server, namespace: str, tmp_path: Path) -> dict[str, str]:
    """The environment the test's workers get, for running checks beside them."""
    return worker_env(server.url, namespace, tmp_path)


async def status_of(port: int, path: str) -> int:
    return (await get(port, path))[0]


async def until_ready(port: int) -> None:
    """Wait for /readyz to answer 200. A worker's heartbeat (what starting it waits for) is
    written a little before its start-up ends and it takes jobs: on a busy machine a probe
    in between is answered 503, "starting"."""

    async def ready() -> bool:
        return await status_of(port, "/readyz") == 200

    await wait_until(ready)


async def test_a_running_worker_is_live_and_ready(workers: WorkerFactory) -> None:
    """Both endpoints answer 200 with a JSON status once the worker is up."""
    port = free_port()
    workers(metrics_port=port)
    assert await get(port, "/healthz") == (200, json.dumps({"status": "ok"}))
    await until_ready(port)
    status, body = await get(port, "/readyz")
    assert (status, json.loads(body)) == (200, {"status": "ok", "redis": "ok", "pool": "ok"})


async def test_a_request_that_is_not_http_is_logged_in_a_line(workers: WorkerFactory) -> None:
    """Bytes that are not HTTP sent to the health server get a 400 and one log line saying
    what was wrong, not aiohttp's traceback (any client could fill the worker's log)."""
    port = free_port()
    worker = workers(metrics_port=port)
    assert await status_of(port, "/healthz") == 200
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"GET /\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert conn.recv(100).startswith(b"HTTP/1.0 400 Bad Request")

    async def logged() -> bool:
        return "Error handling request" in worker.log()

    await wait_until(logged)
    assert "Traceback" not in worker.log() and "Invalid char in url path" in worker.log()


async def test_readyz_follows_redis_while_healthz_stays_ok(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    """Redis down: /readyz 503 naming Redis, /healthz still 200; Redis back: ready again."""
    redis_server = Server(valkey_binary(), tmp_path / "own-valkey").start()
    try:
        port = free_port()
        workers(metrics_port=port, redis_url=redis_server.url)
        await until_ready(port)
        redis_server.kill()
        status, body = await get(port, "/readyz")
        assert status == 503 and "unreachable" in json.loads(body)["redis"]
        assert await status_of(port, "/healthz") == 200
        redis_server.start()
        await until_ready(port)
    finally:
        redis_server.stop()


async def test_health_server_answers_before_redis_does(
    workers: WorkerFactory, tmp_path: Path
) -> None:
    """A worker waiting for Redis is live but not ready; it becomes ready when Redis comes."""
    later = Server(valkey_binary(), tmp_path / "later-valkey")
    port = free_port()
    workers(metrics_port=port, redis_url=later.url, wait=False)

    async def live() -> bool:
        try:
            return await status_of(port, "/healthz") == 200
        except OSError:
            return False

    await wait_until(live)
    assert await status_of(port, "/readyz") == 503
    later.start()
    try:
        await until_ready(port)
    finally:
        later.stop()


async def test_readyz_says_draining_after_sigterm(client: Client, workers: WorkerFactory) -> None:
    """While a worker drains after SIGTERM it is not ready, and says why; it stays live."""
    port = free_port()
    worker = workers(metrics_port=port, pipelines="tests.sample_pipelines")
    job_id = await client.enqueue("test-sleep", [data_uri(b"x")], options={"seconds": 5})

    async def running() -> bool:
        return (await client.status(job_id)).state == "in_progress"

    await wait_until(running)
    worker.signal(signal.SIGTERM)

    async def draining() -> bool:
        status, body = await get(port, "/readyz")
        return status == 503 and json.loads(body).get("worker") == "draining"

    await wait_until(draining)
    assert await status_of(port, "/healthz") == 200
    assert worker.wait() == 0


async def test_check_finds_a_named_worker(
    workers: WorkerFactory, env: dict[str, str], redis: Redis, namespace: str
) -> None:
    """--check exits 0 for a live worker named by SLUICE_WORKER_NAME, 1 for a missing one."""
    workers(worker_name="check-me", wait=False)

    async def beating() -> bool:
        return await redis.zscore(Keys(namespace).workers, "check-me") is not None

    await wait_until(beating)
    ok = check(env, worker_name="check-me")
    assert ok.returncode == 0 and "check-me" in ok.stdout
    missing = check(env, worker_name="not-there")
    assert missing.returncode == 1 and "no heartbeat from worker 'not-there'" in missing.stderr


def test_check_finds_the_one_worker_on_this_host(
    workers: WorkerFactory, env: dict[str, str]
) -> None:
    """Unnamed, --check checks the host's only worker; with two it asks for a name."""
    first = workers()
    assert check(env).returncode == 0
    workers()
    two = check(env)
    assert two.returncode == 1 and "set SLUICE_WORKER_NAME" in two.stderr
    assert check(env, worker_name=f"{socket.gethostname()}:{first.pid}").returncode == 0
    first.stop()
    assert check(env).returncode == 0  # one left


async def test_check_ignores_what_other_tools_left_in_the_workers_set(
    workers: WorkerFactory, env: dict[str, str], redis: Redis, namespace: str
) -> None:
    """A name that is not UTF-8 in the workers set, and a heartbeat key that is not a hash,
    do not make the host's one live worker unhealthy (nor the check crash)."""
    workers()
    keys = Keys(namespace)
    await redis.zadd(keys.workers, {b"stray-\xff": now_ms(), b"stray-string": now_ms()})
    await redis.set(keys.worker("stray-string"), "not a hash")
    ok = check(env)
    assert ok.returncode == 0, ok.stderr
    assert "Traceback" not in ok.stderr


async def test_check_fails_on_a_stale_heartbeat(
    env: dict[str, str], redis: Redis, namespace: str
) -> None:
    """A worker whose last beat is a minute old is unhealthy."""
    await redis.zadd(Keys(namespace).workers, {"old-worker": now_ms() - 60_000})
    stale = check(env, worker_name="old-worker")
    assert stale.returncode == 1 and "stale" in stale.stderr


def test_check_fails_when_redis_is_unreachable(env: dict[str, str]) -> None:
    """Nothing listening at SLUICE_REDIS_URL: exit 1, saying Redis is unreachable."""
    down = check(env, redis_url=f"redis://127.0.0.1:{free_port()}", worker_name="any")
    assert down.returncode == 1 and "Redis unreachable" in down.stderr


def test_check_refuses_a_bad_setting(env: dict[str, str]) -> None:
    """A bad setting is a usage error (exit 2), not an unhealthy worker."""
    bad = check(env, pool_size="0")
    assert bad.returncode == 2 and "SLUICE_POOL_SIZE" in bad.stderr


def test_a_taken_metrics_port_stops_the_worker(workers: WorkerFactory) -> None:
    """A metrics port already in use is a start-up error (exit 1) that names the setting."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        worker = workers(metrics_port=port, metrics_host="127.0.0.1", wait=False)
        assert worker.wait() == 1
    assert "SLUICE_METRICS_PORT" in worker.log()
