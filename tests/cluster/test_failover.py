"""Faults in the middle of a job on a real Valkey Cluster: a primary failover (3 primaries, a
replica each), and the job's shard slot moved to another primary (a resharding). The
workers and the client follow, and the job completes with exactly one record per input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from producer import Client, ClientSettings, JobState, JobStatus
from tests.conftest import worker_env
from tests.support.cluster import Cluster
from tests.support.cluster_slots import key_slot, migrate_slot
from tests.support.workers import WorkerFactory

INPUTS = 300


async def run_job_through(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    fault: Callable[[Client, str], None],
    after: Callable[[JobStatus], bool] = lambda s: s.state == JobState.IN_PROGRESS,
) -> None:
    """Start a job of INPUTS slow inputs on 2 workers, call ``fault`` (in a thread) once a
    quarter is stored, check ``after`` of its status then, and check the job completes with
    one record per input."""
    settings = ClientSettings(
        redis_url=cluster.url, redis_cluster=True, namespace=namespace, _env_file=None
    )
    env = {**worker_env(cluster.url, namespace, tmp_path), "SLUICE_REDIS_CLUSTER": "true"}
    factory = WorkerFactory(
        base_env=env, log_dir=tmp_path, redis_url=cluster.url, namespace=namespace
    )
    try:
        async with Client(settings) as client:
            job_id = await client.enqueue(
                "test-sleep",
                [f"data:,{i}" for i in range(INPUTS)],
                options={"seconds": 0.03},
            )
            factory.many(2, pipelines="tests.sample_pipelines", unit_inputs=20, pool_size=2)
            deadline = time.monotonic() + 60
            while (await client.status(job_id)).stored < INPUTS // 4:
                assert time.monotonic() < deadline, "the job never got going"
                await asyncio.sleep(0.05)
            await asyncio.to_thread(fault, client, job_id)
            assert after(then := await client.status(job_id)), then
            status = await client.wait(job_id, timeout_s=40)
            assert status.state == JobState.COMPLETE, status
            assert (status.total, status.stored) == (INPUTS, INPUTS)
            records = [r async for r in client.results(job_id)]
            assert [r.index for r in records] == list(range(INPUTS))
            assert await client.redis.hlen(client.keys.results(job_id)) == INPUTS
    except BaseException:
        for worker in factory.started:
            print(worker.log()[-4000:])
        raise
    finally:
        factory.stop_all()
    for worker in factory.started:
        assert "CROSSSLOT" not in worker.log()


async def test_a_failover_mid_job(
    make_cluster: Callable[..., Cluster], namespace: str, tmp_path: Path
) -> None:
    cluster = make_cluster(replicas=1)

    def fail_over(client: Client, job_id: str) -> None:
        primary = cluster.owner(key_slot(cluster, client.keys.job(job_id)))
        cluster.failover(cluster.replica_of(primary))

    await run_job_through(cluster, namespace, tmp_path, fail_over)


async def test_the_jobs_slot_moved_mid_job(
    make_cluster: Callable[..., Cluster], namespace: str, tmp_path: Path
) -> None:
    cluster = make_cluster()

    def reshard(client: Client, job_id: str) -> None:
        slot = key_slot(cluster, client.keys.job(job_id))
        target = next(n for n in cluster.primary_nodes() if n is not cluster.owner(slot))
        assert migrate_slot(cluster, slot, target) > 0

    await run_job_through(cluster, namespace, tmp_path, reshard)
