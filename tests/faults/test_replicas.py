"""Writes that meet a replica, or wait for one: a primary and its replica (the embedded
Valkey binary), one of them stopped (SIGSTOP) or promoted (REPLICAOF NO ONE) mid-write.

A replica stands for a primary demoted in a failover; promoting it, for the failover's end.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from producer import Client, ClientSettings, JobState, ServerUnavailable
from producer.redis.connection import connect
from producer.redis.scripts import BatchedScript
from tests.faults.conftest import poll
from tests.support.servers import Server, replica_of, valkey_binary
from tests.support.workers import WorkerFactory

# like the store's script: each entry written under pcall, refusals returned as pairs
SET_EACH = """
local refused = {}
for i = 1, #KEYS do
  local ok, err = pcall(function() redis.call('SET', KEYS[i], ARGV[i]) end)
  if not ok then refused[#refused + 1] = i - 1; refused[#refused + 1] = tostring(err) end
end
return refused
"""


@pytest.fixture
def primary(tmp_path: Path) -> Iterator[Server]:
    server = Server(valkey_binary(), tmp_path / "primary").start()
    yield server
    server.stop()


@pytest.fixture
def replica(primary: Server, tmp_path: Path) -> Iterator[Server]:
    server = replica_of(primary, tmp_path / "replica")
    yield server
    resume(server)  # a stopped server would not stop
    server.stop()


def pause(server: Server) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)


def resume(server: Server) -> None:
    if server.process is not None and server.process.poll() is None:
        os.kill(server.process.pid, signal.SIGCONT)


def promote(server: Server) -> None:
    with redis.Redis(port=server.port) as client:
        client.replicaof("NO", "ONE")


async def test_enqueue_to_a_replica_is_unavailable_not_readonly(
    replica: Server, settings: ClientSettings
) -> None:
    """Enqueue against a replica tries until its timeout, then raises ServerUnavailable."""
    own = settings.model_copy(update={"redis_url": replica.url, "enqueue_timeout_s": 0.5})
    async with Client(own) as client:
        with pytest.raises(ServerUnavailable, match="not the primary"):
            await client.enqueue("text-stats", ["data:,x"])
        assert await client.redis.zcard(client.keys.queue) == 0


async def test_enqueue_goes_on_once_the_replica_is_promoted(
    replica: Server, settings: ClientSettings
) -> None:
    """An enqueue that meets a replica waits, and succeeds once that server is the primary."""
    own = settings.model_copy(update={"redis_url": replica.url, "enqueue_timeout_s": 20})
    async with Client(own) as client:
        call = asyncio.create_task(client.enqueue("text-stats", ["data:,x"], job_id="promoted"))
        await asyncio.sleep(0.3)
        assert not call.done()  # still trying
        promote(replica)
        assert await asyncio.wait_for(call, 15) == "promoted"
        assert await client.redis.zrange(client.keys.queue, 0, -1) == [b"promoted"]


async def test_batched_script_refused_by_a_replica_runs_once_promoted(replica: Server) -> None:
    """A batch every entry of which a replica refused (READONLY under pcall) is retried, not
    reported refused, and written once the server is the primary."""
    client = connect(ClientSettings(redis_url=replica.url, _env_file=None))
    refused: list[object] = []
    try:
        script = BatchedScript(client, SET_EACH, "set each")
        call = asyncio.create_task(script.run(["a", "b"], ["1", "2"], refused.append))
        await asyncio.sleep(0.3)
        assert not call.done()
        promote(replica)
        assert await asyncio.wait_for(call, 15) == []
        assert await client.mget("a", "b") == [b"1", b"2"]
        assert refused == []
    finally:
        await client.aclose()


def waiting(settings: ClientSettings, primary: Server, **more: object) -> ClientSettings:
    """Settings that wait for one replica, a short WAIT a try."""
    values = {"redis_url": primary.url, "redis_wait_replicas": 1, "redis_wait_timeout_ms": 100}
    return settings.model_copy(update={**values, "enqueue_timeout_s": 20, **more})


async def test_enqueue_waits_for_a_replica_and_counts_its_own_job_once(
    primary: Server, replica: Server, settings: ClientSettings
) -> None:
    """With SLUICE_REDIS_WAIT_REPLICAS=1 an enqueue returns only once the replica has the
    job; the tries after the first find the job they wrote, and do not call it a duplicate."""
    pause(replica)
    async with Client(waiting(settings, primary)) as client:
        call = asyncio.create_task(client.enqueue("text-stats", ["data:,x"], job_id="w1"))
        await asyncio.sleep(0.5)
        assert not call.done()  # on the primary, but not confirmed
        resume(replica)
        assert await asyncio.wait_for(call, 15) == "w1"
        assert await client.redis.zrange(client.keys.queue, 0, -1) == [b"w1"]
    with redis.Redis(port=replica.port) as on_replica:
        assert on_replica.hget(client.keys.job("w1"), "envelope") is not None


async def test_retried_chunks_of_inputs_are_written_once(
    primary: Server, replica: Server, settings: ClientSettings
) -> None:
    """A job whose inputs go in chunks: a chunk tried again after an unconfirmed try is not
    appended twice."""
    pause(replica)
    async with Client(waiting(settings, primary, inline_inputs_max=2)) as client:
        inputs = (f"data:,{i}" for i in range(5))  # a stream: written in chunks
        call = asyncio.create_task(client.enqueue("text-stats", inputs, job_id="chunked"))
        await asyncio.sleep(0.5)
        resume(replica)
        assert await asyncio.wait_for(call, 15) == "chunked"
        assert await client.redis.lrange(client.keys.inputs("chunked"), 0, -1) == [
            f"data:,{i}".encode() for i in range(5)
        ]


async def test_retried_bulk_chunk_admits_each_job_once(
    primary: Server, replica: Server, settings: ClientSettings
) -> None:
    """enqueue_many tried again after an unconfirmed try admits no job a second time (one
    wake token each, not one per try)."""
    pause(replica)
    async with Client(waiting(settings, primary)) as client:
        call = asyncio.create_task(client.enqueue_many("text-stats", [["data:,a"], ["data:,b"]]))
        await asyncio.sleep(0.5)
        resume(replica)
        ids = await asyncio.wait_for(call, 15)
        assert await client.redis.zcard(client.keys.queue) == 2
        assert await client.redis.llen(client.keys.wake) == 2
        assert all([await client.redis.exists(client.keys.job(i)) for i in ids])


async def test_stored_records_wait_for_the_replica(
    primary: Server, replica: Server, settings: ClientSettings, workers: WorkerFactory
) -> None:
    """With SLUICE_REDIS_WAIT_REPLICAS=1 a job does not complete while no replica has its
    records, and completes once the replica takes them."""
    workers(redis_url=primary.url, redis_wait_replicas=1, redis_wait_timeout_ms=100)
    async with Client(settings.model_copy(update={"redis_url": primary.url})) as client:
        pause(replica)
        job_id = await client.enqueue("text-stats", [f"data:,{i}" for i in range(3)])

        async def claimed() -> bool:
            return (await client.status(job_id)).state == JobState.IN_PROGRESS

        await poll(claimed, 30)
        await asyncio.sleep(1.0)
        assert (await client.status(job_id)).state == JobState.IN_PROGRESS
        resume(replica)
        status = await client.wait(job_id, timeout_s=30)
        assert (status.state, status.stored) == (JobState.COMPLETE, 3)
    with redis.Redis(port=replica.port) as on_replica:
        assert on_replica.hlen(client.keys.results(job_id)) == 3


def test_worker_says_at_start_it_lacks_the_replicas_it_waits_for(
    primary: Server, workers: WorkerFactory
) -> None:
    """A worker told to wait for a replica the primary does not have says so at start."""
    worker = workers(redis_url=primary.url, redis_wait_replicas=1)
    assert "fewer replicas than SLUICE_REDIS_WAIT_REPLICAS" in worker.log()
