"""The CLI's errors show the Redis server with its credentials hidden, and a URL redis-py
would misread is a setting error (exit 2), not a traceback."""

from __future__ import annotations

import pytest

from tests.support.cli import sluice
from tests.support.servers import free_port

SECRET = "Qz-s3cret-77"


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:{port}/0?password={s}",
        "redis://127.0.0.1:{port}/0?username=bob&password={s}",
        "redis://bob:{s}@127.0.0.1:{port}/0",
    ],
)
def test_unreachable_server_error_hides_credentials(url: str) -> None:
    """`sluice status` against a closed port names the server, never its password."""
    env = {"SLUICE_REDIS_URL": url.format(port=free_port(), s=SECRET)}
    done = sluice(env, "status", "some-job")
    assert done.exit_code == 1
    assert "cannot reach Redis at redis://" in done.stderr
    assert SECRET not in done.stderr + done.stdout


@pytest.mark.parametrize("command", [["status", "x"], ["enqueue", "text-stats", "data:,x"]])
@pytest.mark.parametrize("cut", ["#", "/", "?"])
def test_unencoded_password_is_a_setting_error(command: list[str], cut: str) -> None:
    """A password with an unencoded '#', '/' or '?' exits 2 with a redacted message."""
    env = {"SLUICE_REDIS_URL": f"redis://user:Qz{cut}s3cret@127.0.0.1:6379/0"}
    done = sluice(env, *command)
    assert done.exit_code == 2
    assert "invalid setting SLUICE_REDIS_URL" in done.stderr and "percent-encode" in done.stderr
    assert "s3cret" not in done.stderr + done.stdout and "Qz" not in done.stderr


def test_dashboard_command_refuses_a_misread_url() -> None:
    """`sluice dashboard` with such a URL exits 2 before serving anything."""
    done = sluice({"SLUICE_REDIS_URL": "redis://:Qz#s3cret@127.0.0.1:6379"}, "dashboard")
    assert done.exit_code == 2
    assert "invalid setting SLUICE_REDIS_URL" in done.stderr and "s3cret" not in done.stderr
