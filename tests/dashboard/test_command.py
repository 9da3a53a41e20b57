"""`sluice dashboard` itself: serves from a real process, stops on SIGTERM, keeps secrets."""

from __future__ import annotations

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
