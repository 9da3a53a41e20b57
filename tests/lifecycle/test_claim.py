"""The claim script against a real server: splitting, room, turns, takeovers, refusals."""

from __future__ import annotations

import asyncio
import time

import orjson

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.lifecycle.support import claimer, member_scores, units_of
from worker.lifecycle.claim import Claimer


async def test_a_job_is_split_into_units_at_its_first_claim(client: Client, redis: Redis) -> None:
    """250 inputs in units of 100: unit 0 is handed out, unit 1 waits due, unit 2 is parked;
    the status says 3 units and one held."""
    job = await client.enqueue("text-stats", [f"data:,{i}" for i in range(250)])
    claim = await claimer(redis, client.keys).claim(room=1, most=10, aborts_since_ms=0)
    [unit] = claim.units
    assert (unit.job_id, unit.index, unit.first, unit.end) == (job, 0, 0, 100)
    assert (unit.units, unit.total, unit.tries, unit.run) == (3, 250, 1, 1)
    assert unit.envelope is not None and b'"pipeline":"text-stats"' in unit.envelope
    queued = await member_scores(redis, client.keys.queue)
    assert set(queued) == {f"{job}#1", f"{job}#2"}
    assert queued[f"{job}#2"] == float("inf") and queued[f"{job}#1"] <= time.time() * 1000
    leased = await member_scores(redis, client.keys.leases)
    assert list(leased) == [f"{job}#0"] and leased[f"{job}#0"] > time.time() * 1000
    status = await client.status(job)
    assert status.state == JobState.IN_PROGRESS
    fields = await redis.hgetall(client.keys.job(job))
    assert (fields[b"units"], fields[b"held"]) == (b"3", b"1")
    assert fields[b"unit:0"].startswith(unit.token.encode() + b" ")
    stats = await client.stats()
    assert (stats.ready_units, stats.held_units, stats.in_progress) == (2, 1, 1)


