"""The bottleneck is the stage whose capacity was busiest, not the one with the most time."""

from __future__ import annotations

from producer import Client, JobState
from producer.contract.models import JobStatus, StageTiming
from tests.support.http_server import HttpServer
from tests.support.workers import WorkerFactory


def test_many_parallel_fetches_weigh_less_than_two_busy_processes() -> None:
    """The issue's case: 64 fetches in flight at a tenth of their capacity against 2 pool
    processes nearly always busy — transform, though fetching adds up to more seconds."""
    status = JobStatus(
        job_id="j",
        state=JobState.IN_PROGRESS,
        stages={
            "fetch": StageTiming(count=110, total_s=55.0, slot_s=64 * 10.0),
            "transform": StageTiming(count=37, total_s=18.5, slot_s=2 * 10.0),
            "store": StageTiming(count=37, total_s=0.2, slot_s=2 * 10.0),
        },
    )
    assert status.bottleneck == "transform"
    assert status.stages["transform"].utilisation == 0.925
    assert status.as_dict()["stages"]["fetch"]["utilisation"] == 55.0 / 640


def test_without_capacities_the_stage_with_most_time_is_named() -> None:
    """A status written by a worker that recorded no capacities keeps the old rule."""
    status = JobStatus(
        job_id="j",
        state=JobState.COMPLETE,
        stages={"fetch": StageTiming(count=1, total_s=2.0), "store": StageTiming(count=1)},
    )
    assert status.bottleneck == "fetch" and status.stages["fetch"].utilisation is None


async def test_a_real_transform_bound_job_names_transform(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """20 inputs behind 0.3 s of latency, 16 fetches at a time, and a 0.1 s transform on one
    process: fetching adds up to three times the seconds, but it is the one process that
    holds the job up, and the worker's capacities say so."""
    http.latency_s = 0.3
    for i in range(20):
        http.documents[f"d{i}"] = b"x"
    workers(
        pipelines="tests.sample_pipelines",
        pool_size=1,
        fetch_concurrency=16,
        transform_batch_items=1,
    )
    job = await client.enqueue(
        "test-sleep", [http.url(f"d{i}") for i in range(20)], options={"seconds": 0.1}
    )
    status = await client.wait(job, timeout_s=60)
    assert status.state == JobState.COMPLETE
    fetch, transform = status.stages["fetch"], status.stages["transform"]
    assert fetch.total_s > transform.total_s  # the old rule would have said fetch
    assert status.bottleneck == "transform"
    assert (transform.utilisation or 0) > (fetch.utilisation or 0)
