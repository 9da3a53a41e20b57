"""With SLUICE_REDIS_URL unset, the worker runs an embedded server the client finds."""

from __future__ import annotations

from pathlib import Path

from producer import Client, ClientSettings, JobState
from producer.connection import embedded_address
from tests.conftest import worker_env
from tests.support.workers import WorkerProcess


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
