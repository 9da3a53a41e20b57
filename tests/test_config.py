"""A bad setting stops start-up with a message naming the setting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import worker_env
from tests.support.servers import Server


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SLUICE_POOL_SIZE", "0", "invalid setting SLUICE_POOL_SIZE"),
        ("SLUICE_FETCH_TIMEOUT_S", "soon", "invalid setting SLUICE_FETCH_TIMEOUT_S"),
        ("SLUICE_REDIS_URL", "http://x", "invalid setting SLUICE_REDIS_URL"),
        ("SLUICE_LOG_FORMAT", "xml", "invalid setting SLUICE_LOG_FORMAT"),
        ("SLUICE_POOL_SIZ", "2", "unknown setting SLUICE_POOL_SIZ; did you mean SLUICE_POOL_SIZE?"),
        ("SLUICE_PIPELINES", "no_such_module", "cannot import 'no_such_module'"),
    ],
)
def test_bad_setting_stops_worker(
    server: Server, tmp_path: Path, name: str, value: str, message: str
) -> None:
    """The worker exits 2 at once, naming the setting, without a traceback."""
    env = worker_env(server.url, "cfg", tmp_path)
    env[name] = value
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_secrets_are_redacted_in_errors(server: Server, tmp_path: Path) -> None:
    """A bad Redis URL's password never appears in the error."""
    env = worker_env(server.url, "cfg", tmp_path)
    env["SLUICE_REDIS_URL"] = "http://user:hunter2@host"
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "hunter2" not in done.stderr


def test_dotenv_file_is_read(server: Server, tmp_path: Path) -> None:
    """Settings in a .env file in the working directory apply; a bad one there is named."""
    env = worker_env(server.url, "cfg", tmp_path)
    del env["SLUICE_POOL_SIZE"]
    (tmp_path / ".env").write_text("SLUICE_POOL_SIZE=-3\n")
    done = subprocess.run(
        [sys.executable, "-m", "worker"], env=env, capture_output=True, text=True, timeout=60,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert "invalid setting SLUICE_POOL_SIZE" in done.stderr
    assert "-3" in done.stderr
