"""Rate limits kept by real worker processes against a real local HTTP server, which counts
when each request came: a limit shared by two workers holds for the two together.

The assertions are upper bounds on requests in any window — what a limit promises — with a
margin for a loaded machine (a worker stalled a moment sends its reserved requests late, and
so closer together); a limit kept per process instead would break them by far.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from producer import Client, ClientSettings, JobState, JobStatus
from tests.support.http_server import HttpServer
from tests.support.scrape import key, scrape, wait_until
from tests.support.servers import Server, free_port, valkey_binary
from tests.support.workers import WorkerFactory
from worker.fetchers.rate import RATE as RATE_SCRIPT

RATE = 10  # requests per second
MARGIN = 4  # requests over rate x window + burst a loaded machine may bunch together
WINDOWS_S = (0.5, 1.0, 2.0, 3.0)


def most_in_window(arrivals: list[float], window_s: float) -> int:
    """The most requests that came within any ``window_s`` (a window starting at each)."""
    times = sorted(arrivals)
    return max(sum(1 for u in times[i:] if u - t <= window_s) for i, t in enumerate(times))


def assert_within_rate(arrivals: list[float], rate: float, burst: int = 1) -> None:
    for window_s in WINDOWS_S:
        seen = most_in_window(arrivals, window_s)
        assert seen <= rate * window_s + burst + MARGIN, (window_s, seen, sorted(arrivals))


# each worker holds at most two units of five inputs: both take part in a job
LIMITS: dict[str, object] = {"unit_inputs": 5, "max_jobs": 2, "fetch_concurrency": 8}


def assert_rate_limited(status: JobStatus, total: int) -> None:
    """The job waited for its slots, counted as waiting, and the waiting is its bottleneck."""
    assert status.state == JobState.COMPLETE and status.stored == total and status.failed == 0
    assert status.rate_wait_count > total // 2 and status.rate_wait_s > 1.0
    assert status.stages["fetch"].total_s < status.rate_wait_s  # the waiting is not fetching
    assert status.bottleneck == "rate_limit"


async def test_two_workers_keep_one_host_limit_together(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """40 inputs on one host at 10/s across two workers: no window sees more than 10/s, the
    status and the bottleneck say the job waited, and metrics and heartbeats show the limit."""
    for i in range(40):
        http.documents[f"d{i}"] = b"some words"
    port = free_port()
    started = [
        workers(wait=False, **LIMITS, fetch_rates=f"127.0.0.1={RATE}", metrics_port=port),
        workers(wait=False, **LIMITS, fetch_rates=f"127.0.0.1={RATE}"),
    ]
    for worker in started:
        worker.wait_ready(workers.redis_url, workers.namespace)
    job = await client.enqueue("text-stats", [http.url(f"d{i}") for i in range(40)])
    status = await client.wait(job, timeout_s=60)
    assert_rate_limited(status, 40)
    assert len(http.arrivals) == 40
    assert_within_rate(http.arrivals, RATE)
    assert all(worker.units_started() for worker in started), "one worker did it all"
    waited = [r.timings.get("rate_wait_s", 0) async for r in client.results(job)]
    assert sum(1 for seconds in waited if seconds > 0) == status.rate_wait_count
    infos = await client.workers()
    assert [info.rates for info in infos] == [[f"host 127.0.0.1 {RATE}/s"]] * 2
    samples = await scrape(port)
    assert samples[key("sluice_rate_limited_total", kind="host", limit="127.0.0.1")] > 0
    assert samples[key("sluice_rate_limit_wait_seconds_count", kind="host", limit="127.0.0.1")]


@pytest.mark.parametrize("host_rates", ["", f"127.0.0.1={2.5 * RATE}"])
async def test_two_workers_keep_one_pipeline_limit_together(
    client: Client, workers: WorkerFactory, http: HttpServer, host_rates: str
) -> None:
    """A pipeline's limit holds its fetches across workers, whatever host they go to; under
    a looser host limit too (each fetch then asks for both slots at once)."""
    for i in range(24):
        http.documents[f"p{i}"] = b"more words"
    workers.many(2, **LIMITS, pipeline_rates=f"text-stats={RATE}:2", fetch_rates=host_rates)
    job = await client.enqueue("text-stats", [http.url(f"p{i}") for i in range(24)])
    status = await client.wait(job, timeout_s=60)
    assert_rate_limited(status, 24)
    assert_within_rate(http.arrivals, RATE, burst=2)


async def test_a_fetch_waiting_for_its_slot_is_dropped_when_its_job_is_cancelled(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """At 2 inputs/s with 8 fetches in flight, most fetches wait seconds for their slots; a
    cancel drops them as they wake: no request is made for a cancelled job's waiting fetch."""
    for i in range(30):
        http.documents[f"c{i}"] = b"some words"
    workers(unit_inputs=30, fetch_concurrency=8, pipeline_rates="text-stats=2")
    job = await client.enqueue("text-stats", [http.url(f"c{i}") for i in range(30)])

    async def two_fetched() -> bool:
        return len(http.arrivals) >= 2

    await wait_until(two_fetched)
    await client.cancel(job)
    at_cancel = len(http.arrivals)
    await asyncio.sleep(4.0)  # the slots of the fetches waiting then (up to 3.5 s ahead) pass
    # a slot or two may come before the worker hears of the cancel (its next poll)
    assert len(http.arrivals) <= at_cancel + 2, (at_cancel, len(http.arrivals))
    assert (await client.status(job)).state == JobState.CANCELLED


async def test_an_unlimited_fetch_never_calls_the_limiter(
    workers: WorkerFactory, http: HttpServer, tmp_path: Path, namespace: str
) -> None:
    """With limits set for another host and another pipeline, a job that none of them covers
    never runs the limiter's script (the server never even loads it); a job under one does."""
    fresh = Server(valkey_binary(), tmp_path / "fresh").start()
    try:
        workers(
            redis_url=fresh.url,
            pipelines="tests.sample_pipelines",
            fetch_rates="api.example.com=1",
            pipeline_rates="test-pid=1000",
        )
        settings = ClientSettings(redis_url=fresh.url, namespace=namespace, _env_file=None)
        sha = hashlib.sha1(RATE_SCRIPT.encode()).hexdigest()
        http.documents["u"] = b"unlimited"
        async with Client(settings) as client:
            free = await client.enqueue("text-stats", [http.url("u")] * 20)
            assert (await client.wait(free, timeout_s=60)).state == JobState.COMPLETE
            assert await client.redis.script_exists(sha) == [False]
            limited = await client.enqueue("test-pid", [http.url("u")] * 3)
            status = await client.wait(limited, timeout_s=60)
            assert status.state == JobState.COMPLETE and status.rate_wait_s < 1
            assert await client.redis.script_exists(sha) == [True]
    finally:
        workers.stop_all()
        fresh.stop()


def test_a_bad_rate_stops_the_worker_naming_the_setting(workers: WorkerFactory) -> None:
    """A rate that is no rate, or a limit for a pipeline no module registers, stops start-up."""
    bad_rate = workers(wait=False, fetch_rates="127.0.0.1=fast")
    misspelt = workers(wait=False, pipeline_rates="text_stats=5")
    assert bad_rate.wait(60) == 2 and misspelt.wait(60) == 2
    assert "SLUICE_FETCH_RATES" in bad_rate.log() and "'127.0.0.1=fast'" in bad_rate.log()
    assert "SLUICE_PIPELINE_RATES: no pipeline 'text_stats'" in misspelt.log()
