"""Limits and the SSRF guard through a real worker: each refusal fails one input, clearly."""

from __future__ import annotations

from producer import Client, JobState
from tests.expected import data_uri
from tests.support.http_server import HttpServer
from tests.support.workers import WorkerFactory


async def test_ssrf_refused_by_default(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """Without an allow-list, loopback and the metadata address are refused; others go on."""
    http.documents["secret"] = b"internal only"
    workers(fetch_allow="")
    inputs = [http.url("secret"), "http://169.254.169.254/latest/meta-data/", data_uri(b"ok")]
    job_id = await client.enqueue("text-stats", inputs)
    status = await client.wait(job_id, timeout_s=60)
    records = [r async for r in client.results(job_id)]
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 3, 2), records
    errors = [r.error or "" async for r in client.results(job_id) if not r.ok]
    assert all("not a public address" in e and "SLUICE_FETCH_ALLOW" in e for e in errors)
    assert http.hits.get("secret") is None  # refused before connecting


async def test_oversize_body_and_result_refused(
    client: Client, workers: WorkerFactory, http: HttpServer
) -> None:
    """A body over SLUICE_MAX_FETCH_BYTES and a result over SLUICE_MAX_RESULT_BYTES fail alone."""
    http.documents["big"] = b"word " * 2000
    http.documents["small"] = b"tiny"
    workers(max_fetch_bytes=5000, max_result_bytes=200)
    many_words = " ".join(f"w{i}" for i in range(50)).encode()
    inputs = [http.url("big"), http.url("small"), data_uri(many_words)]
    job_id = await client.enqueue("text-stats", inputs)
    status = await client.wait(job_id, timeout_s=60)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 3, 2)
    big, small, wordy = [r async for r in client.results(job_id)]
    assert "over the limit of 5000 bytes" in (big.error or "")
    assert small.ok
    assert "SLUICE_MAX_RESULT_BYTES" in (wordy.error or "")
