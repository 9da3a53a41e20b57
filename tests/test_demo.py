"""`make demo` works: the demo runs a job end to end and reports its speed-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """A small demo completes, prints the stage table and the speed-up, and stops its server;
    its closing hint's commands are whole lines at 80 columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="80")
    done = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--documents", "30", "--latency-ms", "20"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "complete" in done.stdout
    assert "bottleneck" in done.stdout
    assert "speed-up" in done.stdout
    lines = done.stdout.splitlines()
    [results] = [line for line in lines if "sluice results" in line]
    assert results.strip().endswith("--json | head") and len(results) <= 80  # one line, whole
    assert "  export SLUICE_DATA_DIR=.sluice/demo" in lines
    assert not (tmp_path / ".sluice/demo/server.json").exists()
    assert any((tmp_path / ".sluice/demo").glob("appendonly*"))
