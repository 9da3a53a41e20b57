"""The job event stream through real worker processes: every event a job's life writes, in
order; cancel and retry; the bound; events off; and `wait`, woken by the stream."""

from __future__ import annotations

import asyncio
import time

import pytest

from producer import Client, ClientSettings, JobState, SyncClient
from producer.client import events as events_module
from producer.client.inspect import read_status
from producer.contract.errors import ConfigError
from producer.contract.events import Event, EventType
from producer.contract.keys import Keys
from producer.contract.models import JobStatus
from producer.contract.settings import load_settings
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.support.workers import WorkerFactory

SAMPLES = "tests.sample_pipelines"


async def events_of(client: Client, job: str | None = None) -> list[Event]:
    return [e async for e in client.events(since="0", job_id=job, follow=False)]


async def test_a_job_run_by_a_worker_writes_each_event_in_order(
    client: Client, workers: WorkerFactory
) -> None:
    """enqueued, started, progress (counts that only grow), completed: one job, one worker
    process, read back in the order they happened."""
    workers(pipelines=SAMPLES)
    job = await client.enqueue("test-sleep", [data_uri(b"x")] * 8, options={"seconds": 0.2})
    assert (await client.wait(job, timeout_s=60)).state == JobState.COMPLETE
    events = await events_of(client, job)
    kinds = [e.type for e in events]
    assert kinds[:2] == [EventType.ENQUEUED, EventType.STARTED]
    assert kinds[-1] == EventType.COMPLETED
    assert set(kinds[2:-1]) == {EventType.PROGRESS}, kinds
    stored = [e.stored or 0 for e in events[2:-1]]
    assert stored == sorted(stored) and all(e.total == 8 for e in events[2:-1])
    assert {(e.queue, e.pipeline) for e in events} == {("default", "test-sleep")}
    assert [e.id for e in events] == sorted(events_ids := [e.id for e in events], key=_order)
    assert len(set(events_ids)) == len(events)


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


async def test_cancel_and_retry_write_their_events(client: Client) -> None:
    """cancelled, then retried (back in its queue), each with the job's queue."""
    job = await client.enqueue("text-stats", ["data:,a"], queue="low")
    assert await client.cancel(job)
    assert await client.retry(job) is None
    events = await events_of(client, job)
    assert [e.type for e in events] == ["enqueued", "cancelled", "retried"]
    assert {e.queue for e in events} == {"low"}
    assert events[1].error == "cancelled"


async def test_the_filters_and_since(client: Client) -> None:
    """``job_id`` and ``types`` choose; ``since`` an event's id reads on after it; a bad type
    or id is refused naming it."""
    first = await client.enqueue("text-stats", ["data:,a"])
    second = await client.enqueue("text-stats", ["data:,b"])
    await client.cancel(second)
    every = await events_of(client)
    assert [(e.job, e.type) for e in every] == [
        (first, "enqueued"),
        (second, "enqueued"),
        (second, "cancelled"),
    ]
    after = [e async for e in client.events(since=every[0].id, follow=False)]
    assert after == every[1:]
    ended = [e async for e in client.events(since="0", types=["cancelled"], follow=False)]
    assert [e.job for e in ended] == [second]
    with pytest.raises(ValueError, match="no event type 'done'"):
        [e async for e in client.events(since="0", types=["done"], follow=False)]
    with pytest.raises(ValueError, match="since: 'yesterday' is not a stream id"):
        [e async for e in client.events(since="yesterday", follow=False)]


async def test_events_follow_from_now(client: Client) -> None:
    """Following from "$" yields only what is written after it started, as it is written."""
    await client.enqueue("text-stats", ["data:,old"])
    stream = client.events()  # since "$": from its first step
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.3)  # reading, blocked
    job = await client.enqueue("text-stats", ["data:,new"])
    event = await asyncio.wait_for(first, 5)
    await stream.aclose()
    assert (event.job, event.type) == (job, EventType.ENQUEUED)


async def test_maxlen_bounds_the_stream(settings: ClientSettings, redis: Redis) -> None:
    """With SLUICE_EVENTS_MAXLEN=100, 400 enqueues leave about 100 entries (MAXLEN ~ trims
    whole nodes of 100: never fewer than 100, never many more)."""
    bounded = settings.model_copy(update={"events_maxlen": 100})
    async with Client(bounded) as client:
        for _ in range(400):
            await client.enqueue("text-stats", ["data:,a"])
        kept = await redis.xlen(client.keys.events)
    assert 100 <= kept <= 300


