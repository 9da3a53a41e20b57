"""Redis Sentinel failovers mid-job: a primary, a replica and three sentinels (Debian's
redis-server and redis-sentinel), real workers and a client pointed at the sentinels.

Both failovers run with SLUICE_REDIS_WAIT_REPLICAS=1: replication is asynchronous, and a
failover drops whatever the old primary took that no replica had (see the README's
Guarantees). Every check that counts records reads the primary the sentinels name once the
group has settled, so nothing a demoted primary still held is counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from producer import Client, ClientSettings, JobState, ServerUnavailable
from producer.keys import Keys
from tests.conftest import worker_env
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.sentinel import MASTER_NAME, SentinelGroup, sentinel_unavailable_reason
from tests.support.servers import Server
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.skipif(
    sentinel_unavailable_reason() is not None, reason=str(sentinel_unavailable_reason())
)

TOTAL = 300
WORKER_SETTINGS = {
    "pipelines": "tests.sample_pipelines",
    "pool_size": 1,
    "lease_s": 3,  # a claim whose reply a failover lost is free again soon
    "retry_backoff_s": 0.2,
    "redis_wait_replicas": 1,
    "redis_wait_timeout_ms": 200,
}


@pytest.fixture(scope="module")
def group(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelGroup]:
    """One primary, one replica and three sentinels for the module, failed over by tests."""
    started = SentinelGroup(tmp_path_factory.mktemp("sentinel")).start()
    yield started
    started.stop()


@pytest.fixture
def settled(group: SentinelGroup) -> SentinelGroup:
    """The group, ready for a failover (the last test's may still be settling)."""
    group.wait_settled()
    return group


def sentinel_env(group: SentinelGroup, namespace: str, tmp_path: Path) -> dict[str, str]:
    env = worker_env("unused", namespace, tmp_path)
    del env["SLUICE_REDIS_URL"]
    env.update(SLUICE_REDIS_SENTINELS=group.addresses, SLUICE_REDIS_MASTER_NAME=MASTER_NAME)
    return env


@pytest.fixture
def sentinel_workers(
    settled: SentinelGroup, namespace: str, tmp_path: Path
) -> Iterator[WorkerFactory]:
    """Real workers that find the primary through the sentinels."""
    factory = WorkerFactory(
        base_env=sentinel_env(settled, namespace, tmp_path),
        log_dir=tmp_path,
        redis_url=settled.primary().url,
        namespace=namespace,
    )
    yield factory
    factory.stop_all()


@pytest.fixture
async def client(settled: SentinelGroup, namespace: str, tmp_path: Path) -> AsyncIterator[Client]:
    """A client that finds the primary through the sentinels and waits for one replica."""
    settings = ClientSettings(
        redis_sentinels=settled.addresses,
        redis_master_name=MASTER_NAME,
        namespace=namespace,
        data_dir=tmp_path / "data",
        redis_wait_replicas=1,
        enqueue_timeout_s=20,
        _env_file=None,
    )
    async with Client(settings) as c:
        yield c


async def status_of(client: Client, job_id: str) -> JobState | None:
    """The job's state, or None while no server answers (mid-switch)."""
    try:
        return (await client.status(job_id)).state
    except ServerUnavailable:
        return None


async def enqueue_through(client: Client, stop: asyncio.Event) -> list[str | ServerUnavailable]:
    """Enqueue one-input jobs one after another until ``stop``: what each enqueue gave."""
    outcomes: list[str | ServerUnavailable] = []
    while not stop.is_set():
        try:
            outcomes.append(await client.enqueue("text-stats", [f"data:,{len(outcomes)}"]))
        except ServerUnavailable as exc:
            outcomes.append(exc)
        await asyncio.sleep(0.05)
    return outcomes


async def start_job(client: Client) -> str:
    """A job of TOTAL inputs, once some of its records are stored."""
    inputs = [data_uri(f"input {i}".encode()) for i in range(TOTAL)]
    job_id = await client.enqueue("test-sleep", inputs, options={"seconds": 0.02})

    async def some_stored() -> bool:
        return (await client.status(job_id)).stored >= 30

    await poll(some_stored, 60)
    return job_id


def check_on_primary(group: SentinelGroup, keys: Keys, job_id: str, total: int) -> None:
    """The primary the settled group names holds exactly one record per input, all counted."""
    group.wait_settled()
    with redis.Redis(port=group.primary().port) as primary:
        fields = {int(f) for f in primary.hkeys(keys.results(job_id))}
        status = primary.hgetall(keys.job(job_id))
    assert fields == set(range(total)), f"{total - len(fields)} records missing"
    assert (status[b"state"], int(status[b"stored"])) == (b"complete", total)


async def switch_mid_job(
    group: SentinelGroup, client: Client, workers: WorkerFactory, failover: str
) -> None:
    """Run a job, fail the primary over mid-job (``failover``: "command" or "kill"),
    enqueue all the while, and check that nothing was lost and no worker restarted."""
    started = [workers(**WORKER_SETTINGS) for _ in range(2)]
    job_id = await start_job(client)
    old = group.primary()
    stop = asyncio.Event()
    enqueuing = asyncio.create_task(enqueue_through(client, stop))
    if failover == "command":
        group.failover()
    else:
        victim = group.kill_primary()
        await asyncio.to_thread(group.wait_for_new_primary, victim)
        await asyncio.to_thread(group.restart_as_replica, victim)  # a replica to WAIT for
    await asyncio.to_thread(group.wait_for_new_primary, old)

    async def job_complete() -> bool:
        return await status_of(client, job_id) == JobState.COMPLETE

    await poll(job_complete, 90, step_s=0.2)
    stop.set()
    outcomes = await enqueuing
    check_on_primary(group, client.keys, job_id, TOTAL)
    enqueued = [o for o in outcomes if isinstance(o, str)]
    assert enqueued, outcomes  # the switch is short: most enqueues around it succeed
    for each in enqueued:
        status = await client.wait(each, timeout_s=60)
        assert (status.state, status.stored) == (JobState.COMPLETE, 1)
    assert all(w.process is not None and w.process.poll() is None for w in started)


async def test_sentinel_failover_mid_job_loses_nothing(
    settled: SentinelGroup, client: Client, sentinel_workers: WorkerFactory
) -> None:
    """SENTINEL FAILOVER mid-job: the job completes with exactly one record per input on the
    new primary, enqueues around the switch succeed or raise ServerUnavailable, and the
    workers go on without a restart."""
    await switch_mid_job(settled, client, sentinel_workers, "command")


async def test_primary_killed_mid_job_loses_nothing(
    settled: SentinelGroup, client: Client, sentinel_workers: WorkerFactory
) -> None:
    """The primary SIGKILLed mid-job (restarted later as a replica): the same."""
    await switch_mid_job(settled, client, sentinel_workers, "kill")


async def test_writes_leave_a_demoted_primary_at_the_switch(
    settled: SentinelGroup, namespace: str
) -> None:
    """After SENTINEL FAILOVER a client writes to the new primary as soon as the sentinels
    switch, while the old one, not yet reconfigured, would still take (and later lose) them."""
    settings = ClientSettings(
        redis_sentinels=settled.addresses, redis_master_name=MASTER_NAME, _env_file=None
    )
    async with Client(settings) as client:
        key = f"{namespace}:probe"
        await client.redis.set(key, 0)  # a connection to the old primary, kept in the pool
        old = settled.primary()
        settled.failover()
        new = await asyncio.to_thread(settled.wait_for_new_primary, old)

        async def reaches_new() -> bool:
            try:
                await client.redis.incr(key)
            except redis.RedisError:  # the connection the switch closed
                return False
            return bool(int(new_value(new, key)))

        await poll(reaches_new, 5)
        assert old.role() == "master"  # the old primary still took writes: not demoted yet


def new_value(server: Server, key: str) -> bytes:
    with redis.Redis(port=server.port) as direct:
        return direct.get(key) or b"0"
