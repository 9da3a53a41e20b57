"""Named queues and priorities at the claim, against a real server: a worker takes work only
from the queues it serves, earliest place first across them, and a priority moves a job's
place forward by whole steps without starving older work."""

from __future__ import annotations

import asyncio

import pytest

from producer import Client, JobState
from producer.contract.errors import InvalidJob
from producer.contract.placement import MAX_QUEUES, PRIORITY_STEP_MS
from producer.contract.wire import now_ms
from producer.redis.typed import Redis
from tests.lifecycle.support import end, member_scores
from worker.lifecycle.claim import Claimer
from worker.lifecycle.endings import Endings


def serving(redis: Redis, client: Client, *queues: str, lease_s: float = 30.0) -> Claimer:
    return Claimer(redis, client.keys, f"w-{'-'.join(queues)}", lease_s, 100, 600, queues=queues)


async def test_a_worker_takes_jobs_only_from_the_queues_it_serves(
    client: Client, redis: Redis
) -> None:
    """A job in queue "bulk" waits in its own sorted set; a default-queue worker passes it by,
    a bulk worker takes it; both queues are listed in the stats."""
    bulk = await client.enqueue("text-stats", ["data:,b"], queue="bulk")
    usual = await client.enqueue("text-stats", ["data:,d"])
    assert set(await member_scores(redis, client.keys.named_queue("bulk"))) == {bulk}
    assert set(await member_scores(redis, client.keys.queue)) == {usual}
    status = await client.status(bulk)
    assert (status.state, status.queue) == (JobState.QUEUED, "bulk")
    stats = await client.stats()
    assert {name: q.ready for name, q in stats.queues.items()} == {"default": 1, "bulk": 1}

    claim = await serving(redis, client, "default").claim(room=100, most=10, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == [usual]
    claim = await serving(redis, client, "bulk").claim(room=100, most=10, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == [bulk]
    assert (await client.status(bulk)).state == JobState.IN_PROGRESS


async def test_a_worker_of_several_queues_takes_the_earliest_placed_first(
    client: Client, redis: Redis
) -> None:
    """Jobs enqueued alternately to two queues come out of one claim in enqueue order, not
    one queue after the other; a lapsed unit of a queue the worker does not serve is left."""
    order = []
    for i in range(4):
        queue = "a" if i % 2 == 0 else "b"
        order.append(await client.enqueue("text-stats", ["data:,x"], queue=queue))
        await asyncio.sleep(0.003)  # distinct enqueue times
    other = await client.enqueue("text-stats", ["data:,x"], queue="c")
    lapsing = serving(redis, client, "c", lease_s=0.05)
    assert [u.job_id for u in (await lapsing.claim(1, 1, 0)).units] == [other]
    await asyncio.sleep(0.1)
    claim = await serving(redis, client, "b", "a").claim(room=100, most=10, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == order
    assert f"{other}#0" in await member_scores(redis, client.keys.leases)


async def test_a_higher_priority_goes_ahead_of_recent_work_but_not_of_old_work(
    client: Client, redis: Redis
) -> None:
    """Priority p is a head start of p steps: a priority-2 job goes ahead of ordinary jobs
    that became due up to 2 steps before it, and behind one that has waited longer (placed
    here with the wire format's raw ZADD, 3 steps ago)."""
    keys = client.keys
    old = await client.enqueue("text-stats", ["data:,old"])
    await redis.zadd(keys.queue, {old: now_ms() - 3 * PRIORITY_STEP_MS})
    recent = await client.enqueue("text-stats", ["data:,recent"])
    urgent = await client.enqueue("text-stats", ["data:,urgent"], priority=2)
    scores = await member_scores(redis, keys.queue)
    assert scores[recent] - PRIORITY_STEP_MS * 2.5 < scores[urgent] < scores[recent]
    assert (await client.status(urgent)).priority == 2
    claim = await serving(redis, client, "default").claim(room=100, most=10, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == [old, urgent, recent]
    # its queue wait is measured from when it became due, not from its place
    [urgent_unit] = [u for u in claim.units if u.job_id == urgent]
    assert abs(urgent_unit.due_ms - now_ms()) < PRIORITY_STEP_MS / 2


async def test_a_big_jobs_next_units_keep_its_priority(client: Client, redis: Redis) -> None:
    """Once split, a job's next unit is queued at its place: ahead of ordinary work again."""
    big = await client.enqueue("text-stats", [f"data:,{i}" for i in range(250)], priority=5)
    claimer = serving(redis, client, "default")
    assert [u.index for u in (await claimer.claim(room=1, most=1, aborts_since_ms=0)).units] == [0]
    plain = await client.enqueue("text-stats", ["data:,p"])
    scores = await member_scores(redis, client.keys.queue)
    assert scores[f"{big}#1"] < scores[plain] - 4 * PRIORITY_STEP_MS
    claim = await claimer.claim(room=1, most=1, aborts_since_ms=0)
    assert [(u.job_id, u.index) for u in claim.units] == [(big, 1)]


async def test_a_deferred_urgent_job_waits_for_its_time(client: Client, redis: Redis) -> None:
    """Deferred by 2 s with priority 9 (placed 9 minutes earlier): it reads deferred, and the
    claim leaves it until its time has come."""
    job = await client.enqueue("text-stats", ["data:,later"], priority=9, defer_s=2.0)
    assert (await client.status(job)).state == JobState.DEFERRED
    claimer = serving(redis, client, "default")
    assert (await claimer.claim(room=10, most=10, aborts_since_ms=0)).units == []
    await asyncio.sleep(2.1)
    assert (await client.status(job)).state == JobState.QUEUED
    assert [u.job_id for u in (await claimer.claim(10, 10, 0)).units] == [job]


async def test_overrides_are_kept_and_the_endings_use_the_jobs_own(
    client: Client, redis: Redis
) -> None:
    """timeout_s, max_tries and result_ttl_s land in the status; the ending keeps the job's
    keys for its own result TTL; cancelling and retrying a job of a named queue finds it
    there."""
    job = await client.enqueue(
        "text-stats", ["data:,x"], queue="q1", timeout_s=5, max_tries=2, result_ttl_s=77
    )
    status = await client.status(job)
    assert (status.timeout_s, status.max_tries, status.result_ttl_s) == (5.0, 2, 77)
    [unit] = (await serving(redis, client, "q1").claim(10, 10, 0)).units
    endings = Endings(redis, client.keys, result_ttl_s=600, most_runs=5)
    endings.start()
    try:
        await redis.hset(client.keys.results(job), "0", b"{}")
        assert await end(endings, unit, "done") == "complete"
    finally:
        await endings.stop()
    assert 70 <= await redis.ttl(client.keys.job(job)) <= 77

    waiting = await client.enqueue("text-stats", ["data:,y"], queue="q1", priority=3)
    assert await client.cancel(waiting)
    assert await member_scores(redis, client.keys.named_queue("q1")) == {}
    assert await client.retry(waiting) is None
    scores = await member_scores(redis, client.keys.named_queue("q1"))
    assert list(scores) == [waiting]  # back in its queue, with its head start
    assert scores[waiting] < now_ms() - 2.5 * PRIORITY_STEP_MS


@pytest.mark.parametrize(
    ("choice", "named"),
    [
        ({"priority": 10}, "priority"),
        ({"priority": -1}, "priority"),
        ({"queue": "Has Space"}, "queue"),
        ({"queue": "a:b"}, "queue"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"max_tries": 0}, "max_tries"),
        ({"result_ttl_s": 0}, "result_ttl_s"),
    ],
)
async def test_a_bad_choice_is_refused_naming_it(
    client: Client, redis: Redis, choice: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidJob, match=named):
        await client.enqueue("text-stats", ["data:,x"], **choice)  # type: ignore[arg-type]
    with pytest.raises(InvalidJob, match=named):
        await client.enqueue_many("text-stats", [["data:,x"]], **choice)  # type: ignore[arg-type]
    assert await redis.keys(f"{client.keys.namespace}:queue*") == []


async def test_a_namespace_refuses_one_queue_more_than_its_limit(
    client: Client, redis: Redis
) -> None:
    """With MAX_QUEUES names known, an enqueue to a new one is refused naming the limit and
    leaves nothing behind; one to a known name, or to the default queue, still goes in."""
    await redis.sadd(client.keys.queues, *(f"q{i}" for i in range(MAX_QUEUES)))
    for enqueue in (
        lambda: client.enqueue("text-stats", ["data:,x"], queue="one-more"),
        lambda: client.enqueue_many("text-stats", [["data:,x"]], queue="one-more"),
        lambda: client.enqueue("text-stats", (f"data:,{i}" for i in range(3)), queue="one-more"),
    ):
        with pytest.raises(InvalidJob, match="one more than the 100 queues"):
            await enqueue()
    assert not await redis.exists(client.keys.named_queue("one-more"))
    assert await redis.scard(client.keys.queues) == MAX_QUEUES
    assert await client.enqueue("text-stats", ["data:,x"], queue="q7")
    assert await client.enqueue_many("text-stats", [["data:,x"]])
    assert (await client.stats()).ready == 2
