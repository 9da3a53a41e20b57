"""Sluice on a real 3-primary Valkey Cluster (tests.support.cluster): SLUICE_REDIS_CLUSTER with
its default 16 shards, real workers, no CROSSSLOT anywhere; the CLI reads the whole queue."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from producer import Client, ClientSettings, JobState
from producer.contract.keys import shard_of
from tests.conftest import ROOT, worker_env
from tests.support.workers import WorkerFactory


def sluice(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI (`sluice ...`) run as a process."""
    command = [sys.executable, "-m", "producer", *args]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def no_crossslot(factory: WorkerFactory) -> None:
    for worker in factory.started:
        assert "CROSSSLOT" not in worker.log(), worker.log()[-3000:]


async def test_many_jobs_on_two_workers(on_cluster: Client, cluster_workers: WorkerFactory) -> None:
    """A few hundred inputs over 60 jobs, 2 workers: each job complete, one record per input."""
    jobs = [[f"data:,j{j}%20i{i}" for i in range(2 + j % 9)] for j in range(60)]
    ids = await on_cluster.enqueue_many("text-stats", jobs)
    assert sum(map(len, jobs)) >= 300
    assert len({shard_of(i, 16) for i in ids}) >= 8
    assert (await on_cluster.stats()).ready == len(ids)
    cluster_workers.many(2, unit_inputs=4)
    for job_id, inputs in zip(ids, jobs, strict=True):
        status = await on_cluster.wait(job_id, timeout_s=90)
        assert status.state == JobState.COMPLETE, status
        assert (status.total, status.stored) == (len(inputs), len(inputs))
        records = [r async for r in on_cluster.results(job_id)]
        assert [r.index for r in records] == list(range(len(inputs)))
    stats = await on_cluster.stats()
    assert (stats.ready, stats.in_progress, stats.workers) == (0, 0, 2)
    no_crossslot(cluster_workers)


async def test_one_big_job_split_into_units(
    on_cluster: Client, cluster_workers: WorkerFactory, cluster_settings: ClientSettings
) -> None:
    """One job of 200 inputs in units of 10, on 2 workers; `sluice status` and `stats` read it."""
    inputs = [f"data:,big%20{i}" for i in range(200)]
    job_id = await on_cluster.enqueue("text-stats", inputs)
    cluster_workers.many(2, unit_inputs=10)
    status = await on_cluster.wait(job_id, timeout_s=90)
    assert status.state == JobState.COMPLETE, status
    assert (status.total, status.stored) == (200, 200)
    records = [r async for r in on_cluster.results(job_id)]
    assert [r.index for r in records] == list(range(200))
    assert sum(w.units_started() for w in cluster_workers.started) == 20
    env = {
        **worker_env(cluster_settings.redis_url or "", cluster_settings.namespace, Path("/")),
        "SLUICE_REDIS_CLUSTER": "true",
    }
    done = await asyncio.to_thread(sluice, env, "status", job_id)
    assert done.returncode == 0, done.stderr
    assert "complete" in done.stdout
    stats = await asyncio.to_thread(sluice, env, "stats")
    assert stats.returncode == 0, stats.stderr
    no_crossslot(cluster_workers)


async def test_control_and_events_across_shards(on_cluster: Client) -> None:
    """No worker: cancel and retry find each job's shard on its node; `Client.events` merges
    every shard's stream; the failed list and the job listing read every shard."""
    since = await on_cluster._start_id("$")
    ids = await on_cluster.enqueue_many("text-stats", [[f"data:,c{i}"] for i in range(20)])
    for job_id in ids:
        assert await on_cluster.cancel(job_id)
        assert (await on_cluster.status(job_id)).state == JobState.CANCELLED
    for job_id in ids[:10]:
        assert await on_cluster.retry(job_id) is None
    assert (await on_cluster.stats()).ready == 10
    kinds: dict[str, list[str]] = {}
    async for event in on_cluster.events(since=since, follow=False):
        kinds.setdefault(event.job, []).append(str(event.type))
    assert {i: kinds.get(i, [])[:2] for i in ids} == {i: ["enqueued", "cancelled"] for i in ids}
    assert all(kinds[i][2:] == ["retried"] for i in ids[:10])
    listed = await on_cluster.jobs()
    assert {j.job_id for j in listed.jobs} >= set(ids)
