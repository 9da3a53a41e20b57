"""The sharded layout (SLUICE_SHARDS > 1) on one plain server: jobs spread over the shards'
hash-tagged keys and every part finds them from the id alone; SLUICE_SHARDS=1 keeps every
key name as it always was; the fleet refuses a process with another shard count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from producer import Client, ClientSettings, JobState
from producer.contract.errors import ConfigError
from producer.contract.keys import Keys, shard_of
from producer.redis.typed import Redis
from tests.support.scrape import key, scrape, wait_until
from tests.support.servers import free_port
from tests.support.workers import WorkerFactory
from worker.lifecycle.claim import Claimer

SHARDS = 4


@pytest.fixture
async def sharded(settings: ClientSettings) -> AsyncIterator[Client]:
    async with Client(settings.model_copy(update={"shards": SHARDS})) as c:
        yield c


def test_one_shard_keeps_every_key_name() -> None:
    """SLUICE_SHARDS=1 (the default): the names the wire format and the tests know."""
    k = Keys("sluice")
    assert (k.queue, k.leases, k.events, k.wake_for("q")) == (
        "sluice:queue",
        "sluice:leases",
        "sluice:events",
        "sluice:wake:q",
    )
    assert (k.job("a"), k.results("a"), k.arq_job("a"), k.arq_result("a")) == (
        "sluice:job:a",
        "sluice:job:a:results",
        "arq:job:a",
        "arq:result:a",
    )
    assert (
        k.for_job("a") is k and k.every_shard() == [k] and k.fleet_wake_for("q") == k.wake_for("q")
    )


def test_sharded_keys_share_their_jobs_hash_tag() -> None:
    k = Keys("ns", shards=SHARDS)
    s = shard_of("job-1", SHARDS)
    tag = f"{{ns.{s}}}"
    assert k.job("job-1") == f"{tag}:job:job-1"
    assert k.arq_job("job-1") == f"{tag}:arq:job:job-1"
    assert k.for_job("job-1").queue == f"{tag}:queue"
    assert k.workers == "ns:workers" and k.pipelines == "ns:pipelines"
    with pytest.raises(ValueError, match="shard_keys"):
        _ = k.queue
    with pytest.raises(ValueError, match="SLUICE_SHARDS"):
        Keys("ns", shards=0)


async def test_jobs_on_every_shard_complete(
    sharded: Client, workers: WorkerFactory, redis: Redis
) -> None:
    """enqueue_many over several shards, 2 workers: each job complete, one record per input,
    readable by id; stats and events count every shard."""
    jobs = [[f"data:,w{j}%20x{i}" for i in range(3 + j % 4)] for j in range(24)]
    since = await sharded._start_id("$")
    ids = await sharded.enqueue_many("text-stats", jobs)
    shards = {shard_of(i, SHARDS) for i in ids}
    assert len(shards) >= 3, shards
    keys = sharded.keys
    for i in ids:  # each job's envelope and queue entry are in its own shard
        assert await redis.hget(keys.job(i), "envelope") is not None
        assert keys.job(i).startswith(f"{{{keys.namespace}.{shard_of(i, SHARDS)}}}:")
        assert await redis.zscore(keys.for_job(i).queue, i) is not None
    stats = await sharded.stats()
    assert stats.ready == len(ids)
    workers.many(2, shards=SHARDS)
    for job_id, inputs in zip(ids, jobs, strict=True):
        status = await sharded.wait(job_id, timeout_s=60)
        assert status.state == JobState.COMPLETE, status
        assert (status.total, status.stored) == (len(inputs), len(inputs))
        records = [r async for r in sharded.results(job_id)]
        assert [r.input for r in records] == inputs
    stats = await sharded.stats()
    assert (stats.ready, stats.in_progress, stats.workers) == (0, 0, 2)
    seen: dict[str, set[str]] = {}
    async for event in sharded.events(since=since, follow=False):
        seen.setdefault(event.job, set()).add(str(event.type))
    assert set(ids) <= set(seen)
    assert all({"enqueued", "started", "completed"} <= seen[i] for i in ids)


async def test_cancel_and_retry_by_id(sharded: Client) -> None:
    """No worker: cancel finds a queued job's shard from its id; retry queues it again there."""
    ids = await sharded.enqueue_many("text-stats", [["data:,a"], ["data:,b"], ["data:,c"]])
    for job_id in ids:
        assert await sharded.cancel(job_id)
        assert (await sharded.status(job_id)).state == JobState.CANCELLED
        assert await sharded.retry(job_id) is None
        assert (await sharded.status(job_id)).state == JobState.QUEUED
    assert (await sharded.stats()).ready == len(ids)


