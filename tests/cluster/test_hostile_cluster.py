"""Trying to break Sluice on a real 3-primary cluster as an attacker and an operator would:
ids that are not ids and bytes that are not UTF-8, inputs whose errors cannot be printed, a
worker frozen past its lease, a primary restarted mid-job, a producer with another
SLUICE_SHARDS. Each fails alone, with the reason, and nothing else is touched."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from producer import Client, ClientSettings, JobState, JobStatus
from producer.client.stored_ids import raw_key
from producer.contract.errors import InvalidJob
from tests.cluster.test_failover import run_job_through
from tests.cluster.test_on_cluster import no_crossslot
from tests.cluster.test_sharded import refuses_another_count
from tests.expected import data_uri
from tests.fleet.test_stale import STALE, paused_and_taken_over
from tests.support.cluster import Cluster
from tests.support.cluster_slots import key_slot
from tests.support.http_server import HttpServer
from tests.support.scrape import wait_until
from tests.support.workers import WorkerFactory

# ids a raw producer might queue: not UTF-8, hash-tag braces, another job's key, a path,
# spaces, far too long, a unit member of nothing
BAD_IDS = [b"bad\xff\xfe", b"x{y}", b"}{", b"victim:results", b"../../etc", b"a b", b"x" * 300]


async def test_ids_and_bytes_that_are_not_ids_fail_alone(
    on_cluster: Client, cluster_workers: WorkerFactory
) -> None:
    """The Client refuses such ids by name; queued raw into a shard, each is refused into
    that shard's failed set with the reason, its envelope deleted; a job beside them whose
    inputs are not UTF-8 and whose transform raises what cannot be printed completes."""
    for bad in ("x{y}", "a:b", "../x", "a b", "x" * 300, ""):
        with pytest.raises(InvalidJob, match="job id"):
            await on_cluster.status(bad)
        with pytest.raises(InvalidJob, match="job id"):
            await on_cluster.enqueue("text-stats", ["data:,a"], job_id=bad)
    shard = on_cluster.keys.shard_keys(5)
    redis = on_cluster.redis
    envelope = orjson.dumps(
        {"t": 1, "f": "sluice", "a": [], "k": {"pipeline": "test-hostile", "inputs": ["data:,x"]}}
    )
    now = int(time.time() * 1000) - 1000
    for raw in BAD_IDS:
        await redis.set(raw_key(shard.arq_job, raw), envelope)
        await redis.zadd(shard.queue, {raw: now})
    words = [b"fine", b"unprintable", b"worse", b"surrogate", b"\xff\xfe not utf-8", b"long"]
    job_id = await on_cluster.enqueue("test-hostile", [data_uri(w) for w in words])
    cluster_workers(pipelines="tests.hostile_pipelines", transform_attempts=1)
    status = await on_cluster.wait(job_id, timeout_s=60)
    assert (status.state, status.stored) == (JobState.COMPLETE, len(words)), status
    records = [r async for r in on_cluster.results(job_id)]
    assert [r.ok for r in records] == [True, False, False, False, True, False]
    assert "unprintable UnprintableError" in (records[1].error or "")
    assert records[4].result == {"echo": "\ufffd\ufffd not utf-8"}

    async def all_refused() -> bool:
        return await redis.hlen(shard.refused) == len(BAD_IDS)

    await wait_until(all_refused)
    assert set(await redis.zrange(shard.failed, 0, -1)) == set(BAD_IDS)
    assert await redis.zcard(shard.queue) == 0
    for raw in BAD_IDS:
        assert await redis.exists(raw_key(shard.arq_job, raw)) == 0
    no_crossslot(cluster_workers)


async def test_a_worker_paused_past_its_lease_on_the_cluster(
    on_cluster: Client, cluster_workers: WorkerFactory, http: HttpServer
) -> None:
    """Frozen (SIGSTOP) past its lease while another takes its unit over, then resumed: the
    job completes once, by the other worker, one record per input; the late worker's
    ending overwrites nothing."""
    job, a, _b = await paused_and_taken_over(on_cluster, cluster_workers, http)
    a.signal(signal.SIGCONT)
    status = await on_cluster.wait(job, timeout_s=120)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 300, 0)
    assert (status.worker, status.attempts) == ("b", 2)

    async def noticed() -> bool:
        return "lease lost" in a.log()

    await wait_until(noticed)
    await asyncio.sleep(0.5)  # A's late writes, were any let through, would land now
    after = await on_cluster.status(job)
    assert (after.state, after.worker, after.stored) == (JobState.COMPLETE, "b", 300)
    assert await on_cluster.redis.hlen(on_cluster.keys.results(job)) == 300
    assert STALE["lease_s"] == 1
    no_crossslot(cluster_workers)


async def test_a_primary_restarted_mid_job(
    make_cluster: Callable[..., Cluster], namespace: str, tmp_path: Path
) -> None:
    """The primary of the job's shard stopped (it saves) and started again a second later,
    no replica to take over: workers and client wait for it, and the job completes with
    one record per input."""
    cluster = make_cluster()

    def restart(client: Client, job_id: str) -> None:
        primary = cluster.owner(key_slot(cluster, client.keys.job(job_id)))
        cluster.stop_node(primary)
        time.sleep(1.0)
        cluster.restart(primary)

    def going_on(status: JobStatus) -> bool:
        return status.state in (JobState.IN_PROGRESS, JobState.QUEUED)

    await run_job_through(cluster, namespace, tmp_path, restart, going_on)


async def test_a_producer_with_another_shard_count_is_refused(
    on_cluster: Client, cluster_settings: ClientSettings, cluster_workers: WorkerFactory
) -> None:
    """The fleet runs the default 16 shards; a producer or worker set to 4 stops, naming
    SLUICE_SHARDS and the count to use."""
    await refuses_another_count(on_cluster, cluster_settings, cluster_workers, 4)


async def test_an_envelope_that_is_not_utf8_fails_its_job_alone(
    on_cluster: Client, cluster_workers: WorkerFactory
) -> None:
    """A raw job in its right shard whose envelope holds bytes that are not UTF-8 (in its
    pipeline name, and in an input) ends failed with a reason; the next job runs."""
    redis, keys = on_cluster.redis, on_cluster.keys
    now = int(time.time() * 1000) - 1000
    bodies = {
        "raw-bad-input": b'"k":{"pipeline":"text-stats","inputs":["data:,\xff\xfe"]}',
        "raw-bad-name": b'"k":{"pipeline":"text-\xffstats","inputs":["data:,a"]}',
    }
    for job_id, body in bodies.items():
        envelope = b'{"t":1,"f":"sluice","a":[],' + body + b',"et":1}'
        await redis.set(keys.arq_job(job_id), envelope)
        await redis.zadd(keys.for_job(job_id).queue, {job_id: now})
    cluster_workers()
    for job_id in bodies:
        status = await on_cluster.wait(job_id, timeout_s=60)
        assert status.state == JobState.FAILED, status
        assert "not valid UTF-8" in (status.error or ""), status.error
    after = await on_cluster.enqueue("text-stats", ["data:,after"])
    assert (await on_cluster.wait(after, timeout_s=60)).state == JobState.COMPLETE
    no_crossslot(cluster_workers)