async def test_a_claim_takes_units_until_their_inputs_fill_the_room(
    client: Client, redis: Redis
) -> None:
    """Room for 150 inputs takes two units of 100 (the second passes the room), and never
    more than ``most``; a worker with room for one input still gets one whole unit."""
    jobs = [
        await client.enqueue("text-stats", [f"data:,{i}"] * 100, job_id=f"j{i}") for i in range(4)
    ]  # ids that sort in order: jobs due in the same millisecond go in id order
    claim = await claimer(redis, client.keys).claim(room=150, most=10, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == jobs[:2] and claim.more
    claim = await claimer(redis, client.keys).claim(room=1000, most=1, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == jobs[2:3]
    claim = await claimer(redis, client.keys).claim(room=1, most=10, aborts_since_ms=0)
    assert [(u.job_id, u.size) for u in claim.units] == [(jobs[3], 100)]


async def test_a_big_job_takes_turns_with_the_jobs_queued_after_it(
    client: Client, redis: Redis
) -> None:
    """Each hand-out queues the big job's next unit behind the work due by then: a small job
    enqueued after that waits for one more unit of the big job, not for all of them."""
    # ids that sort small first: due in the same millisecond, the small one goes first
    big = await client.enqueue("text-stats", [f"data:,{i}" for i in range(500)], job_id="b-big")
    one = claimer(redis, client.keys)
    claims = [await one.claim(room=1, most=1, aborts_since_ms=0)]
    await asyncio.sleep(0.005)  # the small job comes due after the big job's next unit
    small = await client.enqueue("text-stats", ["data:,small"], job_id="a-small")
    for _ in range(3):
        claims.append(await one.claim(room=1, most=1, aborts_since_ms=0))
    order = [(u.job_id, u.index) for c in claims for u in c.units]
    assert order == [(big, 0), (big, 1), (small, 0), (big, 2)]


async def test_a_lapsed_lease_is_taken_over_with_a_new_token(client: Client, redis: Redis) -> None:
    """Past its lease a unit is claimed again, before queued work, with a new token and its
    try counted; the old token no longer holds it."""
    job = await client.enqueue("text-stats", ["data:,a", "data:,b"], job_id="a-job")
    later = await client.enqueue("text-stats", ["data:,later"], job_id="b-later")
    short = Claimer(redis, client.keys, "w-a", 0.05, unit_inputs=100, result_ttl_s=60)
    [held] = (await short.claim(room=1, most=1, aborts_since_ms=0)).units
    await asyncio.sleep(0.1)
    taken = await claimer(redis, client.keys, "w-b").claim(room=1, most=1, aborts_since_ms=0)
    [unit] = taken.units
    assert (unit.job_id, unit.index, unit.tries) == (job, 0, 2) and unit.token != held.token
    assert await redis.hget(client.keys.job(job), "worker") == b"w-b"
    assert await redis.hget(client.keys.job(job), "attempts") == b"2"
    assert await redis.hget(client.keys.job(job), "held") == b"1"  # one holder, not two
    assert later in await member_scores(redis, client.keys.queue)


async def test_bad_ids_fail_alone_at_the_claim_and_touch_no_other_job(
    client: Client, redis: Redis
) -> None:
    """An id that is not UTF-8 and one that names another job's key (``victim:results``)
    are refused into the failed set with the reason; the good job of the same claim is
    claimed; the victim's results are untouched."""
    keys = client.keys
    victim = await client.enqueue("text-stats", ["data:,v"])
    await redis.hset(keys.results(victim), "0", b"kept")
    envelope = orjson.dumps(
        {
            "t": 1,
            "f": "sluice",
            "a": [],
            "k": {"pipeline": "text-stats", "inputs": ["data:,x"]},
            "et": 1,
        }
    )
    bad_utf8, colliding = b"bad\xff", f"{victim}:results".encode()
    now = int(time.time() * 1000) - 1000
    for bad in (bad_utf8, colliding):
        await redis.set(b"arq:job:" + bad, envelope)
        await redis.zadd(keys.queue, {bad: now})
    claim = await claimer(redis, keys).claim(room=10, most=10, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == [victim]
    failed = await redis.zrange(keys.failed, 0, -1)
    assert set(failed) == {bad_utf8, colliding}
    reasons = await redis.hgetall(keys.refused)
    assert all(b"invalid job id" in reasons[bad] for bad in (bad_utf8, colliding))
    assert await redis.hgetall(keys.results(victim)) == {b"0": b"kept"}
    assert await redis.exists(b"arq:job:" + bad_utf8) == 0
    assert await redis.zcard(keys.queue) == 0


async def test_a_raw_job_gets_its_status_fields_at_the_claim(client: Client, redis: Redis) -> None:
    """A job written with SET + ZADD has no status hash: the claim writes its pipeline,
    total and enqueue time from the envelope."""
    keys = client.keys
    envelope = orjson.dumps(
        {
            "t": 1,
            "f": "sluice",
            "a": [],
            "k": {"pipeline": "text-stats", "inputs": ["data:,a", "data:,b", "data:,c"]},
            "et": 1_700_000_000_000,
        }
    )
    await redis.set(keys.arq_job("raw"), envelope)
    await redis.zadd(keys.queue, {"raw": 1})
    [unit] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert (unit.total, unit.end) == (3, 3)
    fields = await redis.hgetall(keys.job("raw"))
    assert (fields[b"pipeline"], fields[b"total"]) == (b"text-stats", b"3")
    assert float(fields[b"enqueued_at"]) == 1_700_000_000.0


async def test_a_claim_hears_of_cancelled_jobs_once(client: Client, redis: Redis) -> None:
    """A cancel reaches every worker through the claim (even one that claims nothing), once
    per worker: the next claim, given the last one's mark, does not repeat it."""
    job = await client.enqueue("text-stats", ["data:,a"])
    worker = claimer(redis, client.keys)
    await worker.claim(room=1, most=1, aborts_since_ms=0)
    assert await client.cancel(job)
    heard = await worker.claim(room=0, most=0, aborts_since_ms=0)
    assert heard.aborted == [job] and heard.units == []
    again = await worker.claim(room=0, most=0, aborts_since_ms=heard.aborts_seen_ms)
    assert again.aborted == []
    assert await units_of(redis, client.keys, job) == {}


async def test_the_envelope_is_not_sent_again_to_a_worker_that_has_it(
    client: Client, redis: Redis
) -> None:
    """A worker that names a job (the run of it, and the enqueue time of the envelope) among
    those it has read gets its later units without the envelope; one that read another run
    gets it, and so does one that read another job enqueued under the same id before."""
    job = await client.enqueue("text-stats", [f"data:,{i}" for i in range(400)])
    worker = claimer(redis, client.keys)
    [first] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    assert first.envelope is not None
    et = orjson.loads(first.envelope)["et"]
    [second] = (await worker.claim(room=1, most=1, aborts_since_ms=0, cached={job: (1, et)})).units
    assert second.envelope is None
    assert (second.job_id, second.index) == (job, 1)
    # a worker that read an earlier run (before a retry) is sent the envelope again
    [third] = (await worker.claim(room=1, most=1, aborts_since_ms=0, cached={job: (0, et)})).units
    assert third.envelope is not None and third.index == 2
    # ... and one that read the envelope of another job of this id (deleted, enqueued again)
    [fourth] = (
        await worker.claim(room=1, most=1, aborts_since_ms=0, cached={job: (1, et - 1)})
    ).units
    assert fourth.envelope is not None and fourth.index == 3


async def test_a_worker_leaves_the_pipelines_it_does_not_run_to_those_that_do(
    client: Client, redis: Redis
) -> None:
    """Two workers that run different pipelines: each claim passes over work of a pipeline
    the worker does not run (a new job, its next unit, a lapsed lease) and leaves it queued
    for one that does; a pipeline no worker has registered is taken, to fail with its name."""
    pids = await client.enqueue("test-pid", [f"data:,{i}" for i in range(150)], job_id="a-pid")
    stats = await client.enqueue("text-stats", ["data:,words"], job_id="b-stats")
    nobody = await client.enqueue("never-registered", ["data:,x"], job_id="c-nobody")
    await redis.hset(client.keys.pipelines, mapping={"test-pid": "{}", "text-stats": "{}"})

    def runs(name: str, pipeline: str, lease_s: float = 30.0) -> Claimer:
        return Claimer(redis, client.keys, name, lease_s, 100, 600, pipelines=[pipeline])

    texts, pid_a, pid_b = (
        runs("w-t", "text-stats"),
        runs("w-p", "test-pid", 0.05),
        runs("w-q", "test-pid"),
    )
    claim = await texts.claim(room=1000, most=10, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == [stats, nobody]
    assert set(await member_scores(redis, client.keys.queue)) == {pids}
    assert (await client.status(pids)).state == JobState.QUEUED

    claim = await pid_a.claim(room=1, most=1, aborts_since_ms=0)
    assert [(u.job_id, u.index) for u in claim.units] == [(pids, 0)]
    await asyncio.sleep(0.1)  # its lease lapses; its next unit is due
    claim = await texts.claim(room=1000, most=10, aborts_since_ms=0)
    assert claim.units == []
    assert set(await member_scores(redis, client.keys.queue)) == {f"{pids}#1"}
    assert f"{pids}#0" in await member_scores(redis, client.keys.leases)

    claim = await pid_b.claim(room=1000, most=10, aborts_since_ms=0)
    assert sorted((u.job_id, u.index, u.tries) for u in claim.units) == [
        (pids, 0, 2),
        (pids, 1, 1),
    ]


async def test_a_worker_finds_its_work_behind_more_than_a_window_of_other_work(
    client: Client, redis: Redis
) -> None:
    """Forty jobs of a pipeline this worker does not run are due first (more than one claim's
    window): the claim looks further and takes the job of its own pipeline behind them."""
    others = [await client.enqueue("test-pid", ["data:,x"], job_id=f"a{i:02}") for i in range(40)]
    mine = await client.enqueue("text-stats", ["data:,words"], job_id="b-mine")
    await redis.hset(client.keys.pipelines, mapping={"test-pid": "{}", "text-stats": "{}"})
    texts = Claimer(redis, client.keys, "w-t", 30, 100, 600, pipelines=["text-stats"])
    claim = await texts.claim(room=1, most=1, aborts_since_ms=0)
    assert [u.job_id for u in claim.units] == [mine]
    assert set(await member_scores(redis, client.keys.queue)) == set(others)


async def test_a_small_jobs_straight_line_start_writes_and_answers_what_the_general_one_does(
    client: Client, redis: Redis
) -> None:
    """A one-unit job queued for its first run starts on the CLAIM script's straight line;
    the same job with a deferral already past (``not_before``) takes the general path. Both
    leave the same status hash (but for clocks and tokens), the same unit, and the same
    queue, lease, running-set and event entries."""
    keys = client.keys
    small = await client.enqueue("text-stats", ["data:,a", "data:,b"])
    general = await client.enqueue("text-stats", ["data:,a", "data:,b"])
    await redis.hset(keys.job(general), "not_before", int(time.time() * 1000) - 1000)
    claim = await claimer(redis, keys).claim(room=4, most=2, aborts_since_ms=0)
    units = {u.job_id: u for u in claim.units}
    assert set(units) == {small, general}
    hashes, answers = [], []
    for job in (small, general):
        fields = {k.decode(): v.decode() for k, v in (await redis.hgetall(keys.job(job))).items()}
        token, tries = fields.pop("unit:0").split(" ")
        assert token == units[job].token and tries == "1"
        assert fields.pop("envelope").encode() == units[job].envelope  # kept for the end
        for clock in ("enqueued_at", "started_at", "not_before"):
            fields.pop(clock, None)
        hashes.append(fields)
        u = units[job]
        answers.append(
            (
                u.index,
                u.first,
                u.end,
                u.tries,
                u.units,
                u.total,
                u.run,
                u.counted,
                u.stored,
                u.envelope is not None,
            )
        )
        assert await redis.ttl(keys.job(job)) == -1  # no TTL while it runs
    assert hashes[0] == hashes[1]
    assert hashes[0]["state"] == "in_progress" and hashes[0]["held"] == "1"
    assert answers[0] == answers[1] == (0, 0, 2, 1, 1, 2, 1, False, 0, True)
    assert await redis.zcard(keys.queue) == 0
    assert set(await member_scores(redis, keys.leases)) == {f"{small}#0", f"{general}#0"}
    assert [await redis.sismember(keys.running, job) for job in (small, general)] == [1, 1]
    [(_, started)] = await redis.xrevrange(keys.events, count=1)
    assert started[b"type"] == b"started" and set(started[b"jobs"].split()) == {
        small.encode(),
        general.encode(),
    }


async def test_a_unit_knows_when_its_run_started_to_the_millisecond(
    client: Client, redis: Redis
) -> None:
    """Every unit handed out says when its job's run started as the status hash does, not cut
    to the second (a number in a script's reply is an integer): a job's timeout counts from
    it, and a sub-second timeout_s failed the job before it ran."""
    small = await client.enqueue("text-stats", ["data:,a"])
    big = await client.enqueue("text-stats", [f"data:,{i}" for i in range(150)])
    worker = claimer(redis, client.keys)
    units = (await worker.claim(room=300, most=3, aborts_since_ms=0)).units
    units += (await worker.claim(room=100, most=1, aborts_since_ms=0)).units
    assert sorted((u.job_id, u.index) for u in units) == sorted([(small, 0), (big, 0), (big, 1)])
    for unit in units:
        started = await redis.hget(client.keys.job(unit.job_id), "started_at")
        assert started is not None and unit.started_at == float(started)