async def test_a_shard_count_mismatch_refuses_to_start(
    sharded: Client, settings: ClientSettings, workers: WorkerFactory
) -> None:
    await refuses_another_count(sharded, settings, workers, 2)


async def refuses_another_count(
    fleet: Client, settings: ClientSettings, workers: WorkerFactory, other_count: int
) -> None:
    """Once ``fleet`` has enqueued, a client and a worker with ``other_count`` shards stop,
    naming SLUICE_SHARDS and the fleet's count."""
    await fleet.enqueue("text-stats", ["data:,a"])  # records the fleet's SLUICE_SHARDS
    async with Client(settings.model_copy(update={"shards": other_count})) as other:
        with pytest.raises(ConfigError, match=f"SLUICE_SHARDS={fleet.keys.shards}"):
            await other.enqueue("text-stats", ["data:,a"])
    worker = workers(shards=other_count, wait=False)
    assert worker.wait(30) == 1
    assert "SLUICE_SHARDS" in worker.log()


def test_cluster_needs_a_url(settings: ClientSettings) -> None:
    with pytest.raises(ValueError, match="SLUICE_REDIS_URL"):
        ClientSettings(redis_cluster=True, _env_file=None)


def test_cluster_refuses_what_it_cannot_do(settings: ClientSettings) -> None:
    """Sentinels, a Unix socket, or WAIT for replicas with SLUICE_REDIS_CLUSTER: named."""
    cases: list[tuple[dict[str, Any], str]] = [
        ({"redis_url": "unix:///tmp/r.sock"}, "SLUICE_REDIS_URL"),
        ({"redis_sentinels": ["h:26379"], "redis_master_name": "m"}, "SLUICE_REDIS_SENTINELS"),
        ({"redis_url": "redis://h:6379", "redis_wait_replicas": 1}, "SLUICE_REDIS_WAIT_REPLICAS"),
    ]
    for given, named in cases:
        with pytest.raises(ValueError, match=named):
            ClientSettings(redis_cluster=True, _env_file=None, **given)
    chosen = ClientSettings(redis_url="redis://h:6379", redis_cluster=True, _env_file=None)
    assert (chosen.keys.shards, chosen.keys.sharded) == (16, True)
    assert ClientSettings(redis_url="redis://h:6379", _env_file=None).keys.sharded is False


async def test_four_workers_on_sixteen_shards_all_find_work(
    settings: ClientSettings, workers: WorkerFactory
) -> None:
    """32 one-input jobs of 0.4 s over 16 shards, 4 ready workers holding two units each:
    every worker runs several (claims go from shard to shard; none waits on an empty one).
    The workers are ready first: one that starts seconds after the others on a loaded machine
    would find the backlog gone, which says nothing about the claims."""
    fleet = workers.many(
        4, shards=16, pipelines="tests.sample_pipelines", max_jobs=2, poll_delay_s=0.05
    )
    async with Client(settings.model_copy(update={"shards": 16})) as client:
        jobs = await client.enqueue_many(
            "test-sleep", [[f"data:,{i}"] for i in range(32)], options={"seconds": 0.4}
        )
        assert len({shard_of(j, 16) for j in jobs}) >= 10
        for job_id in jobs:
            assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
    took = [worker.units_started() for worker in fleet]
    assert sum(took) == 32 and all(n >= 3 for n in took), took


async def test_metrics_count_every_shard(settings: ClientSettings, workers: WorkerFactory) -> None:
    """The queue gauges a worker exports (what KEDA's Prometheus trigger reads) are the sum
    over the shards: deferred jobs wait in several shards."""
    port = free_port()
    workers(shards=SHARDS, metrics_port=port)
    async with Client(settings.model_copy(update={"shards": SHARDS})) as client:
        jobs = [[f"data:,{i}"] for i in range(12)]
        ids = await client.enqueue_many("text-stats", jobs, defer_s=600)
        assert len({shard_of(i, SHARDS) for i in ids}) >= 3

        async def counted() -> bool:
            samples = await scrape(port)
            return samples.get(key("sluice_queue_jobs", state="deferred")) == 12

        await wait_until(counted)


