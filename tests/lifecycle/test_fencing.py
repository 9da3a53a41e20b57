"""Renewal and the store stage against a real server: a token that lost its unit is told so,
and writes nothing."""

from __future__ import annotations

import asyncio
import math

import worker.pipelines  # noqa: F401  (registers the built-in pipelines)
from producer import Client
from producer.redis.typed import Redis
from tests.faults.conftest import poll
from tests.lifecycle.support import claimer, member_scores
from worker.lifecycle.lease import Leases
from worker.registry import REGISTRY
from worker.stages.items import Item, JobRun
from worker.stages.store import StoreStage


class Holder:
    """Stands where a running unit's JobRun stands: told its lease lasts, or is lost."""

    def __init__(self) -> None:
        self.valid_until = 0.0
        self.lost = False

    def lose(self) -> None:
        self.lost = True


async def test_renewal_extends_held_leases_and_names_the_lost_ones(
    client: Client, redis: Redis
) -> None:
    """One renewal round: the unit still held (lapsed, but nobody took it) gets a later lapse
    and a longer local validity; the unit taken over by another worker, and the cancelled
    job's unit, are reported lost and dropped, their leases left to their new state."""
    keys = client.keys
    for name in ("a-taken", "b-kept", "c-cancelled"):
        await client.enqueue("text-stats", ["data:,a"], job_id=name)
    worker = claimer(redis, keys, "w-a", lease_s=0.3)
    units = (await worker.claim(room=3, most=3, aborts_since_ms=0)).units
    leases = Leases(redis, keys, lease_s=0.3)
    holders = {u.job_id: Holder() for u in units}
    for unit in units:
        leases.hold(unit, holders[unit.job_id], claimed_at=0.0)
    await asyncio.sleep(0.4)
    [again] = (await claimer(redis, keys, "w-b").claim(room=1, most=1, aborts_since_ms=0)).units
    assert again.job_id == "a-taken"  # all lapsed at once: the first member sorts first
    assert await client.cancel("c-cancelled")
    before = await member_scores(redis, keys.leases)
    await leases.renew()
    assert holders["a-taken"].lost and holders["c-cancelled"].lost
    assert not holders["b-kept"].lost and holders["b-kept"].valid_until > 0
    assert set(leases.held) == {"b-kept#0"}
    scores = await member_scores(redis, keys.leases)
    assert scores["a-taken#0"] == before["a-taken#0"]  # w-b's lease, untouched by w-a
    assert scores["b-kept#0"] > before["b-kept#0"]
    assert "c-cancelled#0" not in scores


async def test_a_stale_attempt_drops_only_its_own_lease(client: Client, redis: Redis) -> None:
    """A unit cancelled, retried and handed to the same worker again has two attempts in it at
    once: the stale one, ending (or told by a renewal that it lost the unit), leaves the new
    hand-out's lease held and renewed."""
    keys = client.keys
    job = await client.enqueue("text-stats", ["data:,a"])
    worker = claimer(redis, keys, "w-a")
    [stale] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    leases = Leases(redis, keys, lease_s=30.0)
    old = Holder()
    leases.hold(stale, old, claimed_at=0.0)
    assert await client.cancel(job)
    await client.retry(job)
    [again] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    assert again.member == stale.member and again.token != stale.token
    new = Holder()
    leases.hold(again, new, claimed_at=0.0)
    leases.drop(stale)
    assert set(leases.held) == {again.member}
    await leases.renew()
    assert not new.lost and new.valid_until > 0
    leases.drop(again)
    assert leases.held == {}


async def test_the_store_refuses_a_unit_its_token_no_longer_holds(
    client: Client, redis: Redis
) -> None:
    """Records of a unit taken over are not written, and the run is stopped as lost; the
    records of another unit in the same batch are. (Neither run is all fed yet: a run's
    last records go with its ending, tests/lifecycle/test_last_records.py.)"""
    keys = client.keys
    await client.enqueue("text-stats", ["data:,a"], job_id="a-lost")
    await client.enqueue("text-stats", ["data:,b"], job_id="b-held")
    lost, held = (await claimer(redis, keys, "w-a").claim(room=2, most=2, aborts_since_ms=0)).units
    await redis.hset(keys.job("a-lost"), "unit:0", "someone-else 2")
    pipeline = REGISTRY.pipelines["text-stats"]
    runs = [JobRun(u.job_id, pipeline, {}, u.field, u.token) for u in (lost, held)]
    inbox: asyncio.Queue[Item] = asyncio.Queue()
    stage = StoreStage(redis, keys, inbox, batch_size=10)
    for run in runs:
        item = Item(run, 0, "data:,x")
        item.result_json = b"{}"
        run.item_submitted()
        await inbox.put(item)
    task = asyncio.create_task(stage.run())

    async def stored() -> bool:
        return all(run.finished for run in runs)

    await poll(stored, 10)
    task.cancel()
    assert runs[0].lost and runs[0].stopped() and not runs[1].lost
    assert await redis.hlen(keys.results("a-lost")) == 0
    assert await redis.hlen(keys.results("b-held")) == 1
    assert await redis.hget(keys.job("b-held"), "stored") == b"1"


def test_a_run_stops_on_its_own_once_its_lease_is_not_surely_held() -> None:
    """Past ``valid_until`` (a worker paused past its lease) a run stops before anything
    more is fetched or written, without asking the server."""
    run = JobRun("j", REGISTRY.pipelines["text-stats"], {}, "unit:0", "t")
    assert run.valid_until == math.inf and not run.stopped()
    run.valid_until = 0.0
    assert run.stopped() and run.lost and run.cancelled
