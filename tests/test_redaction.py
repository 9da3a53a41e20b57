"""Redis URLs are shown with every credential hidden, and a URL redis-py would misread is a
clear setting error that never repeats the password."""

from __future__ import annotations

import string
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import parse_url

from producer import ClientSettings, ConfigError
from producer.contract.redaction import redact_url
from producer.contract.settings import load_settings
from tests.conftest import worker_env
from tests.support.servers import Server, free_port
from tests.support.workers import WorkerFactory

MARK = "Zk9"  # in every secret drawn, and in nothing else a URL here holds
HOSTS = st.sampled_from(["127.0.0.1", "localhost", "[::1]", "redis.internal"])
SCHEMES = st.sampled_from(["redis", "rediss"])
SECRETS = st.text(alphabet=string.printable.strip(), max_size=12).map(lambda s: MARK + s)
CREDENTIAL_PARAMETERS = st.sampled_from(
    ["password", "username", "ssl_password", "credential", "pass%77ord", "Password"]
)
PLAIN = st.sampled_from(["", "/0", "/3", "/0?db=2", "/0?socket_timeout=5&protocol=3"])


def encoded(text: str) -> str:
    return quote(text, safe="")


@st.composite
def urls_with_credentials(draw: st.DrawFn) -> str:
    """A Redis URL holding a marked secret in one of the forms redis-py reads credentials."""
    scheme, host, secret = draw(SCHEMES), draw(HOSTS), draw(SECRETS)
    form = draw(st.sampled_from(["userinfo", "user", "query", "unix", "raw"]))
    if form == "userinfo":
        return f"{scheme}://{encoded(draw(SECRETS))}:{encoded(secret)}@{host}:6379/0"
    if form == "user":
        return f"{scheme}://{encoded(secret)}@{host}"
    if form == "unix":
        return f"unix://:{encoded(secret)}@/run/redis.sock?db=1&password={encoded(secret)}"
    if form == "raw":  # not percent-encoded: '#', '/', '?' in it cut the URL elsewhere
        return f"{scheme}://user:{secret}@{host}:6379/0"
    name = draw(CREDENTIAL_PARAMETERS)
    plain = draw(st.sampled_from(["", "db=1&", "socket_timeout=2&"]))
    return f"{scheme}://{host}:6379/0?{plain}{name}={encoded(secret)}"


@given(urls_with_credentials())
def test_no_credential_form_survives_redaction(url: str) -> None:
    """Whatever form the secret takes, the redacted URL holds no part of it."""
    shown = redact_url(url)
    assert MARK not in shown and MARK.lower() not in shown.lower()


@given(urls_with_credentials())
def test_what_redis_py_reads_as_a_credential_is_hidden(url: str) -> None:
    """Every value redis-py would pass to the connection beyond host, port, db and path is
    absent from the redacted URL (redis-py's own reading is the reference)."""
    try:
        read = parse_url(url)
    except ValueError:
        return  # refused as a setting (see below); the marker test above still covers it
    kept = {"host", "port", "db", "path", "connection_class", "socket_timeout", "protocol"}
    shown = redact_url(url)
    for name, value in read.items():
        if name not in kept:
            assert str(value) not in shown, name


@given(SCHEMES, HOSTS, st.integers(1, 65535), PLAIN)
def test_urls_without_credentials_are_shown_whole(
    scheme: str, host: str, port: int, rest: str
) -> None:
    """Host, port, database and plain connection settings stay visible."""
    url = f"{scheme}://{host}:{port}{rest}"
    assert redact_url(url) == url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:pw@h:6379/0", "redis://***@h:6379/0"),
        ("redis://h:6379/0?password=pw&db=1", "redis://h:6379/0?password=***&db=1"),
        ("redis://h?username=u&password=pw", "redis://h?username=***&password=***"),
        ("rediss://h?ssl_password=pw", "rediss://h?ssl_password=***"),
        ("unix://:pw@/tmp/r.sock?db=0", "unix://***@/tmp/r.sock?db=0"),
        ("redis://u:p#w@h:6379/0", "redis://***@h:6379/0"),
        ("redis://h:6379#pw", "redis://h:6379#***"),
    ],
)
def test_redacted_forms(url: str, shown: str) -> None:
    """Each credential form gives way to ``***``; the rest of the address stays readable."""
    assert redact_url(url) == shown


@pytest.mark.parametrize("cut", ["#", "/", "?"])
def test_unencoded_password_is_a_clear_setting_error(cut: str) -> None:
    """A password with an unencoded '#', '/' or '?' is refused naming the fix, never shown."""
    with pytest.raises(ConfigError) as refused:
        load_settings(
            ClientSettings, redis_url=f"redis://user:hunter{cut}22@h:6379/0", _env_file=None
        )
    message = str(refused.value)
    assert "invalid setting SLUICE_REDIS_URL" in message and "percent-encode" in message
    assert "hunter" not in message and "22" not in message
    assert "redis://***@h:6379/0" in message


def test_setting_error_hides_query_passwords() -> None:
    """A URL refused for another reason still shows its query credentials hidden."""
    with pytest.raises(ConfigError) as refused:
        load_settings(
            ClientSettings, redis_url="redis://h:6379/0?db=x&password=hunter22", _env_file=None
        )
    message = str(refused.value)
    assert "Invalid value for 'db'" in message
    assert "hunter22" not in message and "password=***" in message


def test_worker_log_hides_query_credentials(workers: WorkerFactory) -> None:
    """A real worker waiting for an unreachable server logs it with the password hidden."""
    url = f"redis://127.0.0.1:{free_port()}/0?username=bob&password=hunter22&db=0"
    worker = workers(redis_url=url, wait=False)
    deadline = time.monotonic() + 30
    while "waiting for Redis" not in worker.log():
        assert time.monotonic() < deadline, worker.log()
        time.sleep(0.1)
    log = worker.log()
    assert "hunter22" not in log and "bob" not in log
    assert "password=***" in log


@pytest.mark.parametrize("cut", ["#", "/", "?"])
def test_worker_refuses_unencoded_password(server: Server, tmp_path: Path, cut: str) -> None:
    """A real worker given a password with an unencoded '#', '/' or '?' exits 2 at once,
    naming the setting, without a traceback or any part of the password."""
    env = worker_env(server.url, "cfg", tmp_path)
    env["SLUICE_REDIS_URL"] = f"redis://user:hunter{cut}22@127.0.0.1:{server.port}/0"
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "invalid setting SLUICE_REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr and "hunter" not in done.stderr