async def test_events_of_two_shards_with_one_id_are_not_lost(sharded: Client, redis: Redis) -> None:
    """Each shard's stream makes its own ids, so shard 1 may write an entry with the very id
    a follower was just given from shard 0's: the follower still gets both, in shard order.
    (Ids a little ahead of the server's clock stand for two writes in one millisecond.)"""
    seconds, micros = await redis.time()
    at = f"{seconds * 1000 + micros // 1000 + 1500}-0"
    first, second = sharded.keys.shard_keys(0), sharded.keys.shard_keys(1)
    got: list[str] = []

    async def follow() -> None:
        async for event in sharded.events(since="0"):
            got.append(event.job)
            if len(got) == 2:
                return

    reader = asyncio.create_task(follow())
    await redis.xadd(first.events, {"job": "in-shard-0", "type": "enqueued"}, id=at)
    await asyncio.sleep(0.5)  # the follower has read shard 0's entry, not yet due
    await redis.xadd(second.events, {"job": "in-shard-1", "type": "enqueued"}, id=at)
    await asyncio.wait_for(reader, 10)
    assert got == ["in-shard-0", "in-shard-1"]
    assert [e.job async for e in sharded.events(since="0", follow=False)] == got


async def script_calls(redis: Redis) -> int:
    """Scripts the server has run (EVALSHA and EVAL), by its command statistics."""
    stats = await redis.info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))


async def test_an_idle_claimer_rests_empty_shards_until_woken(
    settings: ClientSettings, redis: Redis
) -> None:
    """On 16 empty shards, 40 claims in a row make far fewer than 16 script calls each; a
    job enqueued meanwhile is found once its shard's rest ends; in the shard of a job the
    worker holds units of, or after a wake token, at once."""
    keys = Keys(settings.namespace, shards=16)
    claimer = Claimer(redis, keys, "w-idle", 30, unit_inputs=10, result_ttl_s=60)
    before = await script_calls(redis)
    for _ in range(40):
        assert (await claimer.claim(room=10, most=2, aborts_since_ms=0)).units == []
    calls = await script_calls(redis) - before
    assert 16 <= calls <= 40 * 16 // 4, calls
    async with Client(settings.model_copy(update={"shards": 16})) as client:
        quiet = await client.enqueue("text-stats", ["data:,quiet"])
        found: list[str] = []
        for _ in range(200):  # no wake read: found once its shard's rest is over
            found += [u.job_id for u in (await claimer.claim(10, 2, 0)).units]
            if found:
                break
            await asyncio.sleep(0.02)
        assert found == [quiet]
        for _ in range(4):  # every shard empty again: their rests grow
            await claimer.claim(10, 2, 0)
            await asyncio.sleep(0.06)
        ids = (f"same-{i}" for i in range(1000))  # an id in the shard of the job it holds
        same = next(i for i in ids if shard_of(i, 16) == shard_of(quiet, 16))
        await client.enqueue("text-stats", ["data:,same"], job_id=same)
        held = await claimer.claim(10, 2, 0, holding=[quiet])  # that shard is not rested
        assert [u.job_id for u in held.units] == [same]
        woke = await client.enqueue("text-stats", ["data:,woke"])
        claimer.woken()
        assert [u.job_id for u in (await claimer.claim(10, 2, 0)).units] == [woke]


async def test_from_now_on_misses_no_shard_behind_another(sharded: Client, redis: Redis) -> None:
    """Shard 0 holds an entry ahead of the server's clock (as a node whose clock runs ahead
    would write): a follower from "$" still gets what shard 1 writes after it started."""
    seconds, micros = await redis.time()
    ahead = f"{seconds * 1000 + micros // 1000 + 1500}-0"
    first = sharded.keys.shard_keys(0).events
    await redis.xadd(first, {"job": "ahead", "type": "enqueued"}, id=ahead)
    got: list[str] = []

    async def follow() -> None:
        async for event in sharded.events():
            got.append(event.job)
            if "after" in got:
                return

    reader = asyncio.create_task(follow())
    await asyncio.sleep(0.3)  # the follower has started
    await redis.xadd(sharded.keys.shard_keys(1).events, {"job": "after", "type": "enqueued"})
    await asyncio.wait_for(reader, 10)
    assert got[-1] == "after"
