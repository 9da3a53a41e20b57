"""Redis Sentinel failovers mid-job: a primary, a replica and three sentinels (Debian's
redis-server and redis-sentinel), real workers and a client pointed at the sentinels.

Both failovers run with SLUICE_REDIS_WAIT_REPLICAS=1: replication is asynchronous, and a
failover drops whatever the old primary took that no replica had (see the README's
Guarantees). Every check that counts records reads the primary the sentinels name once the
group has settled, so nothing a demoted primary still held is counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from aiohttp import web

from producer import Client, ClientSettings, JobState, ServerUnavailable, SyncClient
from producer.contract.keys import Keys
from producer.contract.settings import load_settings
from producer.dashboard.app import create_app
from producer.dashboard.settings import DashboardSettings
from tests.conftest import worker_env
from tests.expected import data_uri
from tests.faults.conftest import poll
from tests.support.scrape import get, scrape
from tests.support.sentinel import (
    MASTER_NAME,
    Secured,
    SentinelGroup,
    sentinel_unavailable_reason,
)
from tests.support.servers import Server, free_port
from tests.support.soak import kill_one, sleepy_jobs
from tests.support.tls import make_certificates, tls_unavailable_reason
from tests.support.workers import WorkerFactory, WorkerProcess

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


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_every_part_finds_the_primary_through_the_sentinels(
    settled: SentinelGroup, client: Client, sentinel_workers: WorkerFactory, tmp_path: Path
) -> None:
    """A worker, the async and sync clients, the CLI, `--check`, the worker's metrics and the
    dashboard all reach the primary given only the sentinels."""
    port = free_port()
    sentinel_workers(metrics_port=port)
    job_id = await client.enqueue("text-stats", ["data:,a b c"])
    assert (await client.wait(job_id, timeout_s=30)).state == JobState.COMPLETE

    def sync_round_trip() -> JobState:
        with SyncClient(client.settings) as sync:
            return sync.wait(sync.enqueue("text-stats", ["data:,d"]), timeout_s=30).state

    assert await asyncio.to_thread(sync_round_trip) == JobState.COMPLETE
    env = sentinel_env(settled, client.settings.namespace, tmp_path)
    stats = await asyncio.to_thread(run, env, "-m", "producer", "stats", "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["workers"] == 1, stats.stderr
    checked = await asyncio.to_thread(run, env, "-m", "worker", "--check")
    assert checked.returncode == 0, checked.stderr
    assert (await get(port, "/readyz"))[0] == 200
    assert (await scrape(port))["sluice_workers_live{}"] == 1
    settings = DashboardSettings(**client.settings.model_dump(), _env_file=None)
    runner = web.AppRunner(create_app(settings, sample_s=0.5), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        status, body = await get(runner.addresses[0][1], "/api/stats")
        assert status == 200 and json.loads(body)["workers"] == 1, body
    finally:
        await runner.cleanup()


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


SOAK_JOBS = 4
SOAK_INPUTS = 1500
SOAK_S = float(os.environ.get("SLUICE_SOAK_S", "150"))
SOAK_FAILOVER_EVERY_S = 20.0
SOAK_KILL_EVERY_S = 4.0


async def fail_over(group: SentinelGroup, how: str) -> None:
    """One failover, by SENTINEL FAILOVER or by SIGKILL of the primary (restarted later as a
    replica), after the last one has settled."""
    await asyncio.to_thread(group.wait_settled)
    if how == "command":
        group.failover()
        return
    victim = group.kill_primary()
    await asyncio.to_thread(group.wait_for_new_primary, victim)
    await asyncio.to_thread(group.restart_as_replica, victim)


@pytest.mark.soak
@pytest.mark.timeout(SOAK_S + 300)
async def test_soak_through_failovers_loses_nothing(
    settled: SentinelGroup, client: Client, sentinel_workers: WorkerFactory
) -> None:
    """Jobs of many inputs while workers are SIGKILLed every few seconds and the primary
    fails over every twenty (SENTINEL FAILOVER and SIGKILL in turn): every input of every
    job ends with exactly one record on the primary, and every enqueue that returned an id
    ran."""
    settings = {**WORKER_SETTINGS, "max_tries": 1000}  # kills are not the jobs' fault
    live: list[WorkerProcess] = [sentinel_workers(**settings) for _ in range(3)]
    jobs = await sleepy_jobs(client, SOAK_JOBS, SOAK_INPUTS, 0.01)
    stop = asyncio.Event()
    enqueuing = asyncio.create_task(enqueue_through(client, stop))
    rng, kills, failovers = random.Random(1), 0, 0
    start = last_failover = time.monotonic()
    while time.monotonic() - start < SOAK_S:
        # on until two failovers at least, even when the jobs are done sooner (a fast
        # machine): the enqueues through the run still meet the later ones
        if failovers >= 2 and all([await status_of(client, j) == JobState.COMPLETE for j in jobs]):
            break
        await asyncio.sleep(SOAK_KILL_EVERY_S)
        kill_one(live, rng)
        kills += 1
        live.append(sentinel_workers(**settings, wait=False))
        if time.monotonic() - last_failover > SOAK_FAILOVER_EVERY_S:
            await fail_over(settled, ("command", "kill")[failovers % 2])
            failovers += 1
            last_failover = time.monotonic()

    async def all_complete() -> bool:
        return all([await status_of(client, j) == JobState.COMPLETE for j in jobs])

    await poll(all_complete, 300, step_s=0.5)
    stop.set()
    outcomes = await enqueuing
    for job_id in jobs:
        check_on_primary(settled, client.keys, job_id, SOAK_INPUTS)
    enqueued = [o for o in outcomes if isinstance(o, str)]
    for each in enqueued:
        assert (await client.wait(each, timeout_s=120)).state == JobState.COMPLETE
    print(
        f"\nsentinel soak: {SOAK_JOBS} jobs × {SOAK_INPUTS} inputs, exactly one record each;"
        f" workers SIGKILLed {kills}×; failovers {failovers}; enqueues during the run"
        f" {len(enqueued)} done, {len(outcomes) - len(enqueued)} ServerUnavailable"
    )
    assert failovers >= 2 and kills >= 3


@pytest.mark.skipif(tls_unavailable_reason() is not None, reason=str(tls_unavailable_reason()))
async def test_tls_sentinels_and_servers_with_passwords(
    tmp_path_factory: pytest.TempPathFactory, namespace: str, tmp_path: Path
) -> None:
    """Sentinels and data servers on TLS only, each with a password: a worker and a client
    given the CA and both passwords run a job, and no password reaches the worker's log."""
    secured = Secured(make_certificates(tmp_path_factory.mktemp("certs")))
    group = SentinelGroup(tmp_path_factory.mktemp("tls-sentinel"), secured).start()
    env = sentinel_env(group, namespace, tmp_path) | {
        "SLUICE_REDIS_TLS": "true",
        "SLUICE_REDIS_SENTINEL_TLS": "true",
        "SLUICE_REDIS_CA_FILE": str(secured.certs / "ca.crt"),
        "SLUICE_REDIS_PASSWORD": secured.password,
        "SLUICE_REDIS_SENTINEL_PASSWORD": secured.sentinel_password,
    }
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log").start()
    fields = {k.removeprefix("SLUICE_").lower(): v for k, v in env.items() if "SLUICE_" in k}
    settings = load_settings(ClientSettings, _env_file=None, **fields)
    try:
        async with Client(settings) as client:
            job_id = await client.enqueue("text-stats", ["data:,over%20tls"])
            status = await client.wait(job_id, timeout_s=60)
            assert (status.state, status.stored) == (JobState.COMPLETE, 1)

            async def both_listen() -> bool:  # for +switch-master, over TLS too
                return await asyncio.to_thread(switch_listeners, group) >= 2

            await poll(both_listen, 10)
    finally:
        worker.stop()
        group.stop()
    assert "worker ready" in worker.log()
    assert secured.password not in worker.log() and secured.sentinel_password not in worker.log()


def switch_listeners(group: SentinelGroup) -> int:
    """Connections subscribed on the sentinels (theirs to each other are on the servers)."""
    total = 0
    for sentinel in group.sentinels:
        with sentinel.client() as client:
            total += sum(1 for each in client.client_list() if each.get("sub") == "1")
    return total
