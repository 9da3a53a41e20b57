"""Work spreads over every live worker: a backlog, a scale-up, one big job, a small job
beside a big one, many workers with few slots each. Real worker processes, real HTTP
latency; the assertions are about who did what and in what order, never about time."""

from __future__ import annotations

import signal

from producer import Client, JobState
from tests.faults.conftest import poll
from tests.support.http_server import HttpServer
from tests.support.workers import WorkerFactory, WorkerProcess

# small units and few fetches at a time, so that a handful of inputs keep a worker busy
FLEET = {"unit_inputs": 10, "fetch_concurrency": 4, "pool_size": 1}


def documents(http: HttpServer, count: int, latency_s: float = 0.05) -> list[str]:
    http.latency_s = latency_s
    for i in range(count):
        http.documents[f"d{i}"] = f"word{i} ".encode() * 3
    return [http.url(f"d{i}") for i in range(count)]


async def complete(client: Client, jobs: list[str], totals: list[int]) -> None:
    """Every job complete with exactly one record per input, in input order."""
    for job_id, total in zip(jobs, totals, strict=True):
        status = await client.wait(job_id, timeout_s=120)
        assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, total, 0)
        indexes = [record.index async for record in client.results(job_id)]
        assert indexes == list(range(total))


def took_units(workers: list[WorkerProcess]) -> list[int]:
    return [worker.units_started() for worker in workers]


async def test_a_backlog_queued_first_spreads_over_every_worker(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """Eight jobs queued before four workers start: every worker runs units of them."""
    urls = documents(http, 40)
    jobs = [await client.enqueue("text-stats", urls) for _ in range(8)]
    fleet = workers.many(4, **FLEET)
    await complete(client, jobs, [40] * 8)
    assert all(count >= 2 for count in took_units(fleet)), took_units(fleet)


async def test_workers_that_start_during_a_backlog_join_it(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """One worker has a backlog to itself; three more come in while it works (a KEDA
    scale-up): each of them takes units of the jobs already running. (The three are started
    first and frozen with SIGSTOP, so that their start-up time cannot decide the test.)"""
    urls = documents(http, 40)
    first, *late = workers.many(4, **FLEET)
    for worker in late:
        worker.signal(signal.SIGSTOP)
    jobs = [await client.enqueue("text-stats", urls) for _ in range(8)]

    async def under_way() -> bool:
        return (await client.status(jobs[0])).stored >= 10

    await poll(under_way, 60)
    for worker in late:
        worker.signal(signal.SIGCONT)
    await complete(client, jobs, [40] * 8)
    assert first.units_started() >= 1
    assert all(count >= 1 for count in took_units(late)), took_units(late)


async def test_one_big_job_runs_on_every_worker(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """A single job of 400 inputs (40 units) runs on all four workers at once; its results
    come back whole and in input order."""
    fleet = workers.many(4, **FLEET)
    urls = documents(http, 400)
    job = await client.enqueue("text-stats", urls)
    await complete(client, [job], [400])
    assert all(count >= 2 for count in took_units(fleet)), took_units(fleet)
    assert sum(took_units(fleet)) >= 40
    assert sum(http.hits.values()) <= 400 + 4 * FLEET["fetch_concurrency"]


async def test_a_small_job_is_not_stuck_behind_a_big_one(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """On one worker busy with a big job, a small job enqueued later ends while the big
    one still runs: the big job's units take turns with it."""
    workers(**FLEET)
    big = await client.enqueue("text-stats", documents(http, 400))

    async def under_way() -> bool:
        return (await client.status(big)).stored >= 10

    await poll(under_way, 60)
    small = await client.enqueue("text-stats", [http.url("d0")])
    done = await client.wait(small, timeout_s=60)
    assert done.state == JobState.COMPLETE
    assert (await client.status(big)).state == JobState.IN_PROGRESS
    await complete(client, [big], [400])


async def test_six_workers_with_two_slots_each_all_get_work(
    client: Client, workers: WorkerFactory
) -> None:
    """Six workers that hold at most two units each, 36 ready one-input jobs of half a
    second: no worker sits idle while jobs wait (held work leaves the queue's front)."""
    fleet = workers.many(
        6, pipelines="tests.sample_pipelines", max_jobs=2, pool_size=2, poll_delay_s=0.05
    )
    jobs = await client.enqueue_many(
        "test-sleep", [[f"data:,{i}"] for i in range(36)], options={"seconds": 0.5}
    )
    await complete(client, jobs, [1] * 36)
    assert all(count >= 2 for count in took_units(fleet)), took_units(fleet)


async def test_workers_that_run_different_pipelines_each_get_their_own_work(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """One worker runs the built-in pipelines only, the other also the test ones: the jobs
    of a pipeline only the second runs all go to it and complete (none fails "unknown
    pipeline" on the first), while the built-in work spreads over both."""
    urls = documents(http, 40)
    builtin_only = workers(**FLEET)
    extended = workers(pipelines="tests.sample_pipelines", **FLEET)
    mixed = []
    for _ in range(4):
        mixed.append(await client.enqueue("test-pid", urls))
        mixed.append(await client.enqueue("text-stats", urls))
    await complete(client, mixed, [40] * 8)
    started = {str(e["job_id"]) for e in builtin_only.events("job started", "unit started")}
    assert started and started <= set(mixed[1::2]), started
    assert {str(e["job_id"]) for e in extended.events("job started")} >= set(mixed[0::2])


async def test_workers_take_only_the_queues_they_serve_and_apply_per_job_settings(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """One worker serves "interactive" alone, the other "default" and "bulk": every job runs
    on a worker that serves its queue; and a job's own timeout (set at enqueue) ends it,
    naming where the limit came from, though the worker's own is an hour."""
    urls = documents(http, 20)
    interactive = workers(queues="interactive", pipelines="tests.sample_pipelines", **FLEET)
    general = workers(queues="default,bulk", pipelines="tests.sample_pipelines", **FLEET)
    mine = [await client.enqueue("text-stats", urls, queue="interactive") for _ in range(3)]
    theirs = [await client.enqueue("text-stats", urls, queue=q) for q in ("default", "bulk")]
    await complete(client, mine + theirs, [20] * 5)
    assert {str(e["job_id"]) for e in interactive.events("job started")} == set(mine)
    assert {str(e["job_id"]) for e in general.events("job started")} == set(theirs)
    assert sorted(w.queues for w in await client.workers()) == [
        ["default", "bulk"],
        ["interactive"],
    ]

    slow = await client.enqueue(
        "test-sleep", urls[:4], options={"seconds": 5}, queue="interactive", timeout_s=0.5
    )
    status = await client.wait(slow, timeout_s=60)
    assert status.state == JobState.FAILED and status.timeout_s == 0.5
    assert "timed out after 0.5 s (timeout_s set at enqueue)" in (status.error or "")