async def test_jobs_enqueued_together_share_an_entry(
    settings: ClientSettings, redis: Redis
) -> None:
    """enqueue_many's jobs are one entry per call (a chunk of jobs), each job still
    its own event to a reader; the entry names them all, in order, in ``jobs``."""
    async with Client(settings) as client:
        since = (await redis.xrevrange(client.keys.events, count=1) or [(b"0-0", {})])[0][0]
        ids = await client.enqueue_many("text-stats", [["data:,a"]] * 2500)
        entries = await redis.xrange(client.keys.events, min=f"({since.decode()}")
        named = [i for _, f in entries for i in f[b"jobs"].decode().split()]
        assert len(entries) <= 10 and named == ids  # a call per chunk of jobs
        read = [e async for e in client.events(since=since.decode(), follow=False)]
    assert [e.job for e in read] == ids
    assert {(e.type, e.queue, e.pipeline) for e in read} == {("enqueued", "default", "text-stats")}


async def test_events_off_writes_nothing_and_wait_still_works(
    settings: ClientSettings, redis: Redis, workers: WorkerFactory
) -> None:
    """SLUICE_EVENTS_MAXLEN=0 on the producer and the worker: a job enqueued, run, cancelled
    and retried writes no stream at all, and `wait` still sees it end (by its status)."""
    off = settings.model_copy(update={"events_maxlen": 0})
    workers(pipelines=SAMPLES, events_maxlen=0)
    async with Client(off) as client:
        job = await client.enqueue("test-sleep", [data_uri(b"x")] * 4, options={"seconds": 0.3})
        assert (await client.wait(job, timeout_s=60)).state == JobState.COMPLETE
        other = await client.enqueue("text-stats", ["data:,a"], defer_s=60)
        await client.cancel(other)
        await client.retry(other)
        assert await redis.exists(client.keys.events) == 0
        assert await events_of(client) == []


async def test_wait_wakes_on_the_ending_event_not_by_polling(
    client: Client, workers: WorkerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wait` on a 2 s job returns within a moment of its completed event, having read the
    status a few times (at each fallback second), not every 0.2 s."""
    reads = 0

    async def counted(redis: Redis, keys: Keys, job_id: str) -> JobStatus:
        nonlocal reads
        reads += 1
        return await read_status(redis, keys, job_id)

    monkeypatch.setattr(events_module, "read_status", counted)
    workers(pipelines=SAMPLES)
    job = await client.enqueue("test-sleep", [data_uri(b"x")], options={"seconds": 2.0})
    status = await client.wait(job, timeout_s=60)
    returned_ms = time.time() * 1000
    assert status.state == JobState.COMPLETE
    [completed] = [e for e in await events_of(client, job) if e.type == "completed"]
    assert returned_ms - completed.at_ms < 300
    assert reads <= 5, reads  # polling every 0.2 s would have read it 10 times or more


def test_the_sync_client_reads_events(settings: ClientSettings) -> None:
    """`SyncClient.events` is `Client.events`, blocking."""
    with SyncClient(settings) as client:
        job = client.enqueue("text-stats", ["data:,a"])
        events = list(client.events(since="0", follow=False))
    assert [(e.job, e.type) for e in events] == [(job, EventType.ENQUEUED)]


async def test_a_follower_survives_its_connection_dropped(client: Client, redis: Redis) -> None:
    """The server drops the connection a follower blocks on (as a failover or a restart
    would): the read is tried again, and the next event still arrives."""
    stream = client.events()
    first = asyncio.ensure_future(anext(stream))
    blocked: list[int] = []
    for _ in range(50):  # until the follower is blocked in its XREAD
        blocked = [c["id"] for c in await redis.client_list() if c.get("cmd") == "xread"]
        if blocked:
            break
        await asyncio.sleep(0.05)
    assert blocked, "the follower never blocked"
    for client_id in blocked:
        await redis.client_kill_filter(_id=str(client_id))
    job = await client.enqueue("text-stats", ["data:,after the drop"])
    event = await asyncio.wait_for(first, 10)
    await stream.aclose()
    assert (event.job, event.type) == (job, EventType.ENQUEUED)


def test_a_bad_events_maxlen_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """SLUICE_EVENTS_MAXLEN below 0, or not a number, stops start-up naming the variable."""
    for bad in ("-1", "lots"):
        monkeypatch.setenv("SLUICE_EVENTS_MAXLEN", bad)
        with pytest.raises(ConfigError, match="invalid setting SLUICE_EVENTS_MAXLEN"):
            load_settings(ClientSettings, _env_file=None)
