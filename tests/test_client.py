"""The producer client against a real server: validation, limits, backpressure, sync form."""

from __future__ import annotations

import pytest

from producer import (
    Client,
    ClientSettings,
    InvalidJob,
    JobExists,
    JobState,
    QueueFull,
    SyncClient,
)
from producer.redis.typed import Redis
from tests.support.workers import WorkerFactory


def with_limits(settings: ClientSettings, **limits: object) -> ClientSettings:
    return settings.model_copy(update=limits)


@pytest.mark.parametrize(
    ("pipeline", "inputs", "message"),
    [
        ("Bad Name", ["data:,x"], "pipeline"),
        ("text-stats", ["no-scheme"], "input 0"),
        ("text-stats", ["data:,x", ""], "input 1: is empty"),
        ("text-stats", [], "at least one input"),
        ("text-stats", ["data:,x", 3], "input 1: must be a string"),
    ],
)
async def test_bad_jobs_are_refused_at_enqueue(
    client: Client, redis: Redis, pipeline: str, inputs: list[object], message: str
) -> None:
    """A malformed job is refused with a message naming what is wrong, and nothing is queued."""
    with pytest.raises(InvalidJob, match=message):
        await client.enqueue(pipeline, inputs)  # type: ignore[arg-type]
    assert await redis.zcard(client.keys.queue) == 0


GRAMMAR = r"\^\[A-Za-z0-9_-\]\[A-Za-z0-9_\.-\]\{0,127\}\$"


BAD_IDS = ["victim:results", "a/b", "x/../../failed", ".hidden", "", "a" * 129, "x\n"]
BAD_IDS += ["sp ace", "{tag}", "a#b", "é", "\x1b[31m"]


@pytest.mark.parametrize("job_id", BAD_IDS)
async def test_job_ids_outside_the_grammar_are_refused(
    client: Client, redis: Redis, job_id: str
) -> None:
    """An id that could name another job's key or leave its URL path segment is refused,
    with the grammar in the message; nothing is written."""
    with pytest.raises(InvalidJob, match=rf"invalid job id .*{GRAMMAR}"):
        await client.enqueue("text-stats", ["data:,x"], job_id=job_id)
    assert await redis.keys(f"{client.keys.namespace}:*") == []


async def test_job_ids_inside_the_grammar_are_kept(client: Client) -> None:
    """Ids of every allowed character, up to 128 of them, are used as given."""
    for job_id in ["-", "_a.b-C9", "a" * 128, "v2.results"]:
        assert await client.enqueue("text-stats", ["data:,x"], job_id=job_id) == job_id


async def test_limits_are_enforced(settings: ClientSettings, redis: Redis) -> None:
    """Too many inputs and an oversize payload are refused, naming the setting."""
    small = with_limits(settings, max_inputs_per_job=3, max_payload_bytes=2048)
    async with Client(small) as client:
        with pytest.raises(InvalidJob, match="SLUICE_MAX_INPUTS_PER_JOB"):
            await client.enqueue("text-stats", ["data:,x"] * 4)
        with pytest.raises(InvalidJob, match="SLUICE_MAX_PAYLOAD_BYTES"):
            await client.enqueue("text-stats", ["data:," + "x" * 3000])
        streamed = (f"data:,{i}" for i in range(10))
        with pytest.raises(InvalidJob, match="SLUICE_MAX_INPUTS_PER_JOB"):
            await client.enqueue("text-stats", streamed)
    assert await redis.zcard(small.namespace + ":queue") == 0


async def test_unknown_pipeline_refused_once_workers_registered(
    client: Client, workers: WorkerFactory
) -> None:
    """With a worker's registry in Redis, an unregistered pipeline is refused at enqueue."""
    workers()
    with pytest.raises(InvalidJob, match=r"unknown pipeline 'nope'; registered: .*text-stats"):
        await client.enqueue("nope", ["data:,x"])


async def test_duplicate_job_id_refused(client: Client) -> None:
    """A second job with the same id is refused while the first exists."""
    await client.enqueue("text-stats", ["data:,x"], job_id="same")
    with pytest.raises(JobExists, match="same"):
        await client.enqueue("text-stats", ["data:,y"], job_id="same")


