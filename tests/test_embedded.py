"""With SLUICE_REDIS_URL unset, the worker runs an embedded server the client finds."""

from __future__ import annotations

import socket
from pathlib import Path

import redis

from producer import Client, ClientSettings, JobState
from producer.redis.connection import embedded_address
from tests.conftest import worker_env
from tests.support.cli import sluice
from tests.support.workers import WorkerProcess
from worker.process.embedded import EmbeddedServer


async def test_worker_starts_embedded_server_and_client_finds_it(tmp_path: Path) -> None:
    """The worker starts Valkey with AOF in the data dir; the client finds it; it stops after."""
    data_dir = tmp_path / "data"
    env = worker_env("unused", "emb", tmp_path)
    del env["SLUICE_REDIS_URL"]
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log").start()
    try:
        url = None
        for _ in range(300):
            url = embedded_address(data_dir)
            if url:
                break
            await asyncio_sleep(0.1)
        assert url, worker.log()
        worker.wait_ready(url, "emb")
        settings = ClientSettings(namespace="emb", data_dir=data_dir, _env_file=None)
        async with Client(settings) as client:
            job_id = await client.enqueue("text-stats", ["data:,embedded"])
            assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
        assert any(p.name.startswith("appendonly") for p in data_dir.iterdir())
    finally:
        assert worker.stop() == 0
    assert embedded_address(data_dir) is None
    assert not (data_dir / "server.json").exists()


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def test_embedded_server_keeps_its_port_and_data_across_restarts(tmp_path: Path) -> None:
    """A restart listens where the last server did, with its data; a busy port is not taken."""
    data_dir = tmp_path / "data"
    first = EmbeddedServer(data_dir)
    url = first.start()
    with redis.Redis.from_url(url) as r:
        r.set("kept", "yes")
        first.stop()  # with a client connected: the port may be left in TIME_WAIT
    again = EmbeddedServer(data_dir)
    try:
        assert again.start() == url
        with redis.Redis.from_url(url) as r:
            assert r.get("kept") == b"yes"
    finally:
        again.stop()
    port = int(url.rpartition(":")[2])
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        moved = EmbeddedServer(data_dir)
        try:
            assert moved.start() != url
            assert embedded_address(data_dir) == moved.url
        finally:
            moved.stop()


def test_no_server_says_exactly_how_to_start_one(tmp_path: Path) -> None:
    """With no server, the CLI names the data directory in full and the command that starts
    its server, or says the directory is relative to the working directory."""
    data_dir = tmp_path / "data"
    env = {"SLUICE_DATA_DIR": str(data_dir), "SLUICE_NAMESPACE": "none"}
    never = sluice(env, "stats")
    assert never.exit_code == 1
    assert f"no embedded server has run in {data_dir}" in never.stderr
    assert "relative to the working directory" in never.stderr
    server = EmbeddedServer(data_dir)
    server.start()
    server.stop()  # its append-only file stays
    stopped = sluice(env, "results", "some-job")
    assert stopped.exit_code == 1
    assert f"`SLUICE_DATA_DIR={data_dir} sluice-worker`" in stopped.stderr
