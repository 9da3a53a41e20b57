"""`sluice dashboard` itself: serves from a real process, stops on SIGTERM, keeps secrets."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from producer import ClientSettings, ConfigError
from producer.contract.settings import load_settings
from producer.dashboard.settings import DashboardSettings
from tests.dashboard.process import dashboard_process


@pytest.mark.parametrize(
    ("credentials", "shown"),
    [
        ("redis://default:pa55word-x@{host}", "redis://***@127.0.0.1"),
        ("redis://{host}/0?username=default&password=pa55word-x", "password=***"),
    ],
)
def test_dashboard_command_serves_until_sigterm(
    settings: ClientSettings, credentials: str, shown: str
) -> None:
    """The command prints where it listens (port 0: a free one) and the server with its
    credentials hidden in whatever form they were given, serves the API, exits 0."""
    url = credentials.format(host=str(settings.redis_url).removeprefix("redis://"))
    with dashboard_process(redis_url=url, namespace=settings.namespace) as board:
        assert shown in board.banner and "pa55word-x" not in board.banner
        with urllib.request.urlopen(board.url + "/api/stats", timeout=30) as reply:
            assert reply.status == 200
            assert b'"workers": 0' in reply.read()
        code, errors = board.stop()
    assert code == 0, errors


def test_short_token_is_refused_without_echoing_it() -> None:
    """A token under 16 characters is a bad setting; the message never repeats the token."""
    with pytest.raises(ConfigError) as refused:
        load_settings(DashboardSettings, dashboard_token="tiny-secret", _env_file=None)
    message = str(refused.value)
    assert "SLUICE_DASHBOARD_TOKEN" in message and "at least 16 characters" in message
    assert "tiny-secret" not in message


def test_a_request_that_is_not_http_is_logged_in_a_line(settings: ClientSettings) -> None:
    """Bytes that are not HTTP (here 0xFF in the path) get a 400, and one log line saying
    what was wrong; aiohttp logged a traceback for each, so any client could fill the log."""
    with dashboard_process(redis_url=str(settings.redis_url), namespace=settings.namespace) as b:
        port = int(b.url.rpartition(":")[2])
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
                conn.sendall(b"GET /jobs/\xff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert conn.recv(100).startswith(b"HTTP/1.0 400 Bad Request")
        code, errors = b.stop()
    assert code == 0 and "Traceback" not in errors, errors
    lines = [line for line in errors.splitlines() if "Error handling request" in line]
    assert len(lines) == 3 and "400 Invalid char in url path" in lines[0], errors
