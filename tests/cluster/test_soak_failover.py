"""Soak on a real Valkey Cluster (3 primaries, a replica each): six jobs of 300 inputs
while the primaries fail over again and again (CLUSTER FAILOVER on a replica, each primary
in turn). Run by `make soak` (marked `soak`). Every job completes with exactly one record
per input, and the workers started at the beginning finish it: none exits, none is restarted.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from producer import Client, ClientSettings, JobState
from tests.conftest import worker_env
from tests.support.cluster import Cluster
from tests.support.soak import sleepy_jobs
from tests.support.workers import WorkerFactory

JOBS = 6
INPUTS_PER_JOB = 300
FAILOVER_EVERY_S = 3.0
SECONDS_PER_INPUT = 0.1  # about 45 s of work for the 4 pool processes
DURATION_S = float(os.environ.get("SLUICE_CLUSTER_SOAK_S", "90"))
SETTINGS = {
    "pipelines": "tests.sample_pipelines",
    "pool_size": 2,
    "unit_inputs": 20,
    "lease_s": 3,  # a claim whose reply a failover lost is free again soon
    "max_tries": 1000,  # failovers are not the jobs' fault
}


@pytest.mark.soak
@pytest.mark.timeout(DURATION_S + 240)
async def test_soak_through_cluster_failovers_loses_nothing(
    make_cluster: Callable[..., Cluster], namespace: str, tmp_path: Path
) -> None:
    cluster = make_cluster(replicas=1)
    settings = ClientSettings(
        redis_url=cluster.url, redis_cluster=True, namespace=namespace, _env_file=None
    )
    env = {**worker_env(cluster.url, namespace, tmp_path), "SLUICE_REDIS_CLUSTER": "true"}
    factory = WorkerFactory(
        base_env=env, log_dir=tmp_path, redis_url=cluster.url, namespace=namespace
    )
    failovers = 0
    try:
        async with Client(settings) as client:
            jobs = await sleepy_jobs(client, JOBS, INPUTS_PER_JOB, SECONDS_PER_INPUT)
            started = factory.many(2, **SETTINGS)
            start = time.monotonic()
            while time.monotonic() - start < DURATION_S:
                if all([(await client.status(j)).state.is_final for j in jobs]):
                    break
                await asyncio.sleep(FAILOVER_EVERY_S)
                primary = cluster.primary_nodes()[failovers % 3]
                await asyncio.to_thread(cluster.failover, cluster.replica_of(primary))
                failovers += 1
            statuses = [await client.wait(j, timeout_s=120) for j in jobs]
            records = {j: await client.redis.hlen(client.keys.results(j)) for j in jobs}
    except BaseException:
        for worker in factory.started:
            print(worker.log()[-4000:])
        raise
    finally:
        running = [w.process is not None and w.process.poll() is None for w in factory.started]
        factory.stop_all()
    expected = JOBS * INPUTS_PER_JOB
    kept, stored = sum(records.values()), sum(s.stored for s in statuses)
    print(
        f"\ncluster soak: {JOBS} jobs × {INPUTS_PER_JOB} inputs = {expected}; failovers "
        f"{failovers}; attempts {sum(s.attempts for s in statuses)}; records {kept}; stored "
        f"counter {stored}; lost {expected - kept}; counted twice {stored - kept}"
    )
    assert all(s.state == JobState.COMPLETE for s in statuses), statuses
    assert records == dict.fromkeys(jobs, INPUTS_PER_JOB), "lost records"
    assert stored == kept, "records counted twice"
    assert failovers >= 3
    assert len(started) == len(factory.started) == 2 and all(running), "a worker stopped"
    for worker in started:
        assert "CROSSSLOT" not in worker.log()
