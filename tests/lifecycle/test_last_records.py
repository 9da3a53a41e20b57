"""A unit's last records written with its ending (one script call, one fence read): fenced by
the token, counted once, and complete still only when every input has its record."""

from __future__ import annotations

import asyncio

import pytest

import worker.pipelines  # noqa: F401  (registers the built-in pipelines)
from producer import Client, JobState
from producer.contract.keys import Keys
from producer.redis.failover import ReplicaWait
from producer.redis.typed import Redis
from tests.lifecycle.support import claimer, store
from worker.lifecycle.claim import Unit
from worker.lifecycle.endings import UNSTORED, Endings, Entry
from worker.registry import REGISTRY
from worker.stages.items import Item, JobRun
from worker.stages.store import StoreStage


def records(*indexes: int, failed: tuple[int, ...] = ()) -> list[bytes | str]:
    """The store stage's arguments for these inputs' records (index, JSON, ok, blob)."""
    out: list[bytes | str] = []
    for i in indexes:
        out += [str(i), f'{{"index": {i}}}', "0" if i in failed else "1", b""]
    return out


async def claim_one(client: Client, redis: Redis, inputs: int) -> Unit:
    await client.enqueue("text-stats", [f"data:,{i}" for i in range(inputs)])
    [unit] = (await claimer(redis, client.keys).claim(room=1, most=1, aborts_since_ms=0)).units
    return unit


def done(unit: Unit, token: str | None = None, plain: int = 0) -> Entry:
    """A done ending; ``plain=1`` (counters to set) lets a lone unit with every record take
    the END script's straight line for small jobs."""
    return Entry("done", unit.job_id, unit.index, token or unit.token, plain=plain)


async def test_a_one_input_job_is_stored_and_completed_in_one_call(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """The ending writes the record, counts it stored (and failed) and completes the job."""
    unit = await claim_one(client, redis, 1)
    assert await endings.send(unit.job_id, done(unit), records(0, failed=(0,))) == "complete"
    status = await client.status(unit.job_id)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 1, 1)
    assert await redis.hget(client.keys.results(unit.job_id), "0") == b'{"index": 0}'
    assert await redis.exists(client.keys.spec(unit.job_id)) == 1  # a failed input: kept


@pytest.mark.parametrize("plain", [0, 1])
async def test_a_stale_token_writes_neither_records_nor_ending(
    client: Client, redis: Redis, endings: Endings, plain: int
) -> None:
    """A unit taken over since: "lost", no record, no count, the job still running (on the
    general path and on the small job's straight line alike)."""
    unit = await claim_one(client, redis, 1)
    await redis.hset(client.keys.job(unit.job_id), unit.field, "someone-else 2")
    assert await endings.send(unit.job_id, done(unit, plain=plain), records(0)) == "lost"
    assert await redis.exists(client.keys.results(unit.job_id)) == 0
    status = await client.status(unit.job_id)
    assert (status.state, status.stored) == (JobState.IN_PROGRESS, 0)


@pytest.mark.parametrize("plain", [0, 1])
async def test_a_job_cancelled_while_it_runs_stays_cancelled(
    client: Client, redis: Redis, endings: Endings, plain: int
) -> None:
    """A small job cancelled after its claim: its ending with every record is refused
    whichever path it would take; no record is written and the job stays cancelled."""
    unit = await claim_one(client, redis, 1)
    assert await client.cancel(unit.job_id)
    assert await endings.send(unit.job_id, done(unit, plain=plain), records(0)) == "lost"
    assert await redis.exists(client.keys.results(unit.job_id)) == 0
    assert (await client.status(unit.job_id)).state == JobState.CANCELLED


