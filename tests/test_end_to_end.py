"""The whole path through real worker processes: enqueue, fetch, transform, store, inspect."""

from __future__ import annotations

import asyncio
from pathlib import Path

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.expected import data_uri, text_stats
from tests.support.http_server import HttpServer
from tests.support.scrape import wait_until
from tests.support.workers import WorkerFactory

DOCS = {f"doc{i}.txt": (f"Alpha beta gamma {i} " * (i + 1)).encode() for i in range(20)}


async def test_text_stats_over_http_file_and_data(
    client: Client, workers: WorkerFactory, http: HttpServer, tmp_path: Path
) -> None:
    """Every scheme's input is fetched, transformed and stored with the spec's exact result."""
    http.documents.update(DOCS)
    local = tmp_path / "local.txt"
    local.write_bytes("Ünïcödé words, words; WORDS!".encode())
    inputs = [http.url(name) for name in DOCS] + [local.as_uri(), data_uri(b"one two two")]
    workers()
    job_id = await client.enqueue("text-stats", inputs)
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.COMPLETE
    assert (status.total, status.stored, status.failed) == (22, 22, 0)
    assert status.fetched == status.transformed == 22
    assert all(status.stages[s].count == 22 for s in ("fetch", "transform", "store"))
    records = [r async for r in client.results(job_id)]
    assert [r.index for r in records] == list(range(22))
    payloads = [*DOCS.values(), local.read_bytes(), b"one two two"]
    for record, data in zip(records, payloads, strict=True):
        assert record.ok, record.error
        assert record.result == text_stats(data)
        assert record.timings["fetch_s"] >= 0


async def test_bad_inputs_fail_alone(
    client: Client, workers: WorkerFactory, http: HttpServer, tmp_path: Path
) -> None:
    """A 404, a missing file, an unknown scheme and a raising transform each fail one item."""
    http.documents["good.txt"] = b"fine"
    http.documents["bad.txt"] = b"this is bad"
    inputs = [
        http.url("good.txt"),
        http.url("missing.txt"),
        (tmp_path / "nope.txt").as_uri(),
        "ftp://example.com/x",
        http.url("bad.txt"),
    ]
    workers(pipelines="tests.sample_pipelines")
    job_id = await client.enqueue("test-raise", inputs)
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.COMPLETE
    assert (status.stored, status.failed) == (5, 4)
    by_index = {r.index: r async for r in client.results(job_id)}
    assert by_index[0].ok and by_index[0].result == {"bytes": 4}
    assert "404" in (by_index[1].error or "")
    assert "nope.txt" in (by_index[2].error or "")
    assert "no fetcher for scheme 'ftp'" in (by_index[3].error or "")
    assert "ValueError: this input is bad" in (by_index[4].error or "")


async def test_concurrent_jobs_share_one_pool(client: Client, workers: WorkerFactory) -> None:
    """Many jobs at once all run in the same pool processes, never a pool per job."""
    workers(pipelines="tests.sample_pipelines", max_jobs=6, pool_size=2)
    jobs = [
        await client.enqueue("test-pid", [data_uri(f"{j}-{i}".encode()) for i in range(40)])
        for j in range(6)
    ]
    statuses = await asyncio.gather(*(client.wait(j, timeout_s=60) for j in jobs))
    assert all(s.state == JobState.COMPLETE and s.failed == 0 for s in statuses)
    pids = {r.result["pid"] for j in jobs async for r in client.results(j) if r.result}
    assert 1 <= len(pids) <= 2


async def test_large_streamed_job(client: Client, workers: WorkerFactory) -> None:
    """A job of 5,000 inputs written in chunks to Redis runs to completion in input order."""
    workers(max_jobs=1)

    async def inputs() -> object:
        for i in range(5000):
            yield data_uri(str(i).encode())

    job_id = await client.enqueue("text-stats", inputs())  # type: ignore[arg-type]
    status = await client.wait(job_id, timeout_s=120)
    assert status.state == JobState.COMPLETE
    assert (status.total, status.stored, status.failed) == (5000, 5000, 0)
    indexes = [r.index async for r in client.results(job_id, start=4990)]
    assert indexes == list(range(4990, 5000))


