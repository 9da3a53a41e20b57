"""arq's own client and CLI against Sluice: the JSON recipe runs, pickle fails saying so, arq's
defaults land elsewhere, and arq's CLI is told to run sluice-worker instead."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

from producer import Client, JobState
from tests.conftest import ROOT
from tests.support.servers import Server
from tests.support.workers import WorkerFactory

ARQ_CLI = str(Path(sys.executable).parent / "arq")


def json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
async def arq_json(server: Server) -> AsyncIterator[ArqRedis]:
    """arq's client as README's recipe sets it up: JSON both ways."""
    pool = await create_pool(
        RedisSettings(port=server.port), job_serializer=json_bytes, job_deserializer=json.loads
    )
    yield pool
    await pool.aclose()


@pytest.fixture
async def arq_default(server: Server) -> AsyncIterator[ArqRedis]:
    """arq's client with its defaults: pickle, and arq's own queue."""
    pool = await create_pool(RedisSettings(port=server.port))
    yield pool
    await pool.aclose()


async def test_arq_client_with_json_and_the_queue_name_runs_a_job(
    arq_json: ArqRedis, client: Client, workers: WorkerFactory, tmp_path: Path
) -> None:
    """README's recipe: arq's enqueue_job('sluice', ...) with JSON and Sluice's queue runs."""
    workers()
    job = await arq_json.enqueue_job(
        "sluice",
        pipeline="text-stats",
        inputs=["data:,from arq"],
        options={},
        _job_id=f"arq-{tmp_path.name}",
        _queue_name=client.keys.queue,
    )
    assert job is not None
    status = await client.wait(job.job_id, timeout_s=60)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 1, 0)
    [record] = [r async for r in client.results(job.job_id)]
    assert record.result is not None and record.result["words"] == 2


async def test_arq_pickle_fails_the_job_saying_pickle(
    arq_default: ArqRedis, client: Client, workers: WorkerFactory, tmp_path: Path
) -> None:
    """With arq's default serializer on Sluice's queue, the job fails naming pickle and JSON."""
    workers()
    job_id, queue = f"pickled-{tmp_path.name}", client.keys.queue
    job = await arq_default.enqueue_job(
        "sluice", pipeline="text-stats", inputs=["data:,x"], _queue_name=queue, _job_id=job_id
    )
    assert job is not None
    status = await client.wait(job.job_id, timeout_s=60)
    assert status.state == JobState.FAILED
    assert status.error is not None and "pickle" in status.error
    assert "job_serializer" in status.error and "JSON" in status.error


async def test_arq_defaults_land_in_arqs_own_queue(
    arq_default: ArqRedis, client: Client, tmp_path: Path
) -> None:
    """arq's defaults write to arq:queue, which Sluice does not read: hence the recipe."""
    job = await arq_default.enqueue_job("sluice", pipeline="text-stats", inputs=["data:,x"])
    assert job is not None
    try:
        assert await arq_default.zscore("arq:queue", job.job_id) is not None
        assert await client.redis.zscore(client.keys.queue, job.job_id) is None
    finally:
        await arq_default.zrem("arq:queue", job.job_id)
        await arq_default.delete(f"arq:job:{job.job_id}")


@pytest.mark.parametrize("check", [False, True])
def test_arq_cli_is_told_to_run_sluice_worker(check: bool) -> None:
    """`arq worker.process.app.WorkerSettings` (and --check) print one clear line, exit 2."""
    args = [ARQ_CLI, *(["--check"] if check else []), "worker.process.app.WorkerSettings"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "run `sluice-worker`" in done.stderr and len(done.stderr.splitlines()) == 1
