"""Listing jobs by SCAN, and the overview's sampled history: what they find and compute."""

from __future__ import annotations

import time

from producer import Client, JobState
from producer.contract.wire import now_ms
from producer.dashboard.history import History, Sample
from producer.dashboard.listing import JobListing
from producer.redis.typed import Redis


async def test_listing_finds_every_kind_of_job(client: Client, redis: Redis) -> None:
    """Jobs from the client, one written with raw Redis commands, and none of the sub-keys."""
    queued = await client.enqueue("text-stats", ["data:,a"])
    deferred = await client.enqueue("thumbnail", ["data:,b"], defer_s=3600)
    cancelled = await client.enqueue("text-stats", ["data:,c"])
    await client.cancel(cancelled)
    envelope = '{"t":1,"f":"sluice","a":[],"k":{"pipeline":"text-stats","inputs":["data:,r"]}}'
    await redis.set(client.keys.arq_job("raw-job"), envelope)
    await redis.zadd(client.keys.for_job("raw-job").queue, {"raw-job": now_ms()})
    await redis.hset(client.keys.results(queued), "0", "{}")  # a record hash is not a job

    snapshot = await JobListing(client, limit=100).snapshot()
    states = {job.job_id: (job.state, job.pipeline) for job in snapshot.jobs}
    assert states == {
        queued: (JobState.QUEUED, "text-stats"),
        deferred: (JobState.DEFERRED, "thumbnail"),
        cancelled: (JobState.CANCELLED, "text-stats"),
        "raw-job": (JobState.QUEUED, "text-stats"),
    }
    assert snapshot.counts()["queued"] == 2 and snapshot.counts()["complete"] == 0
    assert not snapshot.truncated
    assert [j.job_id for j in snapshot.select(search="RAW")] == ["raw-job"]


async def test_listing_stops_at_its_limit_and_says_so(client: Client) -> None:
    """Past SLUICE_DASHBOARD_MAX_LISTED jobs the snapshot is marked truncated."""
    for i in range(3):
        await client.enqueue("text-stats", [f"data:,{i}"])
    snapshot = await JobListing(client, limit=2).snapshot()
    assert (len(snapshot.jobs), snapshot.truncated) == (2, True)


async def test_snapshots_are_shared_until_invalidated(client: Client) -> None:
    """Polls within the refresh interval share one snapshot; an action's invalidate refreshes."""
    listing = JobListing(client, limit=100)
    first = await listing.snapshot()
    await client.enqueue("text-stats", ["data:,new"])
    assert await listing.snapshot() is first
    listing.invalidate()
    assert len((await listing.snapshot()).jobs) == 1


async def test_history_samples_throughput_only_while_watched(client: Client) -> None:
    """Unwatched, a sample reads the queue only; watched, it adds the inputs stored."""
    history = History(client, JobListing(client, limit=100))
    await client.enqueue("text-stats", ["data:,x"])
    quiet = await history.sample()
    assert (quiet.ready, quiet.stored) == (1, None)
    history.viewed()
    assert (await history.sample()).stored == 0


def test_throughput_is_the_rate_of_inputs_stored(client: Client) -> None:
    """Inputs stored per second over the last minute; never negative; None from one sample."""
    history = History(client, JobListing(client, limit=100))
    now = time.time()
    history.samples.append(Sample(now - 90, 0, 0, 0, 0))
    assert history.throughput() is None
    history.samples.extend([Sample(now - 60, 0, 0, 0, 100), Sample(now, 0, 0, 0, 700)])
    assert history.throughput() == 10.0
    history.samples.append(Sample(now + 10, 0, 0, 0, 5))  # jobs expired: the sum fell
    assert history.throughput() == 0.0