async def test_rerun_skips_stored_inputs(
    client: Client, redis: Redis, workers: WorkerFactory, http: HttpServer
) -> None:
    """Inputs that already have a record (from an earlier attempt) are not fetched again."""
    http.documents.update(DOCS)
    names = list(DOCS)
    job_id = await client.enqueue("text-stats", [http.url(n) for n in names])
    earlier = b'{"index":0,"input":"x","ok":true,"result":{"kept":true},"timings":{}}'
    await redis.hset(client.keys.results(job_id), mapping={"0": earlier, "1": earlier})
    await redis.hset(client.keys.job(job_id), "stored", 2)
    workers()
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.COMPLETE and status.stored == len(names)
    assert names[0] not in http.hits and names[1] not in http.hits
    assert all(http.hits[n] == 1 for n in names[2:])
    first = await anext(client.results(job_id, limit=1))
    assert first.result == {"kept": True}


async def test_thumbnail_blobs_are_stored(client: Client, workers: WorkerFactory) -> None:
    """The thumbnail pipeline stores a resized image beside each record."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (640, 320), "red").save(buf, "PNG")
    workers()
    job_id = await client.enqueue(
        "thumbnail",
        [data_uri(buf.getvalue()), data_uri(b"not an image")],
        options={"width": 100, "height": 100},
    )
    status = await client.wait(job_id, timeout_s=60)
    assert (status.state, status.failed) == (JobState.COMPLETE, 1)
    good, bad = [r async for r in client.results(job_id)]
    assert good.ok and good.result is not None
    assert (good.result["width"], good.result["height"]) == (100, 50)
    blob = await client.blob(job_id, 0)
    assert blob is not None
    assert Image.open(io.BytesIO(blob)).size == (100, 50)
    assert not bad.ok and "image" in (bad.error or "")


async def test_user_scheme_and_pipeline_from_settings(
    client: Client, workers: WorkerFactory
) -> None:
    """A fetcher and a pipeline from a module named in SLUICE_PIPELINES are used by name."""
    workers(pipelines="tests.sample_pipelines")
    job_id = await client.enqueue("text-stats", ["echo:hello echo world"])
    status = await client.wait(job_id, timeout_s=60)
    assert status.state == JobState.COMPLETE
    [record] = [r async for r in client.results(job_id)]
    assert record.result == text_stats(b"hello echo world")


async def test_job_log_lines_carry_job_fields(client: Client, workers: WorkerFactory) -> None:
    """Every log line about a job is one JSON object with job_id, pipeline and worker."""
    import json

    worker = workers()
    job_id = await client.enqueue("text-stats", ["data:,logged"])
    await client.wait(job_id, timeout_s=60)

    def about_job() -> list[dict[str, str]]:
        lines = [json.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("job_id") == job_id]

    async def logged() -> bool:  # the worker logs the ending once its write has returned
        return {line["event"] for line in about_job()} >= {"job started", "job complete"}

    await wait_until(logged, timeout_s=10)
    about = about_job()
    assert all(line["pipeline"] == "text-stats" for line in about)
    assert all(line["worker"].endswith(f":{worker.pid}") for line in about)


async def test_hundred_thousand_inputs(client: Client, workers: WorkerFactory) -> None:
    """One job of 100,000 inputs runs to completion with every record stored."""
    workers(pipelines="tests.sample_pipelines")
    job_id = await client.enqueue("test-pid", (f"echo:{i}" for i in range(100_000)))
    status = await client.wait(job_id, timeout_s=300)
    assert (status.state, status.total, status.stored, status.failed) == (
        JobState.COMPLETE,
        100_000,
        100_000,
        0,
    )
    last = [r async for r in client.results(job_id, start=99_999)]
    assert [r.input for r in last] == ["echo:99999"]