async def test_queue_full_after_timeout(settings: ClientSettings) -> None:
    """Past the queue cap, enqueue waits for the timeout, then raises QueueFull naming the cap."""
    capped = with_limits(settings, max_queued_jobs=2, enqueue_timeout_s=0.3)
    async with Client(capped) as client:
        await client.enqueue("text-stats", ["data:,1"])
        await client.enqueue("text-stats", ["data:,2"])
        with pytest.raises(QueueFull, match="SLUICE_MAX_QUEUED_JOBS"):
            await client.enqueue("text-stats", ["data:,3"])
        assert (await client.stats()).ready == 2


async def test_queue_full_waits_for_room(settings: ClientSettings, workers: WorkerFactory) -> None:
    """A producer at the cap gets in once a worker drains the queue, instead of failing."""
    capped = with_limits(settings, max_queued_jobs=1, enqueue_timeout_s=60)
    async with Client(capped) as client:
        first = await client.enqueue("text-stats", ["data:,1"])
        workers(wait=False)
        second = await client.enqueue("text-stats", ["data:,2"])
        assert (await client.wait(first, timeout_s=60)).state == JobState.COMPLETE
        assert (await client.wait(second, timeout_s=60)).state == JobState.COMPLETE


def test_sync_client_refuses_ids_outside_the_grammar(settings: ClientSettings) -> None:
    """The blocking client checks ids the same way."""
    with SyncClient(settings) as client, pytest.raises(InvalidJob, match=GRAMMAR):
        client.enqueue("text-stats", ["data:,x"], job_id="v2:results")


def test_sync_client(settings: ClientSettings, workers: WorkerFactory) -> None:
    """The blocking client enqueues, waits, and reads results and stats without an event loop."""
    workers()
    with SyncClient(settings) as client:
        job_id = client.enqueue("text-stats", ["data:,a%20b%20a"])
        status = client.wait(job_id, timeout_s=60)
        assert status.state == JobState.COMPLETE
        [record] = list(client.results(job_id))
        assert record.result is not None and record.result["top_terms"] == [["a", 2], ["b", 1]]
        assert client.status("missing").state == JobState.NOT_FOUND
        assert client.stats().workers == 1


async def test_deferred_job_state(client: Client) -> None:
    """A job deferred into the future reads as deferred, then queued."""
    job_id = await client.enqueue("text-stats", ["data:,x"], defer_s=60)
    assert (await client.status(job_id)).state == JobState.DEFERRED
    assert (await client.stats()).deferred == 1


@pytest.mark.parametrize("defer_s", [float("inf"), float("nan"), 1e308, -1.0, 365 * 86400 + 1])
async def test_defer_past_a_year_or_not_a_number_is_refused(
    client: Client, redis: Redis, defer_s: float
) -> None:
    """enqueue and enqueue_many refuse a defer that is not 0..MAX_DEFER_S, writing nothing."""
    with pytest.raises(InvalidJob, match="defer_s must be from 0 to 31536000 seconds"):
        await client.enqueue("text-stats", ["data:,x"], defer_s=defer_s)
    with pytest.raises(InvalidJob, match="MAX_DEFER_S"):
        await client.enqueue_many("text-stats", [["data:,x"]], defer_s=defer_s)
    assert await redis.zcard(client.keys.queue) == 0


async def test_status_of_a_raw_job_no_worker_took_comes_from_its_envelope(
    client: Client, redis: Redis
) -> None:
    """A job written with raw commands and not claimed yet reads its pipeline, total and
    enqueue time from its envelope; one whose envelope cannot be read is queued, no more."""
    envelope = (
        '{"t":1,"f":"sluice","a":[],"k":{"pipeline":"text-stats","inputs":["data:,a","data:,b"]},'
        '"et":1700000000000}'
    )
    unreadable = {"raw-pickle": b"\x80\x04junk", "raw-text": b"not json", "raw-k": b'{"k":[]}'}
    for job_id, raw in {"raw-fine": envelope.encode(), **unreadable}.items():
        await redis.set(client.keys.arq_job(job_id), raw)
        await redis.zadd(client.keys.queue, {job_id: 1})
    fine = await client.status("raw-fine")
    assert (fine.state, fine.pipeline, fine.total) == (JobState.QUEUED, "text-stats", 2)
    assert fine.enqueued_at == 1_700_000_000.0
    for job_id in unreadable:
        status = await client.status(job_id)
        assert (status.state, status.pipeline, status.total) == (JobState.QUEUED, None, 0)
