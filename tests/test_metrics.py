"""/metrics of a real worker follows its jobs, stages, pool and the queue in Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import Counter, Histogram

from producer import Client, JobState
from producer.contract.keys import Keys
from producer.contract.models import STAGES, QueueStats
from producer.contract.wire import now_ms
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.support.http_server import HttpServer
from tests.support.scrape import Samples, key, scrape, wait_until
from tests.support.servers import free_port
from tests.support.workers import WorkerFactory
from worker.errors import FetchError
from worker.fetchers.data import DataFetcher
from worker.fetchers.file import FileFetcher
from worker.fetchers.http import HttpFetcher
from worker.observe import instrument, metrics
from worker.observe.instrument import fetch_error_kind
from worker.settings import WorkerConfig

TEXT = "text-stats"


async def scrape_when(port: int, name: str, value: float, **labels: str) -> Samples:
    """Scrape until the sample ``name{labels}`` reaches ``value`` (it is recorded after the
    job's status is written), then return every sample."""
    samples: Samples = {}

    async def reached() -> bool:
        nonlocal samples
        samples = await scrape(port)
        return samples.get(key(name, **labels)) == value

    await wait_until(reached)
    return samples


async def test_a_job_is_counted_by_stage_outcome_and_error_kind(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """One job: its unit started, done and timed, the job complete; its inputs counted per
    stage and outcome."""
    port = free_port()
    workers(metrics_port=port)
    inputs = [data_uri(b"a b"), data_uri(b"c"), data_uri(b"d e f"), http.url("gone"), "nope:x"]
    job_id = await client.enqueue(TEXT, inputs)
    assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
    done = {"pipeline": TEXT, "outcome": "complete"}
    s = await scrape_when(port, "sluice_jobs_finished_total", 1, **done)
    assert s[key("sluice_units_started_total", pipeline=TEXT)] == 1
    unit_done = {"pipeline": TEXT, "outcome": "done"}
    assert s[key("sluice_units_finished_total", **unit_done)] == 1
    assert s[key("sluice_unit_duration_seconds_count", **unit_done)] == 1
    assert s[key("sluice_job_queue_wait_seconds_count", pipeline=TEXT)] == 1
    counted = {
        (stage, outcome): s.get(
            key("sluice_items_total", pipeline=TEXT, stage=stage, outcome=outcome)
        )
        for stage in STAGES
        for outcome in ("ok", "error")
    }
    assert counted == {
        ("fetch", "ok"): 3,
        ("fetch", "error"): 2,
        ("transform", "ok"): 3,
        ("transform", "error"): None,
        ("store", "ok"): 3,
        ("store", "error"): 2,
    }
    assert s[key("sluice_fetch_errors_total", kind="http_4xx")] == 1
    assert s[key("sluice_fetch_errors_total", kind="unsupported_scheme")] == 1
    assert s[key("sluice_stage_duration_seconds_count", stage="fetch")] == 5
    assert s[key("sluice_stage_duration_seconds_count", stage="transform")] == 3
    assert s[key("sluice_stage_duration_seconds_count", stage="store")] >= 1
    assert s[key("sluice_pool_processes")] == 2
    assert s[key("sluice_stage_queue_capacity_items", queue="store")] == 256
    assert s[key("sluice_worker_units_held")] == 0


async def test_queue_gauges_match_sluice_stats(
    client: Client, workers: WorkerFactory, redis: Redis, namespace: str
) -> None:
    """Ready (running jobs excluded), deferred, in progress, failed, workers and units agree
    with `Client.stats`; a malformed job counts as failed under pipeline "unknown"."""
    port = free_port()
    workers(metrics_port=port, pipelines="tests.sample_pipelines", max_jobs=1, shutdown_grace_s=0)
    keys = Keys(namespace)
    await redis.set(keys.arq_job("raw"), b"not json")
    await redis.zadd(keys.queue, {"raw": now_ms()})
    assert (await client.wait("raw", timeout_s=60)).state == JobState.FAILED
    await client.enqueue("test-sleep", [data_uri(b"x")], options={"seconds": 120})

    async def running() -> bool:
        return (await client.stats()).in_progress == 1

    await wait_until(running)
    await client.enqueue(TEXT, [data_uri(b"1")])
    await client.enqueue(TEXT, [data_uri(b"2")])
    await client.enqueue(TEXT, [data_uri(b"3")], defer_s=600)
    stats = await client.stats()

    async def aged() -> bool:  # the oldest ready job has waited a measurable time
        nonlocal stats
        stats = await client.stats()
        return stats.oldest_ready_age_s > 0

    await wait_until(aged)
    assert stats.model_dump(exclude={"oldest_ready_age_s", "queues"}) == {
        "ready": 2,
        "deferred": 1,
        "in_progress": 1,
        "failed": 1,
        "workers": 1,
        "ready_units": 2,
        "held_units": 1,
    }
    assert list(stats.queues) == ["default"]
    s: Samples = {}

    async def agrees() -> bool:
        nonlocal s
        s = await scrape(port)
        return all(
            s.get(key("sluice_queue_jobs", state=state)) == getattr(stats, state)
            for state in ("ready", "deferred", "in_progress", "failed")
        ) and (
            s.get(key("sluice_queue_units", state="ready")),
            s.get(key("sluice_queue_units", state="held")),
        ) == (2, 1)

    await wait_until(agrees)
    assert s[key("sluice_workers_live")] == 1
    assert s[key("sluice_queue_ready_jobs", queue="default")] == 2
    assert s[key("sluice_queue_deferred_jobs", queue="default")] == 1
    assert s[key("sluice_queue_oldest_ready_age_seconds")] > 0 and stats.oldest_ready_age_s > 0
    unknown = {"pipeline": "unknown", "outcome": "failed"}
    assert s[key("sluice_jobs_finished_total", **unknown)] == 1
    assert s[key("sluice_worker_units_held")] == 1
    assert s[key("sluice_pool_busy_processes")] == 1


async def test_pool_restarts_are_counted_by_reason(
    client: Client, workers: WorkerFactory, tmp_path: Path
) -> None:
    """A crash, a timeout and recycling after SLUICE_POOL_MAX_TASKS each count as theirs."""
    port = free_port()
    workers(
        metrics_port=port,
        pipelines="tests.sample_pipelines",
        pool_size=1,
        pool_max_tasks=2,
        transform_batch_items=1,
        transform_attempts=1,
        transform_timeout_s=1,
    )
    crashing = await client.enqueue("test-exit", [data_uri(b"crash")] + [data_uri(b"ok")] * 4)
    assert (await client.wait(crashing, timeout_s=60)).failed == 1
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    hanging = await client.enqueue(
        "test-hang", [data_uri(b"hang")], options={"pid_dir": str(pid_dir)}
    )
    assert (await client.wait(hanging, timeout_s=60)).failed == 1
    s = await scrape_when(
        port, "sluice_jobs_finished_total", 1, pipeline="test-hang", outcome="complete"
    )
    assert s[key("sluice_pool_process_restarts_total", reason="crash")] == 1
    assert s[key("sluice_pool_process_restarts_total", reason="timeout")] == 1
    assert s[key("sluice_pool_process_restarts_total", reason="recycle")] >= 1


@pytest.mark.parametrize(
    ("fetch", "kind"),
    [
        (lambda http, tmp: _http(http.url("missing")), "http_4xx"),
        (lambda http, tmp: _http(http.url("status/503")), "http_5xx"),
        (lambda http, tmp: _http(http.url("doc"), fetch_allow=[]), "refused"),
        (lambda http, tmp: _http(f"http://127.0.0.1:{free_port()}/x"), "connection"),
        (lambda http, tmp: _http(http.url("doc"), max_bytes=2), "too_large"),
        (lambda http, tmp: _http("http:///no-host"), "invalid"),
        (lambda http, tmp: DataFetcher().fetch("data:;base64,@@@", 100), "invalid"),
        (lambda http, tmp: _file(tmp, f"file://{tmp}/none"), "not_found"),
        (lambda http, tmp: _file(tmp, "file:///etc/hostname"), "refused"),
    ],
)
async def test_fetch_errors_of_the_real_fetchers_get_their_kind(
    http: HttpServer, tmp_path: Path, fetch: Any, kind: str
) -> None:
    """The message each built-in fetcher writes maps to the right kind label."""
    http.documents["doc"] = b"some bytes"
    with pytest.raises(FetchError) as caught:
        await fetch(http, tmp_path)
    assert fetch_error_kind(str(caught.value)) == kind


async def test_a_slow_fetch_is_a_timeout(http: HttpServer) -> None:
    """A fetch past SLUICE_FETCH_TIMEOUT_S is counted as a timeout."""
    http.latency_s = 2
    with pytest.raises(FetchError) as caught:
        await _http(http.url("doc"), fetch_timeout_s=0.2)
    assert fetch_error_kind(str(caught.value)) == "timeout"


def test_metric_names_and_labels_follow_prometheus_conventions() -> None:
    """Counters end in _total, histograms are in seconds, labels never carry a job id."""
    metrics.QUEUE.stats = QueueStats(
        ready=1, deferred=0, in_progress=0, failed=0, workers=1, oldest_ready_age_s=1.5
    )
    instrument.rate_waited("host", "*.example.org", 0.25)  # so its families are checked too
    metrics.SCHEDULE_TICKS.labels("nightly", "fired")
    families = [f for f in metrics.REGISTRY.collect() if f.name.startswith("sluice_")]
    metrics.QUEUE.stats = None
    # "limit": a rate limit's rule as configured (SLUICE_FETCH_RATES...), never a host fetched;
    # "schedule": a schedule's name from the worker's settings, never a tick or a job id
    bounded = {"pipeline", "stage", "outcome", "kind", "queue", "reason", "state", "limit"}
    bounded |= {"schedule"}
    defined = {m._name: m for m in vars(metrics).values() if isinstance(m, Counter | Histogram)}
    assert {
        "sluice_queue_jobs",
        "sluice_queue_oldest_ready_age_seconds",
        "sluice_rate_limited",
        "sluice_schedule_ticks",
    } <= {f.name for f in families}
    for family in families:
        labels = {name for sample in family.samples for name in sample.labels}
        assert labels <= bounded | {"le", "worker", "version", "namespace"}, family.name
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
    assert all(name.startswith("sluice_") for name in defined)


async def _http(uri: str, max_bytes: int = 1 << 20, **settings: Any) -> bytes:
    base: dict[str, Any] = {"fetch_allow": ["127.0.0.0/8"], "fetch_retries": 0}
    fetcher = HttpFetcher(WorkerConfig(_env_file=None, **(base | settings)))
    try:
        return await fetcher.fetch(uri, max_bytes)
    finally:
        await fetcher.close()


async def _file(root: Path, uri: str) -> bytes:
    return await FileFetcher(WorkerConfig(_env_file=None, file_roots=[str(root)])).fetch(uri, 100)
