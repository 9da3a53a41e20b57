"""`sluice dashboard` as a real process for tests: on a free port, stopped with SIGTERM."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from tests.conftest import ROOT


@dataclass
class DashboardProcess:
    """A running `sluice dashboard`: the line it printed at start and its base URL."""

    process: subprocess.Popen[str]
    banner: str
    url: str

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit code and everything written on stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        errors = self.process.stderr.read() if self.process.stderr else ""
        return code, errors


@contextlib.contextmanager
def dashboard_process(**settings: str) -> Iterator[DashboardProcess]:
    """Start `sluice dashboard --port 0` with these SLUICE_* settings (no others)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({f"SLUICE_{k.upper()}": v for k, v in settings.items()}, PYTHONPATH=str(ROOT))
    args = [sys.executable, "-m", "producer", "dashboard", "--host", "127.0.0.1", "--port", "0"]
    with subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            banner = process.stdout.readline() if process.stdout else ""
            match = re.search(r"http://127\.0\.0\.1:(\d+)/", banner)
            assert match, banner or (process.stderr and process.stderr.read())
            yield DashboardProcess(process, banner, f"http://127.0.0.1:{match.group(1)}")
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