async def test_records_already_there_are_kept_and_not_counted_again(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A record an earlier attempt stored keeps its value and its count; the new one adds."""
    unit = await claim_one(client, redis, 2)
    await store(redis, client.keys, unit, 0)
    await redis.hset(client.keys.job(unit.job_id), "stored", 1)
    assert await endings.send(unit.job_id, done(unit), records(0, 1)) == "complete"
    assert await redis.hget(client.keys.results(unit.job_id), "0") == b"{}"
    assert (await client.status(unit.job_id)).stored == 2


async def test_a_one_unit_job_with_a_record_missing_still_runs_again(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """The ending's records are not every input's (one was lost): the count of records
    present decides, and the job runs again for the missing one."""
    unit = await claim_one(client, redis, 3)
    assert await endings.send(unit.job_id, done(unit), records(0, 2)) == "resumed"
    status = await client.status(unit.job_id)
    assert (status.state, status.stored) == (JobState.QUEUED, 2)
    assert await redis.hget(client.keys.job(unit.job_id), "run") == b"2"


async def test_records_go_with_a_release_and_a_failure_too(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A unit handed back, or failing the job, still writes the records it carries."""
    keys = client.keys
    back, failing = await claim_one(client, redis, 2), await claim_one(client, redis, 2)
    entry = Entry("release", back.job_id, 0, back.token, undo_try=1)
    assert await endings.send(back.job_id, entry, records(0)) == "released"
    assert (await client.status(back.job_id)).stored == 1
    entry = Entry("fail", failing.job_id, 0, failing.token, fields=("error", "it broke"))
    assert await endings.send(failing.job_id, entry, records(1)) == "failed"
    status = await client.status(failing.job_id)
    assert (status.state, status.stored) == (JobState.FAILED, 1)
    assert await redis.hlen(keys.results(failing.job_id)) == 1


async def test_records_redis_refuses_leave_the_ending_unwritten(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A results key of the wrong type: the code says so, and the unit is still held (the
    attempt then retries it, as when the store stage is refused)."""
    unit = await claim_one(client, redis, 1)
    await redis.set(client.keys.results(unit.job_id), b"not a hash")
    code = await endings.send(unit.job_id, done(unit), records(0))
    assert code.startswith(UNSTORED) and "WRONGTYPE" in code
    status = await client.status(unit.job_id)
    assert (status.state, status.stored) == (JobState.IN_PROGRESS, 0)
    assert await redis.hget(client.keys.job(unit.job_id), unit.field) is not None


async def test_the_store_stage_leaves_a_runs_last_batch_to_its_ending(
    client: Client, redis: Redis
) -> None:
    """All fed, the batch that finishes a run is not written but kept for the ending; with
    writes waiting for replicas, it is written (endings do not wait for them)."""
    keys = client.keys
    unit = await claim_one(client, redis, 1)
    for wait, written in ((None, 0), (ReplicaWait(0, 10, keys.wait_mark), 1)):
        run = await _stored_run(redis, keys, unit, wait)
        assert await redis.hlen(keys.results(unit.job_id)) == written
        assert bool(run.last_records) != bool(written)


async def _stored_run(redis: Redis, keys: Keys, unit: Unit, wait: ReplicaWait | None) -> JobRun:
    pipeline = REGISTRY.pipelines["text-stats"]
    run = JobRun(unit.job_id, pipeline, {}, unit.field, unit.token)
    inbox: asyncio.Queue[Item] = asyncio.Queue()
    stage = StoreStage(redis, keys, inbox, batch_size=10, wait=wait)
    item = Item(run, 0, "data:,x")
    item.result_json = b"{}"
    run.item_submitted()
    run.all_submitted()
    await inbox.put(item)
    task = asyncio.create_task(stage.run())
    try:
        await asyncio.wait_for(run.done.wait(), 10)
    finally:
        task.cancel()
    return run


async def test_a_small_jobs_straight_line_ending_writes_what_the_general_one_does(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A lone unit done with every record and counters to set (``plain``) ends on the END
    script's straight line; the same job with counters to add (the hash holds none, so the
    sums are the same) takes the general path. Both leave the same status hash (but for
    their clocks), TTLs, queues, sets and events, with a webhook queued for each (the
    namespace's default)."""
    keys = client.keys
    await redis.set(keys.webhook_default, "http://127.0.0.1:9/hook")
    counters = ("fetched", "2", "transformed", "2", "fetch_count", "2", "fetch_s", "0.5")
    hashes, events = [], []
    for plain in (1, 0):
        unit = await claim_one(client, redis, 2)
        entry = Entry("done", unit.job_id, 0, unit.token, plain=plain, counters=counters)
        assert await endings.send(unit.job_id, entry, records(0, 1)) == "complete"
        fields = {
            k.decode(): v.decode()
            for k, v in (await redis.hgetall(keys.job(unit.job_id))).items()
            if k not in (b"enqueued_at", b"started_at", b"finished_at", b"worker")
        }
        hashes.append(fields)
        assert await redis.ttl(keys.job(unit.job_id)) > 0
        assert await redis.ttl(keys.results(unit.job_id)) > 0
        assert await redis.zscore(keys.webhooks, unit.job_id) is not None
        [(_, entry_fields)] = await redis.xrevrange(keys.events, count=1)
        events.append((entry_fields[b"type"], entry_fields[b"job"] == unit.job_id.encode()))
    assert hashes[0] == hashes[1]
    assert hashes[0]["state"] == "complete" and hashes[0]["stored"] == "2"
    assert "envelope" not in hashes[0] and "unit:0" not in hashes[0]
    assert events == [(b"completed", True)] * 2
    assert await redis.zcard(keys.leases) == await redis.scard(keys.running) == 0
