"""https inputs through a real worker: a certificate the worker trusts is fetched; one it does
not trust fails that input alone, at once, saying why."""

from __future__ import annotations

import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer import Client, JobState
from tests.expected import text_stats
from tests.support.http_server import HttpServer
from tests.support.tls import make_certificates
from tests.support.workers import WorkerFactory

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="no openssl command to make test certificates"
)
BODY = b"secure words, secure words and more words"


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    return make_certificates(tmp_path / "certs")


@pytest.fixture
def https(certs: Path) -> Iterator[HttpServer]:
    """An https server for localhost, with a certificate signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs / "server.crt", certs / "server.key")
    server = HttpServer(documents={"doc.txt": BODY}, ssl_context=context).start()
    yield server
    server.stop()


async def test_an_https_input_signed_by_a_trusted_ca_is_fetched(
    client: Client, workers: WorkerFactory, https: HttpServer, certs: Path
) -> None:
    """OpenSSL's SSL_CERT_FILE names the CA the worker trusts (here the test CA)."""
    workers.base_env["SSL_CERT_FILE"] = str(certs / "ca.crt")
    workers(fetch_allow="localhost")
    job_id = await client.enqueue("text-stats", [https.url("doc.txt")])
    status = await client.wait(job_id, timeout_s=60)
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 1, 0)
    [record] = [r async for r in client.results(job_id)]
    assert record.result == text_stats(BODY)


async def test_an_untrusted_certificate_fails_the_input_without_retrying(
    client: Client, workers: WorkerFactory, https: HttpServer
) -> None:
    """Without the CA, the input fails naming the certificate; the other input is stored."""
    workers(fetch_allow="localhost", fetch_retries=3, fetch_backoff_s=5)
    good = "data:,plain"
    job_id = await client.enqueue("text-stats", [https.url("doc.txt"), good])
    status = await client.wait(job_id, timeout_s=30)  # 3 retries would take 5 + 10 + 20 s
    assert (status.state, status.stored, status.failed) == (JobState.COMPLETE, 2, 1)
    records = {r.index: r async for r in client.results(job_id)}
    assert records[1].ok
    error = records[0].error or ""
    assert "certificate" in error
    assert https.url("doc.txt") in error
    assert "attempts" not in error  # failed at the first try
    assert https.total_hits == 0  # the handshake failed: no request was ever answered
