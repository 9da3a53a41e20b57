"""`enqueue_many` against a real server: jobs a worker cannot tell from single enqueues, all
checked before any is written, first in first out, and the queue cap respected."""

from __future__ import annotations

import pytest

from producer import Client, ClientSettings, InvalidJob, JobState, QueueFull, SyncClient
from producer.client.bulk import BULK_JOBS
from producer.contract.wire import loads
from producer.redis.typed import Redis
from tests.support.workers import WorkerFactory


async def test_jobs_run_like_single_enqueues(client: Client, workers: WorkerFactory) -> None:
    """Each item is a job of its own, with its own inputs, status and results."""
    jobs = [["data:,a%20b%20a"], ["data:,c", "data:,d%20d"], ["data:,e"]]
    ids = await client.enqueue_many("text-stats", jobs)
    assert len(set(ids)) == 3
    workers()
    for job_id, inputs in zip(ids, jobs, strict=True):
        status = await client.wait(job_id, timeout_s=60)
        assert status.state == JobState.COMPLETE
        assert (status.pipeline, status.total, status.stored) == (
            "text-stats",
            len(inputs),
            len(inputs),
        )
        records = [r async for r in client.results(job_id)]
        assert [r.input for r in records] == inputs
    first = [r async for r in client.results(ids[0])]
    assert first[0].result is not None and first[0].result["top_terms"] == [["a", 2], ["b", 1]]


async def test_envelope_and_status_match_a_single_enqueue(client: Client, redis: Redis) -> None:
    """The bulk path writes the same arq envelope and status fields as `enqueue`."""
    one = await client.enqueue("text-stats", ["data:,x"], options={"top": 3})
    [many] = await client.enqueue_many("text-stats", [["data:,x"]], options={"top": 3})
    keys = client.keys
    a, b = await redis.hget(keys.job(one), "envelope"), await redis.hget(keys.job(many), "envelope")
    assert a is not None and b is not None
    assert not await redis.exists(keys.arq_job(one), keys.arq_job(many))
    ea, eb = loads(a), loads(b)
    assert ea.pop("et") > 0 and eb.pop("et") > 0
    assert ea == eb
    ha, hb = await redis.hgetall(keys.job(one)), await redis.hgetall(keys.job(many))
    for h in (ha, hb):
        h.pop(b"enqueued_at"), h.pop(b"envelope")  # compared above, but for "et"
    assert ha == hb
    assert await redis.ttl(keys.job(many)) > 0
    assert await redis.zscore(keys.queue, many) is not None


async def test_a_bad_job_refuses_the_call_and_writes_nothing(client: Client, redis: Redis) -> None:
    """Every job is checked first; the error names the job and its input."""
    cases = [
        ([["data:,ok"], ["no-scheme"]], "job 1: input 0: 'no-scheme' has no URI scheme"),
        ([["data:,ok"], []], "job 1: a job needs at least one input"),
        ([["data:,ok"], "data:,x"], "job 1: its inputs must be a list of URIs, got str"),
        ([["data:,ok"], ["data:,ok", 7]], "job 1: input 1: must be a string URI"),
    ]
    for jobs, message in cases:
        with pytest.raises(InvalidJob, match=message) as refused:
            await client.enqueue_many("text-stats", jobs)  # type: ignore[arg-type]
        assert refused.value.job == 1 and not refused.value.reason.startswith("job ")
    with pytest.raises(InvalidJob, match="pipeline"):
        await client.enqueue_many("Bad Name", [["data:,x"]])
    assert await redis.zcard(client.keys.queue) == 0
    assert await client.enqueue_many("text-stats", []) == []


async def test_limits_name_the_job_and_setting(settings: ClientSettings, redis: Redis) -> None:
    small = settings.model_copy(update={"max_payload_bytes": 2048, "inline_inputs_max": 2})
    async with Client(small) as client:
        with pytest.raises(InvalidJob, match=r"job 1: .*SLUICE_MAX_PAYLOAD_BYTES"):
            await client.enqueue_many("text-stats", [["data:,x"], ["data:," + "x" * 3000]])
        with pytest.raises(InvalidJob, match=r"job 0: 3 inputs.*SLUICE_INLINE_INPUTS_MAX"):
            await client.enqueue_many("text-stats", [["data:,x"] * 3])
    assert await redis.zcard(small.namespace + ":queue") == 0


async def test_jobs_start_in_the_order_given(client: Client, redis: Redis) -> None:
    """More jobs than one script call takes, all due in the same millisecond or two: the
    queue (by score, then id, as a worker reads it) holds them in the order given."""
    count = BULK_JOBS * 2 + 7
    ids = await client.enqueue_many("text-stats", [[f"data:,{n}"] for n in range(count)])
    assert await redis.zrange(client.keys.queue, 0, -1) == [i.encode() for i in ids]
    tokens = await redis.llen(client.keys.wake)
    assert tokens > 0


async def test_deferred_jobs_wake_nobody(client: Client, redis: Redis) -> None:
    ids = await client.enqueue_many("text-stats", [["data:,1"], ["data:,2"]], defer_s=60)
    assert [(await client.status(i)).state for i in ids] == [JobState.DEFERRED] * 2
    assert await redis.llen(client.keys.wake) == 0


async def test_queue_cap_admits_what_fits_then_raises(settings: ClientSettings) -> None:
    """At the cap the call waits; past the timeout QueueFull lists the jobs that got in."""
    capped = settings.model_copy(update={"max_queued_jobs": 3, "enqueue_timeout_s": 0.3})
    async with Client(capped) as client:
        await client.enqueue("text-stats", ["data:,0"])
        with pytest.raises(QueueFull, match="SLUICE_MAX_QUEUED_JOBS") as raised:
            await client.enqueue_many("text-stats", [[f"data:,{n}"] for n in range(5)])
        assert len(raised.value.enqueued) == 2
        assert (await client.stats()).ready == 3
        for job_id in raised.value.enqueued:
            assert (await client.status(job_id)).state == JobState.QUEUED


async def test_queue_cap_waits_for_room(settings: ClientSettings, workers: WorkerFactory) -> None:
    """A bulk enqueue bigger than the cap gets in as a worker drains the queue."""
    capped = settings.model_copy(update={"max_queued_jobs": 4, "enqueue_timeout_s": 60})
    async with Client(capped) as client:
        workers(wait=False)
        ids = await client.enqueue_many("text-stats", [[f"data:,{n}"] for n in range(12)])
        for job_id in ids:
            assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE


def test_sync_client_enqueue_many(settings: ClientSettings, workers: WorkerFactory) -> None:
    workers()
    with SyncClient(settings) as client:
        ids = client.enqueue_many("text-stats", [["data:,a"], ["data:,b"]])
        assert [client.wait(i, timeout_s=60).state for i in ids] == [JobState.COMPLETE] * 2
