"""A transform that kills its process or hangs fails that input alone; the pool carries on."""

from __future__ import annotations

from pathlib import Path

from producer import Client, JobState
from tests.expected import data_uri
from tests.support.processes import alive
from tests.support.workers import WorkerFactory


async def test_crashing_transform_fails_alone(client: Client, workers: WorkerFactory) -> None:
    """os._exit in a transform fails that input after its attempts; others and later jobs pass."""
    workers(pipelines="tests.sample_pipelines", pool_size=2, transform_attempts=2)
    inputs = [data_uri(b"fine")] * 10 + [data_uri(b"crash")] + [data_uri(b"fine")] * 10
    job_id = await client.enqueue("test-exit", inputs)
    status = await client.wait(job_id, timeout_s=60)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 21, 1)
    crashed = [r async for r in client.results(job_id) if not r.ok]
    assert [r.index for r in crashed] == [10]
    assert "transform process died (exit code 3) (2 attempts)" in (crashed[0].error or "")
    again = await client.enqueue("test-exit", [data_uri(b"fine")] * 5)
    assert (await client.wait(again, timeout_s=60)).failed == 0


async def test_hanging_transform_is_killed_at_its_limit(
    client: Client, workers: WorkerFactory, tmp_path: Path
) -> None:
    """A transform past the per-input limit fails and its process is really killed."""
    workers(
        pipelines="tests.sample_pipelines",
        pool_size=1,
        transform_timeout_s=1,
        transform_attempts=1,
        transform_batch_items=1,
    )
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    inputs = [data_uri(b"ok"), data_uri(b"hang"), data_uri(b"ok")]
    job_id = await client.enqueue("test-hang", inputs, options={"pid_dir": str(pid_dir)})
    status = await client.wait(job_id, timeout_s=60)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 3, 1)
    [hung] = [r async for r in client.results(job_id) if not r.ok]
    assert "timed out after 1 s" in (hung.error or "")
    [pid_file] = list(pid_dir.iterdir())
    pid = int(pid_file.read_text())
    assert not alive(pid), f"hung transform process {pid} is still running"


async def test_pool_processes_recycled_after_max_tasks(
    client: Client, workers: WorkerFactory
) -> None:
    """With SLUICE_POOL_MAX_TASKS, inputs are served by fresh processes over time."""
    workers(
        pipelines="tests.sample_pipelines",
        pool_size=1,
        pool_max_tasks=2,
        transform_batch_items=1,
        pool_inflight_per_process=1,
    )
    job_id = await client.enqueue("test-pid", [data_uri(f"{i}".encode()) for i in range(10)])
    assert (await client.wait(job_id, timeout_s=60)).failed == 0
    pids = {r.result["pid"] async for r in client.results(job_id) if r.result}
    assert len(pids) >= 4  # 10 calls, 2 per process
