"""Redis over TLS with an ACL user: accepted with the right CA and password, refused otherwise."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from producer import Client, ClientSettings, JobState, ServerUnavailable
from tests.conftest import worker_env
from tests.support.servers import Server
from tests.support.tls import PASSWORD, USER, make_certificates, tls_server, tls_unavailable_reason
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.skipif(
    tls_unavailable_reason() is not None, reason=str(tls_unavailable_reason())
)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls(tmp_path: Path, certs: Path) -> Iterator[Server]:
    server = tls_server(tmp_path / "tls-redis", certs).start()
    yield server
    server.stop()


def url(server: Server, password: str = PASSWORD, host: str = "localhost") -> str:
    return f"rediss://{USER}:{password}@{host}:{server.port}/0"


async def test_worker_and_client_over_tls_with_acl(
    tls: Server, certs: Path, tmp_path: Path
) -> None:
    """A worker and a client connect with TLS and an ACL user; a job runs; no secret is logged."""
    env = worker_env(url(tls), "tls", tmp_path)
    env["SLUICE_REDIS_CA_FILE"] = str(certs / "ca.crt")
    worker = WorkerProcess(env=env, log_path=tmp_path / "worker.log").start()
    settings = ClientSettings(
        redis_url=url(tls), redis_ca_file=certs / "ca.crt", namespace="tls", _env_file=None
    )
    try:
        async with Client(settings) as client:
            job_id = await client.enqueue("text-stats", ["data:,over%20tls"])
            status = await client.wait(job_id, timeout_s=60)
            assert status.state == JobState.COMPLETE
    finally:
        worker.stop()
    assert PASSWORD not in worker.log()


@pytest.mark.parametrize(
    ("password", "host", "check_hostname", "message"),
    [
        ("wrong", "localhost", True, "WRONGPASS|invalid username-password"),
        (PASSWORD, "127.0.0.1", True, "match|hostname|certificate"),
    ],
)
async def test_bad_credentials_or_hostname_refused(
    tls: Server, certs: Path, password: str, host: str, check_hostname: bool, message: str
) -> None:
    """A wrong password, or a certificate for another host name, is refused with a clear error."""
    settings = ClientSettings(
        redis_url=url(tls, password, host),
        redis_ca_file=certs / "ca.crt",
        redis_check_hostname=check_hostname,
        _env_file=None,
    )
    async with Client(settings) as client:
        with pytest.raises(ServerUnavailable, match=message) as err:
            await client.stats()
    assert password not in str(err.value)


async def test_hostname_check_can_be_turned_off(tls: Server, certs: Path) -> None:
    """With SLUICE_REDIS_CHECK_HOSTNAME=false the CA is still checked but not the host name."""
    settings = ClientSettings(
        redis_url=url(tls, host="127.0.0.1"),
        redis_ca_file=certs / "ca.crt",
        redis_check_hostname=False,
        _env_file=None,
    )
    async with Client(settings) as client:
        assert (await client.stats()).workers == 0


async def test_untrusted_server_refused(tls: Server) -> None:
    """Without the CA that signed the server's certificate, the connection is refused."""
    settings = ClientSettings(redis_url=url(tls), _env_file=None)
    async with Client(settings) as client:
        with pytest.raises(ServerUnavailable, match="certificate verify failed"):
            await client.stats()


def test_worker_with_bad_password_stops_with_clear_error(
    tls: Server, certs: Path, tmp_path: Path
) -> None:
    """A worker given a wrong password exits 1 naming the problem, instead of retrying forever."""
    env = worker_env(url(tls, "wrong"), "tls", tmp_path)
    env["SLUICE_REDIS_CA_FILE"] = str(certs / "ca.crt")
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "refused" in done.stderr
    assert "wrong" not in done.stderr.replace("sluice-worker", "")
