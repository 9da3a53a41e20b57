"""`sluice dashboard` itself: serves from a real process, stops on SIGTERM, keeps secrets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from producer import ClientSettings, ConfigError
from producer.settings import load_settings
from tests.conftest import ROOT


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    url = credentials.format(host=str(settings.redis_url).removeprefix("redis://"))
    env.update(SLUICE_REDIS_URL=url, SLUICE_NAMESPACE=settings.namespace, PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "producer", "dashboard", "--host", "127.0.0.1", "--port", "0"]
    with subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", banner)
            assert match, banner
            assert shown in banner and "pa55word-x" not in banner
            base = f"http://127.0.0.1:{match.group(1)}"
            with urllib.request.urlopen(base + "/api/stats", timeout=30) as reply:
                assert reply.status == 200
                assert b'"workers": 0' in reply.read()
        finally:
            process.send_signal(signal.SIGTERM)
            code = process.wait(30)
            assert process.stderr is not None
            errors = process.stderr.read()
    assert code == 0, errors


def test_short_token_is_refused_without_echoing_it() -> None:
    """A token under 16 characters is a bad setting; the message never repeats the token."""
    with pytest.raises(ConfigError) as refused:
        load_settings(ClientSettings, dashboard_token="tiny-secret", _env_file=None)
    message = str(refused.value)
    assert "SLUICE_DASHBOARD_TOKEN" in message and "at least 16 characters" in message
    assert "tiny-secret" not in message
